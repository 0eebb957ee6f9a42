"""Log records of the library and the window, one line each, from any thread into the log pane."""
from __future__ import annotations

import collections
import logging

from PySide6.QtWidgets import QPlainTextEdit

from realtime_feat.logfile import OneLineFormatter


class LogQueue(logging.Handler):
    """One line per log record of the library and the window, from any thread; they wait here until
    the GUI thread moves them into the log pane (`drain`, called by the status timer)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        self.lines: collections.deque = collections.deque(maxlen=1000)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))  # one line; the log file keeps the traceback

    def drain(self, pane: QPlainTextEdit) -> None:
        while self.lines:
            pane.appendPlainText(self.lines.popleft())
