// loop-inspector --dump: one JSON object per snapshot on stdout, no display needed.
#pragma once

#include <QtCore/qstring.h>

#include <cstdio>

namespace libloop::inspector {

struct DumpOptions {
    qint64 pid = 0;        // --pid
    QString socket;        // --socket
    QString directory;     // --dir (empty: the default socket directory)
    qint64 count = 0;      // --count: snapshots to print, 0 = until the connection ends
    int rate = 20;         // --rate: snapshots per second asked of the probe
    int timeoutMs = 10000; // --timeout: for the handshake and between two snapshots
};

// Runs the dump on the current QCoreApplication's event loop. Each snapshot is one line on `out`:
//   {"pid":..,"name":..,"at":..,"seq":..,"loops":[LoopMetrics JSON...]} (+ "dropped",
//   "truncated" when the probe set them), the keys of libloop::protocol::LoopMetrics::toJson().
// Errors (no such process, no probe, version mismatch, connection lost, time-out) go to `err` as
// one "loop-inspector: ..." line. Returns the exit code: 0 after `count` snapshots, 1 on error.
int runDump(const DumpOptions& options, std::FILE* out, std::FILE* err);

} // namespace libloop::inspector
