// Playback of a replayed session: play / pause, speed, and the position with its time labels.
// The timing lives in C++ (ReplayPlayer); a click or drag on the slider seeks on release.
import QtQuick
import QtQuick.Controls
import QtQuick.Layouts
import LibloopInspector.Backend

Frame {
    id: bar

    required property ReplayPlayer player

    padding: 4

    RowLayout {
        anchors.fill: parent
        spacing: 6

        Label {
            text: qsTr("Replay")
            font.bold: true
        }
        Button {
            objectName: "playButton"
            // At the end, Play starts again from the start.
            text: bar.player.playing ? qsTr("Pause") : qsTr("Play")
            onClicked: bar.player.togglePlaying()
        }
        ComboBox {
            id: speedBox
            objectName: "speedBox"
            implicitWidth: 80
            textRole: "text"
            valueRole: "value"
            model: bar.player.speeds.map(s => ({ text: s + "x", value: s }))
            currentIndex: bar.player.speeds.indexOf(bar.player.speed)
            displayText: bar.player.speed + "x"
            indicator: Label {
                x: speedBox.width - width - 8
                y: (speedBox.height - height) / 2
                text: "\u25be"
            }
            onActivated: {
                bar.player.speed = currentValue
                currentIndex = Qt.binding(() => bar.player.speeds.indexOf(bar.player.speed))
            }
        }
        Label {
            objectName: "positionLabel"
            // While dragging: where a release would seek to.
            text: bar.player.formatTime(slider.pressed ? slider.valueAt(slider.position)
                                                       : bar.player.position)
            font.family: "monospace"
        }
        Slider {
            id: slider
            objectName: "positionSlider"
            Layout.fillWidth: true
            from: 0
            to: Math.max(bar.player.duration, 1)
            live: false
            enabled: bar.player.duration > 0
            // live: false moves only the handle while pressed; the value arrives with the
            // release (keys change it at once).
            onPressedChanged: if (!pressed) bar.player.seek(value)
            onMoved: if (!pressed) bar.player.seek(value)
            // Follows the playback, except while the user holds the handle.
            Binding on value {
                value: bar.player.position
                when: !slider.pressed
                restoreMode: Binding.RestoreNone
            }
        }
        Label {
            objectName: "durationLabel"
            text: bar.player.formatTime(bar.player.duration)
            font.family: "monospace"
        }
    }
}
