#include "demooptions.h"

#include "scenariocontroller.h"

namespace libloop::demo {

namespace {

// A positive number of seconds.
bool parseSeconds(const QString& option, const QString& text, double* out, QString* error) {
    bool ok = false;
    const double v = text.toDouble(&ok);
    if (!ok || !(v > 0) || v > 86400) {
        *error = QStringLiteral("%1 needs a number of seconds above 0, got '%2'").arg(option, text);
        return false;
    }
    *out = v;
    return true;
}

bool parseCount(const QString& option, const QString& text, int max, int* out, QString* error) {
    bool ok = false;
    const int v = text.toInt(&ok);
    if (!ok || v < 1 || v > max) {
        *error = QStringLiteral("%1 needs a whole number from 1 to %2, got '%3'")
                     .arg(option)
                     .arg(max)
                     .arg(text);
        return false;
    }
    *out = v;
    return true;
}

} // namespace

bool parseDemoOptions(const QStringList& args, bool allowUnknown, DemoOptions* out,
                      QString* error) {
    DemoOptions o;
    const QStringList valid = ScenarioController::scenarioNames();
    static const QStringList withValue = {
        QStringLiteral("--scenario"),   QStringLiteral("--cycle"),  QStringLiteral("--quit-after"),
        QStringLiteral("--screenshot"), QStringLiteral("--timers"), QStringLiteral("--flood-size"),
        QStringLiteral("--block-ms")};
    for (qsizetype i = 1; i < args.size(); ++i) {
        QString option = args.at(i);
        QString value;
        bool hasValue = false;
        if (const qsizetype eq = option.indexOf(QLatin1Char('='));
            option.startsWith(QLatin1String("--")) && eq > 0) {
            value = option.mid(eq + 1);
            option = option.left(eq);
            hasValue = true;
        }
        if (option == QStringLiteral("-h") || option == QStringLiteral("--help")) {
            o.help = true;
            continue;
        }
        if (!withValue.contains(option)) {
            if (allowUnknown)
                continue;
            *error = QStringLiteral("unknown argument '%1' (see --help)").arg(args.at(i));
            return false;
        }
        if (!hasValue) {
            if (i + 1 >= args.size()) {
                *error = QStringLiteral("%1 needs a value").arg(option);
                return false;
            }
            value = args.at(++i);
        }
        if (option == QStringLiteral("--scenario")) {
            qsizetype named = 0;
            for (const QString& part : value.split(QLatin1Char(','), Qt::SkipEmptyParts)) {
                const QString name = part.trimmed().toLower();
                if (name.isEmpty())
                    continue;
                ++named;
                if (!valid.contains(name)) {
                    *error = QStringLiteral("unknown scenario '%1' (valid: %2)")
                                 .arg(part.trimmed(), valid.join(QStringLiteral(", ")));
                    return false;
                }
                o.scenarios << name;
            }
            if (named == 0) {
                *error = QStringLiteral("--scenario needs a name (valid: %1)")
                             .arg(valid.join(QStringLiteral(", ")));
                return false;
            }
        } else if (option == QStringLiteral("--cycle")) {
            if (!parseSeconds(option, value, &o.cycleSeconds, error))
                return false;
        } else if (option == QStringLiteral("--quit-after")) {
            if (!parseSeconds(option, value, &o.quitAfterSeconds, error))
                return false;
        } else if (option == QStringLiteral("--screenshot")) {
            if (value.isEmpty()) {
                *error = QStringLiteral("--screenshot needs a file name");
                return false;
            }
            o.screenshotPath = value;
        } else if (option == QStringLiteral("--timers")) {
            if (!parseCount(option, value, ScenarioController::kMaxTimerCount, &o.timerCount,
                            error))
                return false;
        } else if (option == QStringLiteral("--flood-size")) {
            if (!parseCount(option, value, ScenarioController::kMaxFloodSize, &o.floodSize, error))
                return false;
        } else if (option == QStringLiteral("--block-ms")) {
            if (!parseCount(option, value, ScenarioController::kMaxBlockMs, &o.blockMs, error))
                return false;
        }
    }
    if (o.cycleSeconds > 0 && !o.scenarios.isEmpty()) {
        *error = QStringLiteral("--cycle and --scenario exclude each other (the tour starts every "
                                "scenario in turn)");
        return false;
    }
    if (!o.screenshotPath.isEmpty() && o.quitAfterSeconds == 0)
        o.quitAfterSeconds = kDefaultScreenshotQuitSeconds;
    *out = o;
    return true;
}

QString demoUsage() {
    return QStringLiteral(
               "Usage: loop-demo [options]\n"
               "A Qt Quick app on libloop's dispatcher with the probe on: workshop scenarios for "
               "loop-inspector.\n"
               "\n"
               "Options:\n"
               "  --scenario NAME[,NAME...]  start scenarios at launch (repeatable)\n"
               "  --cycle SECONDS            tour every scenario in turn, SECONDS each, round "
               "and round\n"
               "  --quit-after SECONDS       quit after SECONDS\n"
               "  --screenshot FILE          save a PNG of the window shortly before quitting\n"
               "                             (quits after %1 s unless --quit-after says "
               "otherwise)\n"
               "  --timers N                 timer storm size (default 5000)\n"
               "  --flood-size N             microtask flood size (default 2000)\n"
               "  --block-ms MS              blocking task length (default 200)\n"
               "  -h, --help                 this text\n"
               "\n"
               "Scenarios: %2\n"
               "Exit status: 0 ok, 1 runtime failure, 2 bad command line.\n")
        .arg(kDefaultScreenshotQuitSeconds)
        .arg(ScenarioController::scenarioNames().join(QStringLiteral(", ")));
}

} // namespace libloop::demo
