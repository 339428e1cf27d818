// The process-wide loop registry (libloop/registry.h).
#include <libloop/loop.h>
#include <libloop/registry.h>

#include <QTest>

#include <atomic>
#include <memory>
#include <set>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace libloop;

class TstRegistry : public QObject {
    Q_OBJECT
private slots:
    void loopsAppearAndDisappear();
    void idsAreUniqueAndThreadIsTheLoopThread();
    void visitingWhileLoopsComeAndGo();
};

void TstRegistry::loopsAppearAndDisappear() {
    const std::size_t before = loopCount();
    std::vector<std::string> seen;
    {
        LoopOptions a, b;
        a.name = "registry-a";
        b.name = "registry-b";
        Loop la(a), lb(b);
        QCOMPARE(loopCount(), before + 2);
        forEachLoop([&](Loop& l) { seen.push_back(l.name()); });
        // Oldest first: a before b, both present.
        auto ia = std::find(seen.begin(), seen.end(), "registry-a");
        auto ib = std::find(seen.begin(), seen.end(), "registry-b");
        QVERIFY(ia != seen.end() && ib != seen.end());
        QVERIFY(ia < ib);
    }
    QCOMPARE(loopCount(), before);
    bool stale = false;
    forEachLoop([&](Loop& l) { stale |= l.name() == "registry-a" || l.name() == "registry-b"; });
    QVERIFY(!stale);
}

void TstRegistry::idsAreUniqueAndThreadIsTheLoopThread() {
    std::set<std::uint64_t> ids;
    for (int i = 0; i < 100; ++i) {
        Loop l;
        QVERIFY(l.id() != 0);
        QVERIFY(ids.insert(l.id()).second); // never reused, even after destruction
    }
    Loop l;
    QCOMPARE(l.loopThreadTid(), int(::gettid()));
    int workerTid = 0;
    std::thread t([&] {
        QVERIFY(l.attachToCurrentThread().ok());
        workerTid = int(::gettid());
    });
    t.join();
    QCOMPARE(l.loopThreadTid(), workerTid);
    QVERIFY(workerTid != int(::gettid()));
}

void TstRegistry::visitingWhileLoopsComeAndGo() {
    // A probe-like thread visits and snapshots every loop while others are created and
    // destroyed: no visit may see a loop being destroyed (ASan/TSan would flag it).
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> visits{0};
    Loop anchor; // always one loop to visit
    std::thread probe([&] {
        while (!stop.load()) {
            forEachLoop([&](Loop& l) {
                (void)l.snapshot();
                visits.fetch_add(1);
            });
        }
    });
    while (visits.load() == 0)
        std::this_thread::yield();
    // Churn until the probe has visited many times meanwhile (bounded, only against hangs).
    const std::uint64_t start = visits.load();
    for (int i = 0; i < 100000 && (i < 300 || visits.load() < start + 200); ++i) {
        auto l = std::make_unique<Loop>();
        (void)l->submit([] {});
        (void)l->runOnce(std::chrono::nanoseconds(0));
    }
    stop = true;
    probe.join();
    QVERIFY(visits.load() >= start + 200);
}

QTEST_APPLESS_MAIN(TstRegistry)
#include "tst_registry.moc"
