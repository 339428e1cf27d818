// Finding the probe to attach to: by pid, by socket path, or by process name (to follow a process
// that restarts), on top of libloop::protocol::listProbes.
#pragma once

#include <libloop/protocol/discovery.h>

#include <QtCore/qstring.h>

#include <optional>

namespace libloop::inspector {

// True when a process with this pid exists (any owner).
bool processExists(qint64 pid);

// The probe to attach to:
//   socketPath set: that socket (pid and name stay unknown until the probe's hello; the path
//                   must exist);
//   pid > 0:        the live probe of that process (errors: no such process, no probe);
//   neither:        the only live probe in `dir` (errors: none, or several: choose one).
// `dir` empty = libloop::protocol::defaultSocketDirectory(). nullopt with *error (one line for
// humans) when there is nothing to attach to.
std::optional<protocol::ProbeInfo> resolveProbe(qint64 pid, const QString& socketPath,
                                                const QString& dir, QString* error);

// The newest live probe whose process name is `name`, or nullopt.
std::optional<protocol::ProbeInfo> findProbeByName(const QString& name, const QString& dir);

} // namespace libloop::inspector
