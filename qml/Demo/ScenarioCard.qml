// One scenario: a title, what it does to the loop, an on/off switch, and room for its
// parameters and counters (the card's children go below the description).
import QtQuick
import QtQuick.Layouts
import QtQuick.Controls.Basic

Frame {
    id: card
    property string title
    property string description
    property string plot          // which inspector plot to watch
    property bool running: false
    property bool toggleable: true
    signal toggleRequested(bool on)
    default property alias content: body.data

    Layout.fillWidth: true
    Layout.fillHeight: true
    padding: 10

    background: Rectangle {
        color: card.running ? "#eef6ee" : "#fafafa"
        border.color: card.running ? "#4caf50" : "#cccccc"
        radius: 6
    }

    ColumnLayout {
        anchors.fill: parent
        spacing: 4
        RowLayout {
            Layout.fillWidth: true
            Label {
                text: card.title
                font.bold: true
                font.pixelSize: 16
                Layout.fillWidth: true
            }
            Switch {
                visible: card.toggleable
                // The controller decides (a start may be refused): the switch only shows its
                // state and asks for the other one.
                checkable: false
                checked: card.running
                onClicked: card.toggleRequested(!card.running)
            }
        }
        Label {
            text: card.description
            wrapMode: Text.WordWrap
            color: "#444444"
            Layout.fillWidth: true
        }
        Label {
            visible: card.plot.length > 0
            text: "Inspector: " + card.plot
            font.italic: true
            color: "#666666"
            wrapMode: Text.WordWrap
            Layout.fillWidth: true
        }
        ColumnLayout {
            id: body
            Layout.fillWidth: true
            spacing: 2
        }
        Item { Layout.fillHeight: true }
    }
}
