// The processes with a probe (click to attach), the loops of the attached process (click to
// plot one), and recording / replay (paths typed, or chosen with the Browse buttons' dialogs).
import QtQuick
import QtQuick.Controls
import QtQuick.Layouts
import LibloopInspector.Backend

ColumnLayout {
    id: side

    required property InspectorController inspector

    spacing: 4

    Label {
        text: qsTr("Processes")
        font.bold: true
    }
    Frame {
        Layout.fillWidth: true
        Layout.preferredHeight: 180
        padding: 1
        ListView {
            id: processes
            objectName: "processList"
            anchors.fill: parent
            clip: true
            model: side.inspector.probes
            delegate: ItemDelegate {
                required property int index
                required property var pid
                required property string name
                width: ListView.view.width
                text: qsTr("%1  (pid %2)").arg(name).arg(pid)
                highlighted: pid === side.inspector.attachedPid
                onClicked: side.inspector.attachRow(index)
            }
            Label {
                anchors.centerIn: parent
                visible: processes.count === 0
                horizontalAlignment: Text.AlignHCenter
                text: qsTr("No process with a probe.\nRun one with LIBLOOP_INSPECT=1.")
                color: "#777777"
            }
        }
    }

    Label {
        text: qsTr("Loops")
        font.bold: true
    }
    Frame {
        Layout.fillWidth: true
        Layout.fillHeight: true
        padding: 1
        ListView {
            objectName: "loopList"
            anchors.fill: parent
            clip: true
            model: side.inspector.history.loops
            delegate: ItemDelegate {
                id: loopRow
                required property var loopId
                required property string name
                required property string state
                required property var timerHeapSize
                required property double tasksPerSecond
                required property double utilisation
                required property string fastPathMode
                width: ListView.view.width
                highlighted: loopId === side.inspector.history.currentLoopId
                onClicked: side.inspector.history.currentLoopId = loopId
                contentItem: Column {
                    Label {
                        text: qsTr("%1  · %2").arg(loopRow.name).arg(loopRow.state)
                        font.bold: loopRow.highlighted
                    }
                    Label {
                        font.pixelSize: 11
                        color: "#555555"
                        text: qsTr("heap %1 · %2/s · busy %3 % · %4")
                              .arg(loopRow.timerHeapSize)
                              .arg(loopRow.tasksPerSecond.toFixed(0))
                              .arg((loopRow.utilisation * 100).toFixed(0))
                              .arg(loopRow.fastPathMode)
                    }
                }
            }
        }
    }

    Label {
        text: qsTr("Session")
        font.bold: true
    }
    RowLayout {
        Layout.fillWidth: true
        Button {
            objectName: "recordButton"
            text: side.inspector.recording ? qsTr("Stop recording") : qsTr("Record")
            onClicked: side.inspector.recording ? side.inspector.stopRecording()
                                                : side.inspector.startRecording()
        }
        Button {
            objectName: "recordBrowseButton"
            text: qsTr("Record to…")
            onClicked: side.inspector.files.chooseRecordFile()
        }
    }
    RowLayout {
        Layout.fillWidth: true
        TextField {
            id: replayPath
            objectName: "replayPathField"
            Layout.fillWidth: true
            placeholderText: qsTr("session file to replay")
        }
        Button {
            objectName: "replayBrowseButton"
            text: qsTr("Browse…")
            onClicked: side.inspector.files.chooseReplayFile()
        }
    }
    Button {
        objectName: "replayButton"
        text: qsTr("Replay")
        enabled: replayPath.text.length > 0
        onClicked: side.inspector.replay(replayPath.text)
    }
}
