#!/usr/bin/env bash
# Runs every fuzz harness under libFuzzer (clang, ASan+UBSan) for SECONDS each, one after another.
#   tests/fuzz/run.sh 60            # CI's budget
#   tests/fuzz/run.sh 3600          # an hour per harness
#   FUZZ_ONLY="loop promise" tests/fuzz/run.sh 600
# Each harness starts from its seed corpus (tests/fuzz/corpus/<name>) plus what earlier runs
# in this build directory found (BUILD/fuzz-work/<name>). A crash, leak, sanitizer report or
# timeout stops that harness: the input is saved as BUILD/fuzz-artifacts/<name>/crash-*, and
# the script exits non-zero after the other harnesses ran. To keep a finding as a regression
# test, fix the bug and copy the input into tests/fuzz/corpus/<name>/ (the normal suite replays
# every corpus file).
# Environment: FUZZ_BUILD_DIR (default build-fuzz), JOBS (build parallelism, default 2),
# FUZZ_ONLY (harness names), FUZZ_ARGS (extra libFuzzer flags).
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_EACH=${1:?usage: tests/fuzz/run.sh SECONDS}
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
JOBS=${JOBS:-2}

if ! command -v clang++ >/dev/null; then
    echo "run.sh: clang++ is needed (Debian: apt-get install clang)" >&2
    exit 2
fi
CC=clang CXX=clang++ cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DLIBLOOP_FUZZ=ON -DLIBLOOP_BUILD_BENCH=OFF -DLIBLOOP_BUILD_TESTS=ON >/dev/null
cmake --build "$BUILD" -j "$JOBS" --target fuzzers

names=${FUZZ_ONLY:-$(cat "$BUILD/tests/fuzz/fuzzers.txt")}
status=0
summary=()
for name in $names; do
    bin="$BUILD/tests/fuzz/fuzz_$name"
    work="$BUILD/fuzz-work/$name"
    artifacts="$BUILD/fuzz-artifacts/$name"
    mkdir -p "$work" "$artifacts"
    log="$BUILD/fuzz-$name.log"
    echo "run.sh: fuzz_$name for ${SECONDS_EACH}s (log: $log)"
    set +e
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
        "$bin" -max_total_time="$SECONDS_EACH" -timeout=20 -rss_limit_mb=4096 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" ${FUZZ_ARGS:-} \
        "$work" "tests/fuzz/corpus/$name" >"$log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    if [ $rc -ne 0 ]; then
        status=1
        tail -40 "$log"
        summary+=("fuzz_$name: FOUND A DEFECT after ${execs:-?} executions (exit $rc); input in $artifacts")
    else
        summary+=("fuzz_$name: ${execs:-?} executions in ${SECONDS_EACH}s, coverage ${cov:-?} edges, no finding")
    fi
done
printf '%s\n' "${summary[@]}"
exit $status
