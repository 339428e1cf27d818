// Tests for libloop::Function / libloop::Task (task.h): inline vs heap storage, emptiness,
// move semantics and exact destruction of the stored callable.
#include <libloop/task.h>

#include <QTest>

#include <array>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>

using libloop::Function;
using libloop::Task;

namespace {

// Counts what happens to one logical callable. A Probe that has been moved from is "inactive":
// only the destruction of the active instance counts as the callable's final destruction.
struct Tracker {
    int live = 0;          // Probe instances alive (active or moved-from)
    int finalDestroys = 0; // destructions of the active instance
    int calls = 0;
};

struct Probe {
    Tracker* t;
    bool active = true;

    explicit Probe(Tracker* tracker) noexcept : t(tracker) { ++t->live; }
    Probe(Probe&& o) noexcept : t(o.t), active(std::exchange(o.active, false)) { ++t->live; }
    Probe(const Probe&) = delete;
    Probe& operator=(const Probe&) = delete;
    Probe& operator=(Probe&&) = delete;
    ~Probe() {
        --t->live;
        if (active)
            ++t->finalDestroys;
    }
    void operator()() { ++t->calls; }
};

// Fits the inline buffer (Probe is pointer + bool) and is nothrow-movable.
struct SmallCallable {
    Probe p;
    void operator()() { p(); }
};

// Larger than Task::kInlineSize: must be boxed on the heap.
struct BigCallable {
    Probe p;
    std::array<std::byte, 64> pad{};
    void operator()() { p(); }
};

// Small but its move constructor may throw: must not be stored inline.
struct ThrowingMoveCallable {
    int* calls;
    ThrowingMoveCallable(int* c) : calls(c) {}
    ThrowingMoveCallable(ThrowingMoveCallable&& o) noexcept(false) : calls(o.calls) {}
    ThrowingMoveCallable(const ThrowingMoveCallable&) = default;
    void operator()() { ++*calls; }
};

// Over-aligned: alignof > alignof(max_align_t), must not be stored inline.
struct alignas(2 * alignof(std::max_align_t)) OverAligned {
    int* calls;
    void operator()() { ++*calls; }
};

static_assert(sizeof(SmallCallable) <= Task::kInlineSize);
static_assert(sizeof(BigCallable) > Task::kInlineSize);

template <std::size_t N> struct Sized {
    std::array<unsigned char, N> bytes{};
    int* calls = nullptr;
};

void freeFunction(int& x) {
    ++x;
}
int add(int a, int b) {
    return a + b;
}

} // namespace

class tst_Task : public QObject {
    Q_OBJECT

private slots:
    void defaultAndNullptrAreEmpty();
    void smallLambdaIsInline();
    void largeLambdaIsOnHeapAndWorks();
    void inlineBoundaryAt48Bytes();
    void throwingMoveIsNotInline();
    void overAlignedIsNotInline();
    void functionPointer();
    void nullFunctionPointerGivesEmptyTask();
    void emptyStdFunctionGivesEmptyTask();
    void nonEmptyStdFunctionWorks();
    void invokeDoesNotDestroy();
    void moveConstructLeavesSourceEmpty_data();
    void moveConstructLeavesSourceEmpty();
    void moveAssignLeavesSourceEmpty_data();
    void moveAssignLeavesSourceEmpty();
    void destroyedExactlyOnceInline();
    void destroyedExactlyOnceHeap();
    void destroyedExactlyOnceAfterMoves_data();
    void destroyedExactlyOnceAfterMoves();
    void moveAssignOverNonEmpty_data();
    void moveAssignOverNonEmpty();
    void moveAssignFromEmptyReleasesTarget();
    void selfMoveAssignKeepsCallable();
    void resetAndAssignNullptrRelease_data();
    void resetAndAssignNullptrRelease();
    void argumentsAndReturnValue();
    void triviallyCopyableCaptureSurvivesMoves();
    void moveOnlyArgumentIsForwarded();
};

void tst_Task::defaultAndNullptrAreEmpty() {
    Task a;
    QVERIFY(!a);
    QVERIFY(a == nullptr);
    QVERIFY(!a.isInline());

    Task b(nullptr);
    QVERIFY(!b);
    QVERIFY(b == nullptr);
    QVERIFY(!b.isInline());
}

void tst_Task::smallLambdaIsInline() {
    int x = 0;
    Task t([&x] { ++x; });
    QVERIFY(bool(t));
    QVERIFY(!(t == nullptr));
    QVERIFY(t.isInline());
    t();
    QCOMPARE(x, 1);
}

void tst_Task::largeLambdaIsOnHeapAndWorks() {
    std::array<int, 16> data{}; // 64 bytes captured by value
    for (int i = 0; i < 16; ++i)
        data[std::size_t(i)] = i + 1;
    int sum = 0;
    auto lambda = [data, &sum] {
        for (int v : data)
            sum += v;
    };
    static_assert(sizeof(lambda) > Task::kInlineSize);
    Task t(std::move(lambda));
    QVERIFY(bool(t));
    QVERIFY(!t.isInline());
    t();
    QCOMPARE(sum, 136);
}

void tst_Task::inlineBoundaryAt48Bytes() {
    int calls = 0;
    // Exactly kInlineSize bytes: inline.
    auto exact = [s = Sized<Task::kInlineSize - sizeof(int*)>{{}, &calls}] { ++*s.calls; };
    static_assert(sizeof(exact) == Task::kInlineSize);
    Task a(std::move(exact));
    QVERIFY(a.isInline());
    a();
    QCOMPARE(calls, 1);

    // One pointer more: heap.
    auto over = [s = Sized<Task::kInlineSize>{{}, &calls}] { ++*s.calls; };
    static_assert(sizeof(over) > Task::kInlineSize);
    Task b(std::move(over));
    QVERIFY(bool(b));
    QVERIFY(!b.isInline());
    b();
    QCOMPARE(calls, 2);
}

void tst_Task::throwingMoveIsNotInline() {
    int calls = 0;
    static_assert(!std::is_nothrow_move_constructible_v<ThrowingMoveCallable>);
    Task t(ThrowingMoveCallable{&calls});
    QVERIFY(bool(t));
    QVERIFY(!t.isInline());
    t();
    QCOMPARE(calls, 1);
}

void tst_Task::overAlignedIsNotInline() {
    int calls = 0;
    Task t(OverAligned{&calls});
    QVERIFY(bool(t));
    QVERIFY(!t.isInline());
    t();
    Task moved(std::move(t));
    moved();
    QCOMPARE(calls, 2);
}

void tst_Task::functionPointer() {
    int x = 0;
    Function<void(int&)> f(&freeFunction);
    QVERIFY(bool(f));
    QVERIFY(f.isInline());
    f(x);
    f(x);
    QCOMPARE(x, 2);
}

void tst_Task::nullFunctionPointerGivesEmptyTask() {
    void (*fp)() = nullptr;
    Task t(fp);
    QVERIFY(!t);
    QVERIFY(t == nullptr);
    QVERIFY(!t.isInline());

    int (*fp2)(int, int) = nullptr;
    Function<int(int, int)> f(fp2);
    QVERIFY(!f);
}

void tst_Task::emptyStdFunctionGivesEmptyTask() {
    std::function<void()> empty;
    Task a(empty); // by lvalue
    QVERIFY(!a);
    QVERIFY(a == nullptr);

    Task b(std::function<void()>{}); // by rvalue
    QVERIFY(!b);
    QVERIFY(!b.isInline());
}

void tst_Task::nonEmptyStdFunctionWorks() {
    int x = 0;
    std::function<void()> f = [&x] { ++x; };
    Task t(f); // copies the std::function
    QVERIFY(bool(t));
    t();
    f();
    QCOMPARE(x, 2);
}

void tst_Task::invokeDoesNotDestroy() {
    Tracker tr;
    {
        Task t(SmallCallable{Probe(&tr)});
        t();
        t();
        QCOMPARE(tr.calls, 2);
        QCOMPARE(tr.finalDestroys, 0);
        QCOMPARE(tr.live, 1);
    }
    QCOMPARE(tr.finalDestroys, 1);
    QCOMPARE(tr.live, 0);
}

void tst_Task::moveConstructLeavesSourceEmpty_data() {
    QTest::addColumn<bool>("big");
    QTest::newRow("inline") << false;
    QTest::newRow("heap") << true;
}

void tst_Task::moveConstructLeavesSourceEmpty() {
    QFETCH(bool, big);
    Tracker tr;
    {
        Task a = big ? Task(BigCallable{Probe(&tr)}) : Task(SmallCallable{Probe(&tr)});
        QCOMPARE(a.isInline(), !big);
        Task b(std::move(a));
        QVERIFY(!a); // NOLINT(bugprone-use-after-move): checking the documented moved-from state
        QVERIFY(a == nullptr);
        QVERIFY(!a.isInline());
        QVERIFY(bool(b));
        QCOMPARE(b.isInline(), !big);
        QCOMPARE(tr.finalDestroys, 0);
        b();
        QCOMPARE(tr.calls, 1);
    }
    QCOMPARE(tr.finalDestroys, 1);
    QCOMPARE(tr.live, 0);
}

void tst_Task::moveAssignLeavesSourceEmpty_data() {
    moveConstructLeavesSourceEmpty_data();
}

void tst_Task::moveAssignLeavesSourceEmpty() {
    QFETCH(bool, big);
    Tracker tr;
    {
        Task a = big ? Task(BigCallable{Probe(&tr)}) : Task(SmallCallable{Probe(&tr)});
        Task b;
        b = std::move(a);
        QVERIFY(!a); // NOLINT(bugprone-use-after-move)
        QVERIFY(bool(b));
        QCOMPARE(b.isInline(), !big);
        b();
        QCOMPARE(tr.calls, 1);
        QCOMPARE(tr.finalDestroys, 0);
    }
    QCOMPARE(tr.finalDestroys, 1);
    QCOMPARE(tr.live, 0);
}

void tst_Task::destroyedExactlyOnceInline() {
    Tracker tr;
    {
        Task t([p = Probe(&tr)]() mutable { p(); });
        QVERIFY(t.isInline());
        QCOMPARE(tr.finalDestroys, 0);
        QCOMPARE(tr.live, 1); // the temporary lambda's Probe is gone, one copy lives in the Task
        t();
    }
    QCOMPARE(tr.calls, 1);
    QCOMPARE(tr.finalDestroys, 1);
    QCOMPARE(tr.live, 0);
}

void tst_Task::destroyedExactlyOnceHeap() {
    Tracker tr;
    {
        std::array<char, 64> pad{};
        Task t([p = Probe(&tr), pad]() mutable {
            (void)pad;
            p();
        });
        QVERIFY(!t.isInline());
        QCOMPARE(tr.finalDestroys, 0);
        QCOMPARE(tr.live, 1);
        t();
    }
    QCOMPARE(tr.calls, 1);
    QCOMPARE(tr.finalDestroys, 1);
    QCOMPARE(tr.live, 0);
}

void tst_Task::destroyedExactlyOnceAfterMoves_data() {
    moveConstructLeavesSourceEmpty_data();
}

void tst_Task::destroyedExactlyOnceAfterMoves() {
    QFETCH(bool, big);
    Tracker tr;
    {
        Task a = big ? Task(BigCallable{Probe(&tr)}) : Task(SmallCallable{Probe(&tr)});
        Task b(std::move(a));
        Task c;
        c = std::move(b);
        Task d(std::move(c));
        // Moved-from Tasks are destroyed at scope end too: none of them may destroy the callable.
        QCOMPARE(tr.finalDestroys, 0);
        QCOMPARE(tr.live, 1);
        d();
        QCOMPARE(tr.calls, 1);
    }
    QCOMPARE(tr.finalDestroys, 1);
    QCOMPARE(tr.live, 0);
}

void tst_Task::moveAssignOverNonEmpty_data() {
    QTest::addColumn<bool>("targetBig");
    QTest::addColumn<bool>("sourceBig");
    QTest::newRow("inline<-inline") << false << false;
    QTest::newRow("inline<-heap") << false << true;
    QTest::newRow("heap<-inline") << true << false;
    QTest::newRow("heap<-heap") << true << true;
}

void tst_Task::moveAssignOverNonEmpty() {
    QFETCH(bool, targetBig);
    QFETCH(bool, sourceBig);
    Tracker target, source;
    {
        Task t =
            targetBig ? Task(BigCallable{Probe(&target)}) : Task(SmallCallable{Probe(&target)});
        Task s =
            sourceBig ? Task(BigCallable{Probe(&source)}) : Task(SmallCallable{Probe(&source)});
        QCOMPARE(target.finalDestroys, 0);
        QCOMPARE(source.finalDestroys, 0);

        t = std::move(s);
        // The previous callable of the target is destroyed exactly once, right away.
        QCOMPARE(target.finalDestroys, 1);
        QCOMPARE(target.live, 0);
        QCOMPARE(target.calls, 0);
        // The source's callable now lives in the target.
        QCOMPARE(source.finalDestroys, 0);
        QCOMPARE(source.live, 1);
        QVERIFY(!s); // NOLINT(bugprone-use-after-move)
        QCOMPARE(t.isInline(), !sourceBig);
        t();
        QCOMPARE(source.calls, 1);
    }
    QCOMPARE(target.finalDestroys, 1);
    QCOMPARE(source.finalDestroys, 1);
    QCOMPARE(source.live, 0);
}

void tst_Task::moveAssignFromEmptyReleasesTarget() {
    Tracker tr;
    Task t(SmallCallable{Probe(&tr)});
    Task empty;
    t = std::move(empty);
    QVERIFY(!t);
    QCOMPARE(tr.finalDestroys, 1);
    QCOMPARE(tr.live, 0);
}

void tst_Task::selfMoveAssignKeepsCallable() {
    Tracker small, big;
    {
        Task a(SmallCallable{Probe(&small)});
        Task b(BigCallable{Probe(&big)});
        Task& aRef = a;
        Task& bRef = b;
        a = std::move(aRef);
        b = std::move(bRef);
        QVERIFY(bool(a));
        QVERIFY(bool(b));
        QCOMPARE(small.finalDestroys, 0);
        QCOMPARE(big.finalDestroys, 0);
        a();
        b();
        QCOMPARE(small.calls, 1);
        QCOMPARE(big.calls, 1);
    }
    QCOMPARE(small.finalDestroys, 1);
    QCOMPARE(big.finalDestroys, 1);
}

void tst_Task::resetAndAssignNullptrRelease_data() {
    moveConstructLeavesSourceEmpty_data();
}

void tst_Task::resetAndAssignNullptrRelease() {
    QFETCH(bool, big);
    Tracker a, b;
    Task t1 = big ? Task(BigCallable{Probe(&a)}) : Task(SmallCallable{Probe(&a)});
    t1.reset();
    QVERIFY(!t1);
    QCOMPARE(a.finalDestroys, 1);
    QCOMPARE(a.live, 0);
    t1.reset(); // on an empty Task: nothing happens
    QCOMPARE(a.finalDestroys, 1);

    Task t2 = big ? Task(BigCallable{Probe(&b)}) : Task(SmallCallable{Probe(&b)});
    t2 = nullptr;
    QVERIFY(!t2);
    QCOMPARE(b.finalDestroys, 1);
    QCOMPARE(b.live, 0);
}

void tst_Task::argumentsAndReturnValue() {
    Function<int(int, int)> f(&add);
    QCOMPARE(f(2, 3), 5);

    int base = 10;
    Function<int(int, int)> g([base](int a, int b) { return base + a * b; });
    QVERIFY(g.isInline());
    QCOMPARE(g(3, 4), 22);

    std::array<int, 20> big{};
    big[19] = 100;
    Function<int(int, int)> h([big](int a, int b) { return big[19] + a - b; });
    QVERIFY(!h.isInline());
    QCOMPARE(h(5, 2), 103);

    // The fd-callback shape used by the loop.
    int seenFd = -1;
    unsigned seenEvents = 0;
    Function<void(int, unsigned)> cb([&](int fd, unsigned ev) {
        seenFd = fd;
        seenEvents = ev;
    });
    cb(7, 3u);
    QCOMPARE(seenFd, 7);
    QCOMPARE(seenEvents, 3u);
}

void tst_Task::moveOnlyArgumentIsForwarded() {
    Function<int(std::unique_ptr<int>)> f([](std::unique_ptr<int> p) { return p ? *p : -1; });
    QCOMPARE(f(std::make_unique<int>(42)), 42);
    QCOMPARE(f(nullptr), -1);

    std::string out;
    Function<void(std::string &&)> g([&out](std::string&& s) { out = std::move(s); });
    g(std::string("hello"));
    QVERIFY(out == "hello");
}

void tst_Task::triviallyCopyableCaptureSurvivesMoves() {
    // A by-value capture of plain data takes the copy-the-buffer path: every byte of the capture
    // must survive moves between Tasks, and the source must end up empty.
    std::array<int, 10> values{1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    int sum = 0;
    int* out = &sum;
    auto f = [values, out] {
        for (int v : values)
            *out += v;
    };
    static_assert(std::is_trivially_copyable_v<decltype(f)>);
    static_assert(sizeof(f) <= libloop::Task::kInlineSize);
    libloop::Task a(f);
    QVERIFY(a.isInline());
    libloop::Task b(std::move(a));
    libloop::Task c;
    c = std::move(b);
    QVERIFY(!a);
    QVERIFY(!b);
    c();
    QCOMPARE(sum, 55);
    c = nullptr;
    QVERIFY(!c);
}

QTEST_APPLESS_MAIN(tst_Task)
#include "tst_task.moc"
