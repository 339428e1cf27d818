#!/usr/bin/env bash
# libloop set-up script: installs missing Debian 12 packages, configures, builds, then
#   ./setup.sh run    runs the main job: the workshop demo (loop-demo) with the live inspector
#                     (loop-inspector) attached; without a display both run offscreen for a few
#                     seconds, write screenshots into $BUILD_DIR/screenshots and print snapshots
#   ./setup.sh test   builds everything and runs the whole test suite (ctest)
# Environment: BUILD_DIR (default build), JOBS (default: number of cores).
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(
    cmake ninja-build g++ pkg-config
    qt6-base-dev qt6-base-private-dev qt6-declarative-dev qt6-declarative-private-dev
    qt6-declarative-dev-tools libqcustomplot-dev
    qml6-module-qtqml qml6-module-qtqml-models qml6-module-qtqml-workerscript
    qml6-module-qtquick qml6-module-qtquick-controls qml6-module-qtquick-templates
    qml6-module-qtquick-layouts qml6-module-qtquick-window qml6-module-qttest
    libuv1-dev libboost-dev
    clang libclang-rt-14-dev
    xvfb xauth xdotool
)

install_missing() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "setup.sh: installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}

configure() {
    cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLIBLOOP_WERROR=ON "$@"
}

case "${1:-}" in
run)
    install_missing
    configure
    cmake --build "$BUILD_DIR" -j "$JOBS" --target loop-demo loop-inspector
    demo="$BUILD_DIR/inspector/demo/loop-demo"
    inspector="$BUILD_DIR/inspector/app/loop-inspector"
    if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
        XDG_RUNTIME_DIR=$(mktemp -d /tmp/libloop-rt.XXXXXX)
        chmod 700 "$XDG_RUNTIME_DIR"
        export XDG_RUNTIME_DIR
    fi
    headless=0
    if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] || [ "${QT_QPA_PLATFORM:-}" = offscreen ]; then
        headless=1
        export QT_QPA_PLATFORM=offscreen
    fi
    shots="$BUILD_DIR/screenshots"
    mkdir -p "$shots"
    if [ $headless = 1 ]; then
        # A scripted tour of every scenario (2 s each) while the inspector watches.
        "$demo" --cycle 2 --quit-after 24 --screenshot "$shots/demo.png" &
    else
        "$demo" &
    fi
    demo_pid=$!
    trap 'kill "$demo_pid" 2>/dev/null || true' EXIT
    for _ in $(seq 1 200); do # its probe socket (the demo starts the probe itself)
        ls "$XDG_RUNTIME_DIR"/libloop/probe-"$demo_pid"-*.sock >/dev/null 2>&1 && break
        sleep 0.05
    done
    if [ $headless = 0 ]; then
        "$inspector" --pid "$demo_pid"
        exit 0
    fi
    echo "setup.sh: three snapshots of loop-demo (pid $demo_pid), as loop-inspector --dump prints them:"
    "$inspector" --dump --pid "$demo_pid" --count 3 --rate 2 --timeout 20 | cut -c1-400
    "$inspector" --pid "$demo_pid" --screenshot "$shots" --screenshot-after 10
    wait "$demo_pid" || true
    trap - EXIT
    echo "setup.sh: screenshots in $shots:"
    ls -1 "$shots"/*.png | sed 's/^/  /'
    ;;
test)
    install_missing
    configure
    cmake --build "$BUILD_DIR" -j "$JOBS"
    # QT_QPA_PLATFORM / XDG_RUNTIME_DIR: GUI suites run offscreen with a private runtime dir.
    export QT_QPA_PLATFORM=offscreen
    export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d /tmp/libloop-rt.XXXXXX)}
    chmod 700 "$XDG_RUNTIME_DIR"
    ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" "${@:2}"
    ;;
*)
    echo "usage: $0 run|test" >&2
    exit 2
    ;;
esac
