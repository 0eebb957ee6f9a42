"""What the command line says: one line per error or warning on stderr, the tracebacks behind them in the
log file (`realtime_feat.logfile`), whose path the lines name."""
from __future__ import annotations

import logging
import sys

from ..errors import PROG
from ..logfile import LOGGER, OneLineFormatter, install_log_file, log_path


class _Terminal(logging.StreamHandler):
    """The library's warnings and errors, one line each, on the stderr of the moment (one that was
    replaced, as tests and pytest do, may be closed)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def log_to_terminal() -> None:
    """The log file (tracebacks) and one line per library warning on stderr; idempotent (tests call
    `main` many times)."""
    install_log_file()
    logger = logging.getLogger(LOGGER)
    handler = next((h for h in logger.handlers if isinstance(h, _Terminal)), None)
    if handler is None:
        handler = _Terminal()
        handler.setLevel(logging.WARNING)
        handler.setFormatter(OneLineFormatter(f"{PROG}: %(message)s"))
        logger.addHandler(handler)


def details() -> str:
    """Where the traceback of an error just logged went, for the end of its one line."""
    return f" (details: {log_path()})"


def err(msg: str) -> None:
    print(f"{PROG}: error: {msg}", file=sys.stderr)
