// loop-demo's window: one card per workshop scenario, the controller's live counters, and a
// status line. `controller` is a libloop::demo::ScenarioController (scenariocontroller.h).
import QtQuick
import QtQuick.Layouts
import QtQuick.Controls.Basic

ApplicationWindow {
    id: window
    required property QtObject controller
    readonly property QtObject c: controller

    width: 1180
    height: 780
    visible: true
    title: "loop-demo: libloop workshop scenarios"
    color: "#ffffff"

    function n(v) { return Number(v).toLocaleString(Qt.locale("en_US"), "f", 0) }

    header: ToolBar {
        background: Rectangle { color: "#263238" }
        RowLayout {
            anchors.fill: parent
            anchors.leftMargin: 12
            anchors.rightMargin: 12
            // Responsiveness at a glance: it turns while a scenario runs, and stalls when the
            // loop thread is blocked.
            Rectangle {
                id: heartbeat
                width: 22; height: 22
                color: "transparent"
                border.color: "#80cbc4"; border.width: 2
                radius: 4
                Rectangle { width: 4; height: 11; x: 9; y: 2; color: "#80cbc4" }
                RotationAnimation on rotation {
                    running: window.c.active
                    loops: Animation.Infinite
                    from: 0; to: 360; duration: 1500
                }
            }
            Label {
                text: "loop-demo"
                color: "white"
                font.bold: true
                font.pixelSize: 18
            }
            Label {
                text: "on libloop · fast path " + window.c.fastPathMode + " · " +
                      window.n(window.c.timersPending) + " timers pending · " +
                      window.c.registeredFds + " fd(s)"
                color: "#b0bec5"
                Layout.fillWidth: true
            }
            Label {
                visible: window.c.cycling
                text: "Tour: " + window.c.cycleScenario
                color: "#ffcc80"
                font.bold: true
            }
        }
    }

    footer: Rectangle {
        height: 34
        color: "#eceff1"
        Label {
            objectName: "statusLine"
            anchors.fill: parent
            anchors.leftMargin: 12
            verticalAlignment: Text.AlignVCenter
            elide: Text.ElideRight
            text: window.c.status
        }
    }

    GridLayout {
        anchors.fill: parent
        anchors.margins: 10
        columns: 3
        rowSpacing: 10
        columnSpacing: 10

        ScenarioCard {
            title: "Timer storm"
            description: "N timers pending at once, random delays; each re-arms when it fires."
            plot: "timer heap size, tasks/s"
            running: window.c.timerStorm
            onToggleRequested: (on) => window.c.timerStorm = on
            ParamSlider {
                label: "timers"
                from: 100; to: 100000
                value: window.c.timerCount
                onMoved: (v) => window.c.timerCount = v
            }
            ParamSlider {
                label: "max delay"
                from: 10; to: 5000; unit: " ms"
                value: window.c.timerMaxDelayMs
                onMoved: (v) => window.c.timerMaxDelayMs = v
            }
            Stat { label: "storm timers pending"; value: window.n(window.c.stormTimers) }
            Stat { label: "timers fired"; value: window.n(window.c.timersFired) }
        }

        ScenarioCard {
            title: "Microtask flood"
            description: "Self-requeuing microtasks: the queue never empties. The checkpoint " +
                         "budget cuts each checkpoint short, so input and timers still get through."
            plot: "microtask ring + overflow, budget hits, utilisation"
            running: window.c.microtaskFlood
            onToggleRequested: (on) => window.c.microtaskFlood = on
            ParamSlider {
                label: "flood size"
                from: 1; to: 20000
                value: window.c.floodSize
                onMoved: (v) => window.c.floodSize = v
            }
            Stat { label: "flood microtasks run"; value: window.n(window.c.microtasksRun) }
        }

        ScenarioCard {
            title: "Promise chains"
            description: "Batches of promise chains resolved by one timer: every then() is a " +
                         "microtask; all() waits for the tails."
            plot: "microtask ring, tasks/s"
            running: window.c.promiseChains
            onToggleRequested: (on) => window.c.promiseChains = on
            ParamSlider {
                label: "chains"
                from: 1; to: 2000
                value: window.c.promiseChainCount
                onMoved: (v) => window.c.promiseChainCount = v
            }
            ParamSlider {
                label: "depth"
                from: 1; to: 100
                value: window.c.promiseChainDepth
                onMoved: (v) => window.c.promiseChainDepth = v
            }
            Button {
                text: "Run one batch"
                onClicked: window.c.runPromiseBatch()
            }
            Stat { label: "promises settled"; value: window.n(window.c.promisesSettled) }
            Stat { label: "batches"; value: window.n(window.c.promiseBatches) }
        }

        ScenarioCard {
            title: "Blocking task"
            description: "Busy work on the loop thread (once a second while on). Everything " +
                         "else waits: the heartbeat stalls, latency spikes."
            plot: "latency percentiles (max), timer lateness, utilisation"
            running: window.c.blocking
            onToggleRequested: (on) => window.c.blocking = on
            ParamSlider {
                label: "block"
                from: 10; to: 2000; unit: " ms"
                value: window.c.blockMs
                onMoved: (v) => window.c.blockMs = v
            }
            Button {
                text: "Block once"
                onClicked: window.c.blockOnce()
            }
            Stat { label: "blocks"; value: window.n(window.c.blocksDone) }
            Stat {
                label: "last timer lateness"
                value: window.c.lastBlockLatenessMs.toFixed(1) + " ms"
            }
        }

        ScenarioCard {
            title: "Fast path"
            description: "No fd registered: the loop waits on a futex, not epoll. Register an " +
                         "idle fd, or force a mode. Forced is refused while an fd is registered."
            plot: "fast-path mode, registered fds"
            running: window.c.fastPathSwitching
            onToggleRequested: (on) => window.c.fastPathSwitching = on
            RowLayout {
                Repeater {
                    model: ["Auto", "Forced", "Disabled"]
                    Button {
                        required property string modelData
                        text: modelData
                        highlighted: window.c.fastPathMode === modelData
                        onClicked: window.c.switchFastPath(modelData)
                    }
                }
            }
            // A Switch, not a CheckBox: the Basic style's CheckBox indicator image is never freed
            // by Qt 6.4 (LeakSanitizer reports it, with Qt's own dispatcher too).
            Switch {
                text: "idle fd registered"
                checkable: false
                checked: window.c.fdRegistered
                onClicked: window.c.fdRegistered = !window.c.fdRegistered
            }
            Stat { label: "mode"; value: window.c.fastPathMode }
            Stat { label: "refusals"; value: window.n(window.c.fastPathRefusals) }
        }

        ScenarioCard {
            title: "Socket ping-pong"
            description: "Bytes bounce over a socketpair, both ends on the loop: fd callbacks " +
                         "as fast as epoll delivers them."
            plot: "tasks/s, utilisation, registered fds"
            running: window.c.pingPong
            onToggleRequested: (on) => window.c.pingPong = on
            ParamSlider {
                label: "balls"
                from: 1; to: 64
                value: window.c.pingPongBalls
                onMoved: (v) => window.c.pingPongBalls = v
            }
            Stat { label: "round trips"; value: window.n(window.c.roundTrips) }
        }

        ScenarioCard {
            Layout.columnSpan: 3
            Layout.fillHeight: false
            title: "Calm"
            description: "Stops every scenario, cancels their timers, closes their fds and puts " +
                         "the fast path back to Auto. The tour runs every scenario in turn."
            toggleable: false
            running: !window.c.active
            RowLayout {
                Button {
                    text: "Calm"
                    font.bold: true
                    onClicked: window.c.calm()
                }
                Button {
                    text: window.c.cycling ? "Stop the tour" : "Tour (5 s each)"
                    onClicked: window.c.cycling ? window.c.stopCycle() : window.c.startCycle(5)
                }
                Label {
                    Layout.leftMargin: 12
                    text: window.c.active ? "Running: " + window.c.runningScenarios.join(", ")
                                          : "Nothing running."
                }
            }
        }
    }
}
