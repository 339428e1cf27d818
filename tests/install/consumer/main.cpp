#include <libloop/loop.h>

#include <cstdio>

int main() {
    libloop::Loop loop;
    int ran = 0;
    (void)loop.submit([&] { ++ran; });
    (void)loop.scheduleTimer(std::chrono::milliseconds(1), [&] {
        ++ran;
        loop.stop();
    });
    if (!loop.run())
        return 1;
    std::printf("consumer ran %d callbacks\n", ran);
    return ran == 2 ? 0 : 1;
}
