"""The log file: the full traceback of every error that the window and the CLI show as one line
(DESIGN.md, "Faults").

    install_log_file()            # once at start (idempotent): the `realtime_feat` logger also writes to
                                  # log_path(), rotating (5 MB × 3), tracebacks included; None if it cannot
    line = log_exception(exc, "analysis stopped")   # traceback to the file; the line for the screen:
                                  # "analysis stopped: <first line> (details: <log file>)"
    sys.excepthook = excepthook   # an uncaught error: traceback to the file, one line to the screen loggers
    handler.setFormatter(OneLineFormatter(fmt))     # a screen handler: one line, the record untouched

The folder is the platform's user log folder (platformdirs), or $REALTIME_FEAT_LOG_DIR. Handlers share
each LogRecord: a screen handler must format a line without changing the record (`OneLineFormatter`),
or the file handler after it loses the traceback.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import traceback
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Optional

from .errors import first_line

ENV_LOG_DIR = "REALTIME_FEAT_LOG_DIR"
LOGGER = "realtime_feat"
MAX_BYTES, BACKUPS = 5_000_000, 3

log = logging.getLogger(__name__)
_lock = threading.Lock()
_unwritable: set[Path] = set()   # folders already warned about: one warning each


def log_path() -> Path:
    """$REALTIME_FEAT_LOG_DIR/realtime-feat.log, else the platform's user log folder's."""
    from platformdirs import user_log_dir

    return Path(os.environ.get(ENV_LOG_DIR) or user_log_dir("realtime-feat", appauthor=False)) / "realtime-feat.log"


class _LogFile(RotatingFileHandler):
    """Ours among the logger's handlers (found again by type)."""

    def handleError(self, record: logging.LogRecord) -> None:
        """A log file on the disk that just filled up: the one-line screen output goes on, without
        logging's own traceback on stderr for every record."""


class OneLineFormatter(logging.Formatter):
    """The first line of the formatted message, never a traceback; the record is left as it came, so
    the handlers after this one (the log file) still format its traceback."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()  # what logging.Formatter.format sets too, the same for all
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        return (self.formatMessage(record).splitlines() or [""])[0]


def _installed() -> Optional[_LogFile]:
    return next((h for h in logging.getLogger(LOGGER).handlers if isinstance(h, _LogFile)), None)


def install_log_file(level: int = logging.INFO) -> Optional[Path]:
    """Attach the rotating log file to the `realtime_feat` logger, once (again only when log_path()
    changed), and let INFO records through. Its path, or None when it cannot be written: one warning,
    and the program goes on without it."""
    path = log_path()
    logger = logging.getLogger(LOGGER)
    with _lock:
        handler = _installed()
        if handler is not None:
            if handler.baseFilename == os.path.abspath(path):
                return path
            logger.removeHandler(handler)
            handler.close()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handler = _LogFile(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")
        except OSError as exc:
            if path.parent not in _unwritable:
                _unwritable.add(path.parent)
                log.warning("no log file: %s cannot be written (%s); set %s to a writable folder", path.parent,
                            getattr(exc, "strerror", None) or first_line(exc), ENV_LOG_DIR)
            return None
        handler.setLevel(level)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(threadName)s] %(name)s: %(message)s"))
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > level:
            logger.setLevel(level)
    return path


def log_exception(exc: BaseException, what: str) -> str:
    """Write `what` and `exc`'s traceback to the log file only; the one line for the screen,
    "<what>: <first line of exc> (details: <log file>)" (without the details when there is no file)."""
    return _to_file(f"{what}: {first_line(exc)}", (type(exc), exc, exc.__traceback__))


def _to_file(line: str, exc_info: tuple) -> str:
    path = install_log_file()
    handler = _installed()
    if path is None or handler is None:
        return line
    handler.handle(logging.getLogger(LOGGER).makeRecord(LOGGER, logging.ERROR, __file__, 0, "%s", (line,), exc_info))
    return f"{line} (details: {path})"


def excepthook(kind: type, value: BaseException, tb) -> None:
    """For `sys.excepthook`: an uncaught error's traceback to the log file, and one line, naming where it
    happened and the file, to the `realtime_feat` logger's screen handlers (the window's log pane)."""
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, tb)
        return
    where = traceback.extract_tb(tb)[-1] if tb else None
    line = _to_file(f"unexpected {kind.__name__}: {first_line(value)}"
                    + (f" ({Path(where.filename).name}:{where.lineno})" if where else ""), (kind, value, tb))
    logging.getLogger(LOGGER).error("%s", line)
