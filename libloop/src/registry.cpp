#include "registry_internal.h"

#include <libloop/loop.h>
#include <libloop/registry.h>

#include <algorithm>
#include <mutex>
#include <vector>

namespace libloop {

namespace {
struct Registry {
    std::mutex mutex;
    std::vector<Loop*> loops; // creation order
};
Registry& registry() {
    static Registry* r = new Registry; // never destroyed: loops may outlive static destructors
    return *r;
}
} // namespace

void detail::registerLoop(Loop* loop) {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    r.loops.push_back(loop);
}

void detail::unregisterLoop(Loop* loop) {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    r.loops.erase(std::remove(r.loops.begin(), r.loops.end(), loop), r.loops.end());
}

void forEachLoop(const std::function<void(Loop&)>& visit) {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    for (Loop* loop : r.loops)
        visit(*loop);
}

std::size_t loopCount() {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    return r.loops.size();
}

} // namespace libloop
