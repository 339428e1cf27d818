// The process-wide registry of loops: every Loop registers itself when constructed and leaves
// when destroyed, so a probe (or a debugger helper) can find all of them.
#pragma once

#include <cstddef>
#include <functional>

namespace libloop {

class Loop;

// [any thread] Calls `visit` for every Loop alive in this process, oldest first. The registry is
// locked meanwhile: a Loop being destroyed on another thread waits until the visit is over, so
// `visit` may use the Loop's any-thread API (snapshot(), name(), id(), loopThreadTid(), ...). It
// must not construct or destroy a Loop (that would deadlock). Never called from a loop's hot
// path: registration costs one lock per Loop lifetime.
void forEachLoop(const std::function<void(Loop&)>& visit);

// [any thread] How many Loops are alive.
std::size_t loopCount();

} // namespace libloop
