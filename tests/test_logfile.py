"""Tracebacks are kept (DESIGN.md, "Faults"): the screen gets one line naming the log file, the log
file gets the full traceback, and no handler changes a record another handler formats after it."""
from __future__ import annotations

import logging
import sys

import pytest

from realtime_feat import logfile


@pytest.fixture
def log_dir(tmp_path, monkeypatch):
    """A log folder of the test's own; the `realtime_feat` logger as it was afterwards."""
    logger = logging.getLogger(logfile.LOGGER)
    handlers, level = list(logger.handlers), logger.level
    monkeypatch.setenv(logfile.ENV_LOG_DIR, str(tmp_path / "logs"))
    yield tmp_path / "logs"
    for handler in set(logger.handlers) - set(handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(level)


class Screen(logging.Handler):
    """A screen handler as the window's log pane and the CLI use: one line per record."""

    def __init__(self):
        super().__init__()
        self.setFormatter(logfile.OneLineFormatter("%(levelname)s %(message)s"))
        self.lines = []

    def emit(self, record):
        self.lines.append(self.format(record))


def _raised(message="bad value\nsecond line") -> ValueError:
    def explode():
        raise ValueError(message)

    try:
        explode()
    except ValueError as exc:
        return exc


def test_an_exception_is_one_line_naming_the_file_that_has_its_traceback(log_dir):
    path = log_dir / "realtime-feat.log"
    assert logfile.log_path() == path
    line = logfile.log_exception(_raised(), "analysis stopped")
    assert line == f"analysis stopped: bad value (details: {path})"
    text = path.read_text()
    assert "analysis stopped: bad value" in text and "Traceback (most recent call last)" in text
    assert "in explode" in text and "ValueError: bad value\nsecond line" in text


def test_installing_twice_attaches_one_file(log_dir):
    assert logfile.install_log_file() == logfile.install_log_file() == log_dir / "realtime-feat.log"
    logger = logging.getLogger(logfile.LOGGER)
    assert sum(isinstance(h, logging.FileHandler) for h in logger.handlers) == 1
    assert logger.getEffectiveLevel() <= logging.INFO


def test_a_screen_handler_before_the_file_leaves_the_record_whole(log_dir):
    """Fault: a record with a traceback reaches a one-line screen handler before the log file."""
    screen, seen = Screen(), []
    logger = logging.getLogger(logfile.LOGGER)
    logger.addHandler(screen)  # before the file handler: it formats each record first
    logfile.install_log_file()
    later = logging.Handler()
    later.emit = seen.append
    logger.addHandler(later)
    exc = _raised()
    logging.getLogger("realtime_feat.live.worker").error("CSV writer failed: bad value", exc_info=exc)
    assert screen.lines == ["ERROR CSV writer failed: bad value"]
    (record,) = seen
    assert record.exc_info[1] is exc  # not cleared by the screen handler
    text = (log_dir / "realtime-feat.log").read_text()
    assert "CSV writer failed: bad value\nTraceback" in text and "in explode" in text


def test_excepthook_keeps_the_traceback_and_shows_one_line(log_dir):
    """Fault: an exception nobody caught (a slot of the window) reaches sys.excepthook."""
    screen = Screen()
    logging.getLogger(logfile.LOGGER).addHandler(screen)
    exc = _raised()
    logfile.excepthook(type(exc), exc, exc.__traceback__)
    path = log_dir / "realtime-feat.log"
    (line,) = screen.lines
    assert line.startswith("ERROR unexpected ValueError: bad value (test_logfile.py:")
    assert line.endswith(f") (details: {path})")
    assert "in explode" in path.read_text()


def test_an_unwritable_log_folder_warns_once_and_the_program_goes_on(tmp_path, monkeypatch, log_dir, caplog):
    """Fault: the log folder cannot be made (a file stands where it should be)."""
    (tmp_path / "blocked").write_text("")
    monkeypatch.setenv(logfile.ENV_LOG_DIR, str(tmp_path / "blocked" / "logs"))
    with caplog.at_level(logging.WARNING, logger=logfile.LOGGER):
        assert logfile.install_log_file() is None and logfile.install_log_file() is None
        assert logfile.log_exception(_raised(), "analysis stopped") == "analysis stopped: bad value"
    (warning,) = [r.getMessage() for r in caplog.records]
    assert warning.startswith(f"no log file: {tmp_path / 'blocked' / 'logs'} cannot be written (")
    assert warning.endswith(f"set {logfile.ENV_LOG_DIR} to a writable folder")


def test_keyboard_interrupt_is_left_to_python(log_dir, monkeypatch):
    passed = []
    monkeypatch.setattr(sys, "__excepthook__", lambda *args: passed.append(args[0]))
    logfile.excepthook(KeyboardInterrupt, KeyboardInterrupt(), None)
    assert passed == [KeyboardInterrupt] and not (log_dir / "realtime-feat.log").exists()
