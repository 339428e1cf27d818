// Registration hooks for Loop's constructor and destructor (see libloop/registry.h).
#pragma once

namespace libloop {
class Loop;
namespace detail {
void registerLoop(Loop* loop);
void unregisterLoop(Loop* loop); // waits for a forEachLoop() in progress
} // namespace detail
} // namespace libloop
