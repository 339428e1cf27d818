#!/usr/bin/env bash
# Real X input through the dispatcher: start Xvfb, run xcb_click_app on xcb, click its window
# with xdotool, and expect the app to report the click. Exit 77 (skipped) without Xvfb/xdotool.
# Usage: xcb_click.sh APP [qt|libloop]
set -u
app=$1 variant=${2:-libloop}
command -v Xvfb >/dev/null && command -v xdotool >/dev/null || { echo "Xvfb/xdotool missing"; exit 77; }
for n in $(seq 90 140); do [ -e /tmp/.X11-unix/X$n ] || { display=:$n; break; }; done
Xvfb "$display" -screen 0 640x480x24 -nolisten tcp >/dev/null 2>&1 &
xvfb=$!
trap 'kill $xvfb $apppid 2>/dev/null; wait 2>/dev/null' EXIT
export DISPLAY=$display
for _ in $(seq 100); do xdotool getmouselocation >/dev/null 2>&1 && break; sleep 0.1; done
out=$(mktemp)
LIBLOOP_TEST_DISPATCHER=$variant QT_QPA_PLATFORM=xcb "$app" >"$out" 2>&1 &
apppid=$!
win=$(timeout 20 xdotool search --sync --onlyvisible --name libloop-xcb-click | head -1)
if [ -z "$win" ]; then echo "window never mapped"; cat "$out"; exit 1; fi
sleep 0.5
xdotool mousemove --window "$win" 100 75 click 1
for _ in $(seq 200); do kill -0 $apppid 2>/dev/null || break; sleep 0.1; done
wait $apppid; rc=$?
cat "$out"
[ $rc -eq 0 ] && grep -q clicked "$out" && echo "PASS: real X click delivered ($variant)" && exit 0
echo "FAIL: rc=$rc"; exit 1
