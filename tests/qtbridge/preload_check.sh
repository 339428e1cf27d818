#!/usr/bin/env bash
# Runs preload_probe_app (which knows nothing of libloop) under libloop-preload.so and checks
# what the preload reached. Usage: preload_check.sh PROBE_APP PRELOAD_SO
set -u
app=$1 preload=$2
fail=0
# A sanitizer build's preload needs the sanitizer runtime loaded before it.
runtime=$(ldd "$preload" | awk '/lib(a|t)san\.so/ {print $3; exit}')
[ -n "$runtime" ] && preload="$runtime $preload"
ours=libloop::qt::LoopEventDispatcher
gui=libloop::qt::LoopGuiEventDispatcher
out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
run() { env "$@" >"$out" 2>"$err"; }
expect() { # expect LINE
    grep -qxF "$1" "$out" || { echo "FAIL: expected '$1' in:"; cat "$out" "$err"; fail=1; }
}
export QT_QPA_PLATFORM=offscreen

# Every application object and every started thread; a thread with its own dispatcher keeps it;
# nothing printed without LIBLOOP_VERBOSE.
run LD_PRELOAD="$preload" "$app" core
expect "app1 $ours"; expect "thread $ours"; expect "ownthread QEventDispatcherUNIX"; expect "app2 $ours"
if grep -q libloop "$err"; then echo "FAIL: preload printed without LIBLOOP_VERBOSE:"; cat "$err"; fail=1; fi

# Without the preload the same program runs on Qt's dispatcher (the check can tell them apart).
run "$app" core
expect "app1 QEventDispatcherGlib"; expect "thread QEventDispatcherGlib"

# LIBLOOP_THREADS=0 keeps worker threads on Qt's dispatcher.
run LD_PRELOAD="$preload" LIBLOOP_THREADS=0 "$app" core
expect "app1 $ours"; expect "thread QEventDispatcherGlib"

# An application that installs its own dispatcher keeps it.
run LD_PRELOAD="$preload" "$app" own
expect "own QEventDispatcherUNIX"

# An unmodified Qt Quick application runs on the GUI variant and its QML Timer ticks.
run LD_PRELOAD="$preload" "$app" quick
expect "quick $gui"; expect "quick-exit 0"

# A widgets application (QApplication) runs on the GUI variant.
run LD_PRELOAD="$preload" "$app" widgets
expect "widgets $gui"; expect "widgets-exit 0"

# A Qt version mismatch installs nothing and warns exactly once.
run LD_PRELOAD="$preload" LIBLOOP_PRELOAD_QT_VERSION=6.99.0 "$app" core
expect "app1 QEventDispatcherGlib"; expect "app2 QEventDispatcherGlib"
n=$(grep -c "keeping Qt's event dispatcher" "$err")
[ "$n" = 1 ] || { echo "FAIL: expected one mismatch warning, got $n:"; cat "$err"; fail=1; }

# LIBLOOP_VERBOSE=1 says what was reached.
run LD_PRELOAD="$preload" LIBLOOP_VERBOSE=1 "$app" core
grep -q "reached 2 application object(s) and 1 thread(s)" "$err" ||
    { echo "FAIL: verbose summary missing:"; cat "$err"; fail=1; }

[ $fail = 0 ] && echo "PASS: preload reached every application object and thread"
exit $fail
