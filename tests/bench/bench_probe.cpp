// bench_probe: what the probe costs a saturated loop.
//
//   bench_probe [--quick] [--verbose] [--pin] [--rounds N] [--seconds S]
//
// The loop under test runs on this thread: 64 tasks in flight, each one requeuing itself with
// submitInternal (the loop never sleeps). Each variant measures the tasks it runs in a window of
// S seconds (0.3; --quick: 0.05):
//   no probe               the probe is not running;
//   probe, no client       startProbe(): the probe thread sleeps in epoll;
//   probe + client @ 20 Hz one client (a thread of this process) subscribed at 20 Hz that reads
//                          and decodes every frame: 20 snapshot() calls a second on the loop;
//   probe + client @ 100 Hz the same at the highest rate, for scale.
// The variants alternate, in a rotated order, for N rounds (21; --quick: 1). Printed: the median
// tasks/s of each variant, and the median over the rounds of its ratio to "no probe" measured in
// the same round (paired: this machine's throughput drifts by tens of percent over seconds, the
// pairs cancel the drift), as a loss (target: at most 2% with a 20 Hz client); the process's
// CPU time per second of wall time (the loop's core is 1.0; the rest is the probe and client);
// and the CPU time of the probe thread and of the client thread (schedstat, in % of one core):
// a figure the machine's noise does not blur.
//
// --pin runs every thread (loop, probe, client) on the first CPU this process may use: the
// probe's and the client's CPU time then comes straight out of the loop's, so the loss is an
// upper bound, and the run is far less noisy than unpinned ones (where the loop thread migrates).
//
// Rule of the project: nothing here passes or fails on time. The exit status is 0 unless
// something broke (the probe did not start, the client got no snapshot).
#include "loadavg.h"

#include <libloop/loop.h>
#include <libloop/protocol/frame.h>
#include <libloop/protocol/messages.h>
#include <libloop/qt/probe.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <memory>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <string>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>
#include <vector>

#ifndef BENCH_BUILD_TYPE
#define BENCH_BUILD_TYPE "unknown"
#endif

namespace {

using Clock = std::chrono::steady_clock;
namespace proto = libloop::protocol;

[[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "bench_probe: FAILED: %s\n", what.c_str());
    std::exit(2);
}

double cpuSeconds() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    auto s = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
    return s(ru.ru_utime) + s(ru.ru_stime);
}

// CPU time (ns) consumed so far by this process's threads named `name` (schedstat: exact, unlike
// the clock-tick granularity of /proc/.../stat).
std::uint64_t threadCpuNs(const char* name) {
    std::uint64_t total = 0;
    DIR* d = ::opendir("/proc/self/task");
    if (!d)
        return 0;
    while (const dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.')
            continue;
        const std::string base = std::string("/proc/self/task/") + e->d_name;
        char comm[64] = {};
        if (std::FILE* f = std::fopen((base + "/comm").c_str(), "r")) {
            if (!std::fgets(comm, sizeof comm, f))
                comm[0] = 0;
            std::fclose(f);
        }
        comm[std::strcspn(comm, "\n")] = 0;
        if (std::strcmp(comm, name) != 0)
            continue;
        if (std::FILE* f = std::fopen((base + "/schedstat").c_str(), "r")) {
            unsigned long long ns = 0;
            if (std::fscanf(f, "%llu", &ns) == 1)
                total += ns;
            std::fclose(f);
        }
    }
    ::closedir(d);
    return total;
}

// ---- the loop under test ---------------------------------------------------------------------

struct Spin {
    libloop::Loop* loop;
    std::uint64_t* count;
    void operator()() const {
        ++*count;
        (void)loop->submitInternal(Spin{*this});
    }
};

struct Window {
    double tasksPerSecond = 0;
    double cpuPerSecond = 0;
};

// Runs the loop for a tenth of `seconds` (warm-up), calls `started`, then measures `seconds`.
template <class Started>
Window measure(libloop::Loop& loop, const std::uint64_t& count, double seconds, Started started) {
    const auto warmEnd = Clock::now() + std::chrono::duration<double>(seconds / 10);
    while (Clock::now() < warmEnd)
        (void)loop.runOnce(libloop::Duration::zero());
    started();
    const std::uint64_t n0 = count;
    const double c0 = cpuSeconds();
    const auto t0 = Clock::now();
    const auto end = t0 + std::chrono::duration<double>(seconds);
    auto t = t0;
    while (t < end) {
        (void)loop.runOnce(libloop::Duration::zero());
        t = Clock::now();
    }
    const double wall = std::chrono::duration<double>(t - t0).count();
    Window w;
    w.tasksPerSecond = double(count - n0) / wall;
    w.cpuPerSecond = (cpuSeconds() - c0) / wall;
    return w;
}

// ---- a client on a thread of its own ---------------------------------------------------------

class Client {
public:
    Client(const std::string& path, int rate) {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::memcpy(addr.sun_path, path.data(), std::min(path.size(), sizeof addr.sun_path - 1));
        if (fd_ < 0 || ::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
            fail("cannot connect to the probe at " + path);
        proto::ClientHello hello;
        hello.client = QStringLiteral("bench_probe");
        proto::Subscribe sub;
        sub.rate = rate;
        const QByteArray out =
            proto::encodeFrame(hello.toCbor()) + proto::encodeFrame(sub.toCbor());
        if (::send(fd_, out.constData(), std::size_t(out.size()), MSG_NOSIGNAL) != out.size())
            fail("cannot send to the probe");
        thread_ = std::thread([this] {
            pthread_setname_np(pthread_self(), "bench-client");
            readAll();
        });
    }
    ~Client() {
        stop_.store(true);
        thread_.join();
        ::close(fd_);
    }
    std::uint64_t snapshots() const { return snapshots_.load(); }
    bool waitForSnapshot(std::chrono::seconds limit) const {
        const auto end = Clock::now() + limit;
        while (snapshots() == 0 && Clock::now() < end)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        return snapshots() > 0;
    }

private:
    void readAll() {
        proto::FrameDecoder decoder;
        char buf[65536];
        while (!stop_.load()) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0)
                continue;
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0)
                return;
            decoder.feed(QByteArrayView(buf, n));
            while (auto m = decoder.next()) {
                if (proto::messageType(*m) != QLatin1String(proto::type::Snapshot))
                    continue;
                // Decode it fully, as an inspector would.
                if (proto::SnapshotMessage::fromCbor(*m))
                    snapshots_.fetch_add(1);
            }
            if (decoder.failed())
                return;
        }
    }

    int fd_ = -1;
    std::atomic<bool> stop_{false};
    std::atomic<std::uint64_t> snapshots_{0};
    std::thread thread_;
};

// ---- variants --------------------------------------------------------------------------------

struct Variant {
    const char* name;
    bool probe;
    int clientRate; // 0: no client
    std::vector<Window> windows;
    std::uint64_t snapshots = 0;
    std::uint64_t probeCpuNs = 0, clientCpuNs = 0; // over all measured windows
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string millions(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f M", v / 1e6);
    return buf;
}

} // namespace

int main(int argc, char** argv) {
    bool quick = false, verbose = false, pin = false;
    int rounds = 21;
    double seconds = 0.3;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--quick") {
            quick = true;
            rounds = 1;
            seconds = 0.05;
        } else if (a == "--verbose") {
            verbose = true;
        } else if (a == "--pin") {
            pin = true;
        } else if (a == "--rounds" && i + 1 < argc) {
            rounds = std::max(1, std::atoi(argv[++i]));
        } else if (a == "--seconds" && i + 1 < argc) {
            seconds = std::max(0.01, std::atof(argv[++i]));
        } else {
            std::fprintf(
                stderr,
                "usage: bench_probe [--quick] [--verbose] [--pin] [--rounds N] [--seconds S]\n");
            return 2;
        }
    }

    int pinnedCpu = -1;
    if (pin) {
        cpu_set_t allowed;
        CPU_ZERO(&allowed);
        if (::sched_getaffinity(0, sizeof allowed, &allowed) == 0) {
            for (int c = 0; c < CPU_SETSIZE && pinnedCpu < 0; ++c)
                if (CPU_ISSET(c, &allowed))
                    pinnedCpu = c;
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(pinnedCpu, &one);
            if (::sched_setaffinity(0, sizeof one, &one) != 0) // threads created later inherit it
                fail("sched_setaffinity");
        }
    }

    // A private socket directory, removed at the end.
    char dirTemplate[] = "/tmp/bench_probe.XXXXXX";
    const char* dir = ::mkdtemp(dirTemplate);
    if (!dir)
        fail("mkdtemp");
    libloop::qt::ProbeOptions options;
    options.name = "bench_probe";
    options.directory = std::string(dir) + "/libloop";

    libloop::LoopOptions lo;
    lo.name = "bench-saturated";
    libloop::Loop loop(lo);
    std::uint64_t count = 0;
    for (int i = 0; i < 64; ++i)
        if (!loop.submitInternal(Spin{&loop, &count}).ok())
            fail("submitInternal");

    std::vector<Variant> variants{{"no probe", false, 0, {}, 0},
                                  {"probe, no client", true, 0, {}, 0},
                                  {"probe + client @ 20 Hz", true, 20, {}, 0},
                                  {"probe + client @ 100 Hz", true, 100, {}, 0}};
    const std::string loadBefore = loadAverage(3);
    for (int r = 0; r < rounds; ++r) {
        for (std::size_t k = 0; k < variants.size(); ++k) {
            Variant& v = variants[(k + std::size_t(r)) % variants.size()];
            if (v.probe) {
                const libloop::qt::ProbeResult pr = libloop::qt::startProbe(options);
                if (!pr.ok)
                    fail("startProbe: " + pr.error);
            }
            std::unique_ptr<Client> client;
            if (v.clientRate) {
                client = std::make_unique<Client>(libloop::qt::probeSocketPath(), v.clientRate);
                if (!client->waitForSnapshot(std::chrono::seconds(30)))
                    fail(std::string(v.name) + ": no snapshot received");
            }
            std::uint64_t s0 = 0, p0 = 0, c0 = 0;
            v.windows.push_back(measure(loop, count, seconds, [&] {
                if (client)
                    s0 = client->snapshots();
                p0 = threadCpuNs("libloop-probe");
                c0 = threadCpuNs("bench-client");
            }));
            v.probeCpuNs += threadCpuNs("libloop-probe") - p0;
            v.clientCpuNs += threadCpuNs("bench-client") - c0;
            if (client)
                v.snapshots += client->snapshots() - s0;
            if (verbose)
                std::fprintf(stderr, "round %d  %-26s %s\n", r + 1, v.name,
                             millions(v.windows.back().tasksPerSecond).c_str());
            client.reset();
            libloop::qt::stopProbe();
        }
    }
    (void)loop.close();
    ::rmdir(options.directory.c_str());
    ::rmdir(dir);

    std::printf("bench_probe: a saturated loop (64 self-requeuing submitInternal tasks) with and "
                "without the probe\n");
    std::printf("build %s, %d round(s) of %.2f s windows, variants alternated in rotated order, "
                "medians; load average %s -> %s\n",
                BENCH_BUILD_TYPE, rounds, seconds, loadBefore.c_str(), loadAverage(3).c_str());
    if (pinnedCpu >= 0)
        std::printf("every thread pinned to CPU %d (--pin): the loss is an upper bound\n",
                    pinnedCpu);
    std::printf("\n");
    std::printf("%-26s %14s %10s %10s %10s %7s %9s %9s %11s\n", "variant", "tasks/s (med)", "min",
                "max", "vs none*", "cpu/s", "probe**", "client**", "snapshots/s");
    const Variant& none = variants[0];
    for (const Variant& v : variants) {
        std::vector<double> tps, cpu, ratios;
        for (std::size_t r = 0; r < v.windows.size(); ++r) {
            tps.push_back(v.windows[r].tasksPerSecond);
            cpu.push_back(v.windows[r].cpuPerSecond);
            ratios.push_back(v.windows[r].tasksPerSecond / none.windows[r].tasksPerSecond);
        }
        char ratio[32] = "-";
        if (v.probe)
            std::snprintf(ratio, sizeof ratio, "%+.2f%%", (median(ratios) - 1) * 100);
        char rate[32] = "-";
        if (v.clientRate)
            std::snprintf(rate, sizeof rate, "%.1f",
                          double(v.snapshots) / (seconds * double(v.windows.size())));
        const double wall = seconds * double(v.windows.size());
        char probeCpu[32] = "-", clientCpu[32] = "-";
        if (v.probe)
            std::snprintf(probeCpu, sizeof probeCpu, "%.3f%%", double(v.probeCpuNs) / wall / 1e7);
        if (v.clientRate)
            std::snprintf(clientCpu, sizeof clientCpu, "%.3f%%",
                          double(v.clientCpuNs) / wall / 1e7);
        std::printf("%-26s %14s %10s %10s %10s %7.2f %9s %9s %11s\n", v.name,
                    millions(median(tps)).c_str(),
                    millions(*std::min_element(tps.begin(), tps.end())).c_str(),
                    millions(*std::max_element(tps.begin(), tps.end())).c_str(), ratio, median(cpu),
                    probeCpu, clientCpu, rate);
    }
    std::printf("\n* median over the rounds of (variant / no probe, same round) - 1\n"
                "** CPU time of the probe thread / of the client thread, in %% of one core\n"
                "target: at most 2%% fewer tasks/s with one 20 Hz client than without the "
                "probe.%s\n",
                quick ? " (--quick: a smoke run, the numbers mean nothing)" : "");
    return 0;
}
