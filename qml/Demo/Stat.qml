// A live counter: a name and a value.
import QtQuick
import QtQuick.Layouts
import QtQuick.Controls.Basic

RowLayout {
    property string label
    property string value
    Layout.fillWidth: true
    Label {
        text: parent.label
        color: "#555555"
        Layout.fillWidth: true
    }
    Label {
        text: parent.value
        font.family: "monospace"
        font.bold: true
    }
}
