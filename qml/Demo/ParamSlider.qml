// A labelled slider for one scenario parameter. `value` follows the controller; moving the
// handle asks for a new value when it is released (a timer storm restarts on every change).
import QtQuick
import QtQuick.Layouts
import QtQuick.Controls.Basic

RowLayout {
    id: row
    property string label
    property real from: 1
    property real to: 100
    property real value: 1
    property string unit: ""
    signal moved(real value)

    Layout.fillWidth: true
    Label {
        text: row.label
        Layout.preferredWidth: 90
    }
    Slider {
        id: slider
        Layout.fillWidth: true
        from: row.from
        to: row.to
        stepSize: 1
        live: false
        value: row.value
        onValueChanged: {
            if (Math.round(value) !== Math.round(row.value))
                row.moved(Math.round(value))
            value = Qt.binding(() => row.value)
        }
    }
    Label {
        text: Math.round(slider.pressed ? slider.valueAt(slider.position) : row.value) + row.unit
        horizontalAlignment: Text.AlignRight
        Layout.preferredWidth: 70
    }
}
