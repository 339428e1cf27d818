// loop-inspector's window: the toolbar (pause, window, live, rate, exports), the process and loop
// lists, the playback bar of a replay, seven plots of the selected loop and the status line. All
// logic lives in C++ (InspectorController, HistoryModel, ReplayPlayer, FileChooser, PlotItem);
// this file only lays it out.
import QtQuick
import QtQuick.Controls
import QtQuick.Layouts
import LibloopInspector.Backend

ApplicationWindow {
    id: root

    required property InspectorController inspector
    readonly property HistoryModel history: inspector.history

    width: 1400
    height: 900
    visible: true
    title: inspector.attachedPid > 0
           ? qsTr("loop-inspector — %1 (pid %2)").arg(inspector.processName).arg(inspector.attachedPid)
           : qsTr("loop-inspector")

    header: ToolBar {
        RowLayout {
            anchors.fill: parent
            anchors.leftMargin: 6
            anchors.rightMargin: 6
            spacing: 6

            Button {
                objectName: "pauseButton"
                text: root.history.paused ? qsTr("Resume") : qsTr("Pause")
                onClicked: root.history.paused = !root.history.paused
            }
            Label { text: qsTr("Window") }
            ComboBox {
                id: windowBox
                objectName: "windowBox"
                textRole: "text"
                valueRole: "seconds"
                model: [
                    { text: qsTr("10 s"), seconds: 10 },
                    { text: qsTr("30 s"), seconds: 30 },
                    { text: qsTr("1 min"), seconds: 60 },
                    { text: qsTr("2 min"), seconds: 120 },
                    { text: qsTr("5 min"), seconds: 300 },
                    { text: qsTr("10 min"), seconds: 600 }
                ]
                // (indexOfValue() is not re-evaluated when the model arrives: look it up here.)
                currentIndex: model.findIndex(e => e.seconds === root.history.windowSeconds)
                displayText: currentIndex >= 0 ? currentText
                                               : qsTr("%1 s").arg(root.history.windowSeconds.toFixed(1))
                // A text arrow: the Basic style's image indicator leaves its texture behind at
                // exit in Qt 6.4 (seen by LeakSanitizer).
                indicator: Label {
                    x: windowBox.width - width - 8
                    y: (windowBox.height - height) / 2
                    text: "\u25be"
                }
                onActivated: {
                    root.history.windowSeconds = currentValue
                    // Zooming with the wheel changes the window too: keep following it.
                    currentIndex = Qt.binding(
                        () => model.findIndex(e => e.seconds === root.history.windowSeconds))
                }
            }
            Button {
                text: qsTr("Live")
                enabled: !root.history.following
                onClicked: root.history.follow()
                ToolTip.visible: hovered
                ToolTip.text: qsTr("Back to the newest data (wheel: zoom, drag: pan, double click: live)")
            }
            ToolSeparator {}
            Label { text: qsTr("Rate") }
            ComboBox {
                id: rateBox
                objectName: "rateBox"
                implicitWidth: 80
                model: [1, 2, 5, 10, 20, 50, 100]
                currentIndex: model.indexOf(root.inspector.rate)
                displayText: currentIndex >= 0 ? currentText : String(root.inspector.rate)
                indicator: Label {
                    x: rateBox.width - width - 8
                    y: (rateBox.height - height) / 2
                    text: "\u25be"
                }
                onActivated: {
                    root.inspector.rate = currentValue
                    currentIndex = Qt.binding(() => model.indexOf(root.inspector.rate))
                }
            }
            Label { text: qsTr("Hz") }
            ToolSeparator {}
            Button {
                text: qsTr("Export PNG")
                onClicked: root.inspector.exportPng()
            }
            Button {
                text: qsTr("Export CSV")
                onClicked: root.inspector.exportCsv()
            }
            Label { text: qsTr("to") }
            TextField {
                objectName: "exportDirectoryField"
                Layout.fillWidth: true
                Layout.minimumWidth: 120
                text: root.inspector.exportDirectory
                placeholderText: qsTr("export folder")
                onEditingFinished: root.inspector.exportDirectory = text
            }
            Button {
                objectName: "exportBrowseButton"
                text: qsTr("Browse…")
                onClicked: root.inspector.files.chooseExportDirectory()
            }
        }
    }

    RowLayout {
        anchors.fill: parent
        anchors.margins: 6
        spacing: 6

        Sidebar {
            Layout.preferredWidth: 270
            Layout.maximumWidth: 270
            Layout.fillWidth: false
            Layout.fillHeight: true
            inspector: root.inspector
        }

        ColumnLayout {
            Layout.fillWidth: true
            Layout.fillHeight: true
            spacing: 6

            ReplayBar {
                Layout.fillWidth: true
                visible: root.inspector.replaying && root.inspector.player.loaded
                player: root.inspector.player
            }

            GridLayout {
                Layout.fillWidth: true
                Layout.fillHeight: true
                columns: 2
                rowSpacing: 6
                columnSpacing: 6

                Repeater {
                    model: [PlotItem.TimerHeap, PlotItem.MicrotaskRing, PlotItem.FastPath,
                            PlotItem.Latency, PlotItem.TasksPerSecond, PlotItem.Utilisation,
                            PlotItem.QueueDepths]
                    delegate: PlotPanel {
                        required property int modelData
                        kind: modelData
                        history: root.history
                        Layout.fillWidth: true
                        Layout.fillHeight: true
                        Layout.preferredWidth: 500
                        Layout.preferredHeight: 200
                        Layout.columnSpan: modelData === PlotItem.QueueDepths ? 2 : 1
                    }
                }
            }
        }
    }

    footer: Frame {
        padding: 4
        RowLayout {
            anchors.fill: parent
            Label {
                objectName: "statusLine"
                text: root.inspector.statusText
                font.bold: true
            }
            Label {
                Layout.fillWidth: true
                horizontalAlignment: Text.AlignRight
                elide: Text.ElideLeft
                text: root.inspector.message
            }
        }
    }
}
