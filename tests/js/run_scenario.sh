#!/usr/bin/env bash
# Runs one JS scenario through loop-run and compares its stdout with <name>.expected exactly.
# Directives in the script's leading comments:
#   // exit: N          expected exit code (default 0)
#   // stderr: TEXT     a line that stderr must contain (may repeat)
#   // args: A B ...    arguments passed after the script
set -u
looprun=$1 script=$2
expected=${script%.js}.expected
want_exit=$(sed -n 's#^// exit: ##p' "$script" | head -1)
want_exit=${want_exit:-0}
args=$(sed -n 's#^// args: ##p' "$script" | head -1)
out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
# shellcheck disable=SC2086
"$looprun" "$script" $args >"$out" 2>"$err"
code=$?
fail=0
if [ "$code" != "$want_exit" ]; then
    echo "FAIL: exit code $code, expected $want_exit"; fail=1
fi
if ! diff -u "$expected" "$out"; then
    echo "FAIL: stdout differs from $expected (diff above: - expected, + actual)"; fail=1
fi
while IFS= read -r line; do
    if ! grep -qF -- "$line" "$err"; then
        echo "FAIL: stderr lacks: $line"; fail=1
    fi
done < <(sed -n 's#^// stderr: ##p' "$script")
if [ $fail != 0 ]; then
    echo "--- stderr ---"; cat "$err"
fi
exit $fail
