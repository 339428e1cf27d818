// libloop::protocol: the wire format between a probe (in an inspected process) and an inspector.
//
//   frame.h      length-prefixed CBOR frames; FrameDecoder (hostile input safe)
//   messages.h   the v1 messages as structs (toCbor / fromCbor; snapshots also toJson)
//   discovery.h  the socket directory, socket file names, listing live probes
//
// Depends on Qt6::Core only. The full specification is qtbridge/protocol/PROTOCOL.md.
#pragma once

#include <libloop/protocol/discovery.h>
#include <libloop/protocol/frame.h>
#include <libloop/protocol/messages.h>
