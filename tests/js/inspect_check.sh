#!/usr/bin/env bash
# loop-run --inspect (and LIBLOOP_INSPECT=1) starts the probe: while the script runs, a socket
# named after loop-run's pid appears in the user's probe directory, and it is gone after exit.
set -u
looprun=$1
dir=$(mktemp -d)
chmod 700 "$dir"
trap 'rm -rf "$dir"' EXIT
script="$dir/wait.js"
echo 'setTimeout(() => console.log("done"), 1500);' > "$script"
check() { # $1: how the probe is asked for
    local pid found=0
    if [ "$1" = flag ]; then
        XDG_RUNTIME_DIR=$dir "$looprun" --inspect "$script" > "$dir/out" &
    else
        XDG_RUNTIME_DIR=$dir LIBLOOP_INSPECT=1 "$looprun" "$script" > "$dir/out" &
    fi
    pid=$!
    for _ in $(seq 1 100); do
        if ls "$dir"/libloop/probe-"$pid"-*.sock >/dev/null 2>&1; then found=1; break; fi
        sleep 0.05
    done
    wait "$pid" || { echo "FAIL ($1): loop-run exited with $?"; return 1; }
    [ "$found" = 1 ] || { echo "FAIL ($1): no probe socket for pid $pid in $dir/libloop"; ls -la "$dir"/libloop 2>&1; return 1; }
    [ "$(cat "$dir/out")" = done ] || { echo "FAIL ($1): output '$(cat "$dir/out")'"; return 1; }
    if ls "$dir"/libloop/probe-"$pid"-*.sock >/dev/null 2>&1; then
        echo "FAIL ($1): socket left behind after exit"; return 1
    fi
    echo "ok ($1)"
}
check flag && check env
