"""`realtime-feat` / `realtime-feat app`: the desktop window. Qt is imported here and below only."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from .controller import AppOptions


def has_display() -> bool:
    """Whether Qt has a screen to open a window on (an explicit QT_QPA_PLATFORM is trusted)."""
    if os.environ.get("QT_QPA_PLATFORM"):
        return True
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def sessions_dir(options: AppOptions) -> Path:
    from platformdirs import user_documents_dir

    return Path(options.sessions) if options.sessions else Path(user_documents_dir()) / "realtime-feat"


def signal_names() -> dict[str, list[str]]:
    """py-feat's own names for the bars (importing py-feat takes seconds: the splash covers it)."""
    from feat.multitask import AU_NAMES_V24, EMOTION_NAMES_V24
    from feat.utils import MP_BLENDSHAPE_NAMES

    return {"au": list(AU_NAMES_V24), "emotions": list(EMOTION_NAMES_V24), "blendshapes": list(MP_BLENDSHAPE_NAMES)}


def build_window(options: AppOptions = AppOptions()):
    """The window for `options`; a source in them starts at `first_start`."""
    import pyqtgraph as pg
    from PySide6.QtCore import Qt

    from .main_window import MainWindow

    pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)
    window = MainWindow(options, signal_names(), sessions_dir(options))
    window.resize(1500, 940)
    window.resizeDocks([window.docks["Controls"], window.docks["Selected face"]], [300, 400], Qt.Horizontal)
    return window


def _close_on_signals(*windows) -> None:
    """Ctrl-C on the terminal, or SIGTERM (a logout, `kill`), closes the windows as their close buttons
    do, so a recording in progress is finalised (metadata counts included). Python runs signal
    handlers only between its own instructions: a timer gives it that chance while Qt's loop waits."""
    import signal

    from PySide6.QtCore import QTimer

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: [window.close() for window in windows])
    timer = QTimer(windows[0])
    timer.timeout.connect(lambda: None)
    timer.start(200)


def view_main(session) -> int:
    """`realtime-feat view SESSION_DIR`: the session viewer alone (py-feat and torch are not loaded)."""
    from PySide6.QtWidgets import QApplication

    from .review_window import review_windows

    _install_error_hooks()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("realtime-feat")
    windows = review_windows(session)
    for window in windows:
        window.show()
    _close_on_signals(*windows)
    return app.exec()


def _install_error_hooks() -> None:
    """An error in a slot or a thread: one line in the log pane, the traceback in the log file."""
    import threading

    from realtime_feat import logfile

    logfile.install_log_file()
    sys.excepthook = logfile.excepthook
    threading.excepthook = lambda a: logfile.excepthook(a.exc_type, a.exc_value, a.exc_traceback)


def main(options: AppOptions) -> int:
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtWidgets import QApplication, QSplashScreen
    from PySide6.QtGui import QPixmap

    _install_error_hooks()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("realtime-feat")
    splash = QSplashScreen(QPixmap(420, 120))
    splash.showMessage("realtime-feat: loading py-feat…", Qt.AlignCenter, Qt.white)
    splash.show()
    app.processEvents()
    window = build_window(options)
    window.show()
    _close_on_signals(window)
    splash.finish(window)
    QTimer.singleShot(0, window.first_start)
    return app.exec()
