// FileChooser: the "Browse…" buttons' file dialogs, for QML without QtQuick.Dialogs.
//
// Each choose*() opens Qt's own QFileDialog (never the platform's: DontUseNativeDialog) with
// open(), so it returns at once and the event loop keeps running (no exec()); the dialog is
// window-modal to the inspector's window when one was given. Accepting delivers the path through
// the matching signal; cancelling delivers nothing. One dialog at a time: a new choose*() closes
// the one still open without delivering anything. Needs a QApplication (QFileDialog is a widget);
// under another application object choose*() only warns.
#pragma once

#include <QtCore/qobject.h>
#include <QtCore/qpointer.h>
#include <QtCore/qstring.h>

class QFileDialog;
class QWindow;

namespace libloop::inspector {

class FileChooser : public QObject {
    Q_OBJECT
    Q_PROPERTY(bool dialogOpen READ dialogOpen NOTIFY dialogOpenChanged)
public:
    enum class Purpose { ExportDirectory, RecordFile, ReplayFile };
    Q_ENUM(Purpose)

    explicit FileChooser(QObject* parent = nullptr);
    ~FileChooser() override;

    // Where the dialogs start (the export directory, unless a file was chosen since).
    QString startDirectory() const { return startDir_; }
    void setStartDirectory(const QString& dir) { startDir_ = dir; }
    // The window the dialogs belong to (window-modal to it, centred on it).
    void setParentWindow(QWindow* window);

    bool dialogOpen() const { return !dialog_.isNull(); }
    // The dialog being shown (nullptr when none): tests accept or reject it.
    QFileDialog* dialog() const;
    Purpose purpose() const { return purpose_; }

    // A folder for exports.
    Q_INVOKABLE void chooseExportDirectory();
    // A new (or existing) session file to record to.
    Q_INVOKABLE void chooseRecordFile();
    // An existing session file to replay.
    Q_INVOKABLE void chooseReplayFile();

signals:
    void exportDirectoryChosen(const QString& dir);
    void recordFileChosen(const QString& path);
    void replayFileChosen(const QString& path);
    void dialogOpenChanged();

private:
    void openDialog(Purpose purpose);
    void closeDialog();
    void finished(QFileDialog* dialog, int result);

    QPointer<QFileDialog> dialog_;
    QPointer<QWindow> parentWindow_;
    Purpose purpose_ = Purpose::ExportDirectory;
    QString startDir_;
};

} // namespace libloop::inspector
