// One plot (a PlotItem, rendered by C++) with its hover values.
import QtQuick
import QtQuick.Controls
import LibloopInspector.Backend

Rectangle {
    id: panel

    property alias kind: plot.kind
    property alias history: plot.model
    readonly property alias plot: plot

    color: "white"
    border.color: "#c8c8c8"

    PlotItem {
        id: plot
        objectName: "plot-" + kindName
        anchors.fill: parent
        anchors.margins: 1
    }

    Label {
        visible: plot.hovering && plot.hoverText.length > 0
        text: plot.hoverText
        anchors.left: parent.left
        anchors.right: parent.right
        anchors.top: parent.top
        anchors.margins: 4
        padding: 3
        wrapMode: Text.Wrap
        font.pixelSize: 11
        background: Rectangle {
            color: "#fffbe6"
            border.color: "#d0c080"
        }
    }
}
