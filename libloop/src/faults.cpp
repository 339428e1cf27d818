#include "faults.h"

#include <mutex>

namespace libloop::detail::faults {

std::atomic<bool> anyArmed{false};

namespace {
struct Arming {
    int err = 0;
    std::uint32_t skip = 0;
    std::uint32_t count = 0;
    std::uint64_t triggered = 0;
};
std::mutex mutex;
Arming sites[std::size_t(Site::Count)];

void updateAnyArmed() noexcept {
    bool any = false;
    for (const Arming& a : sites)
        any = any || a.count != 0;
    anyArmed.store(any, std::memory_order_relaxed);
}
} // namespace

void arm(Site site, int err, std::uint32_t count, std::uint32_t skip) noexcept {
    std::lock_guard lock(mutex);
    Arming& a = sites[std::size_t(site)];
    a.err = err;
    a.count = err != 0 ? count : 0;
    a.skip = skip;
    updateAnyArmed();
}

void reset() noexcept {
    std::lock_guard lock(mutex);
    for (Arming& a : sites)
        a = Arming{};
    updateAnyArmed();
}

std::uint64_t triggered(Site site) noexcept {
    std::lock_guard lock(mutex);
    return sites[std::size_t(site)].triggered;
}

int checkSlow(Site site) noexcept {
    std::lock_guard lock(mutex);
    Arming& a = sites[std::size_t(site)];
    if (a.count == 0)
        return 0;
    if (a.skip != 0) {
        --a.skip;
        return 0;
    }
    --a.count;
    ++a.triggered;
    const int err = a.err;
    updateAnyArmed();
    return err;
}

} // namespace libloop::detail::faults
