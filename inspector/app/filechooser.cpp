#include "filechooser.h"

#include <QtCore/qdatetime.h>
#include <QtCore/qdir.h>
#include <QtGui/qwindow.h>
#include <QtWidgets/qapplication.h>
#include <QtWidgets/qfiledialog.h>

namespace libloop::inspector {

namespace {

const QStringList& sessionFilters() {
    static const QStringList filters{QStringLiteral("Recorded sessions (*.jsonl)"),
                                     QStringLiteral("All files (*)")};
    return filters;
}

} // namespace

FileChooser::FileChooser(QObject* parent) : QObject(parent), startDir_(QDir::currentPath()) {}

FileChooser::~FileChooser() {
    delete dialog_.data();
}

void FileChooser::setParentWindow(QWindow* window) {
    parentWindow_ = window;
}

QFileDialog* FileChooser::dialog() const {
    return dialog_.data();
}

void FileChooser::chooseExportDirectory() {
    openDialog(Purpose::ExportDirectory);
}

void FileChooser::chooseRecordFile() {
    openDialog(Purpose::RecordFile);
}

void FileChooser::chooseReplayFile() {
    openDialog(Purpose::ReplayFile);
}

void FileChooser::closeDialog() {
    if (QFileDialog* d = dialog_.data()) {
        dialog_.clear();
        d->disconnect(this); // closed without an answer: nothing is delivered
        d->hide();
        d->deleteLater();
        emit dialogOpenChanged();
    }
}

void FileChooser::openDialog(Purpose purpose) {
    if (!qobject_cast<QApplication*>(QCoreApplication::instance())) {
        qWarning("loop-inspector: file dialogs need a QApplication");
        return;
    }
    closeDialog();
    const QString start = QDir(startDir_).exists() ? startDir_ : QDir::currentPath();
    auto* d = new QFileDialog(nullptr, QString(), start);
    // Qt's own dialog everywhere (the platform's may need a nested event loop or a portal).
    d->setOption(QFileDialog::DontUseNativeDialog, true);
    switch (purpose) {
    case Purpose::ExportDirectory:
        d->setWindowTitle(tr("Export folder"));
        d->setFileMode(QFileDialog::Directory);
        d->setOption(QFileDialog::ShowDirsOnly, true);
        d->setAcceptMode(QFileDialog::AcceptOpen);
        break;
    case Purpose::RecordFile:
        d->setWindowTitle(tr("Record the session to"));
        d->setFileMode(QFileDialog::AnyFile);
        d->setAcceptMode(QFileDialog::AcceptSave);
        d->setNameFilters(sessionFilters());
        d->setDefaultSuffix(QStringLiteral("jsonl"));
        d->selectFile(
            QStringLiteral("session-%1.jsonl")
                .arg(QDateTime::currentDateTime().toString(QStringLiteral("yyyyMMdd-HHmmss"))));
        break;
    case Purpose::ReplayFile:
        d->setWindowTitle(tr("Replay a recorded session"));
        d->setFileMode(QFileDialog::ExistingFile);
        d->setAcceptMode(QFileDialog::AcceptOpen);
        d->setNameFilters(sessionFilters());
        break;
    }
    if (parentWindow_) {
        d->winId(); // creates the QWindow, so that it can belong to the inspector's window
        d->windowHandle()->setTransientParent(parentWindow_);
    }
    connect(d, &QDialog::finished, this, [this, d](int result) { finished(d, result); });
    dialog_ = d;
    purpose_ = purpose;
    d->open(); // window-modal, returns at once: no nested event loop
    emit dialogOpenChanged();
}

void FileChooser::finished(QFileDialog* d, int result) {
    if (d != dialog_.data())
        return;
    const QStringList files = d->selectedFiles();
    dialog_.clear();
    d->disconnect(this);
    d->deleteLater();
    emit dialogOpenChanged();
    if (result != QDialog::Accepted || files.isEmpty() || files.first().isEmpty())
        return; // cancelled: nothing is delivered
    const QString path = QDir::cleanPath(files.first());
    // The next dialog starts where this one ended.
    startDir_ = purpose_ == Purpose::ExportDirectory ? path : QFileInfo(path).absolutePath();
    switch (purpose_) {
    case Purpose::ExportDirectory:
        emit exportDirectoryChosen(path);
        break;
    case Purpose::RecordFile:
        emit recordFileChosen(path);
        break;
    case Purpose::ReplayFile:
        emit replayFileChosen(path);
        break;
    }
}

} // namespace libloop::inspector
