"""The errors a user sees and the one line each is shown as: CLI errors, status lines, the app's log pane
and banners."""
from __future__ import annotations

from typing import Optional

PROG = "realtime-feat"


class UserError(Exception):
    """A problem the user can act on (a bad option, a missing file or model): one line, no traceback.
    The CLI prints it and exits with 2; the app shows it in its banner."""


class MediaError(RuntimeError):
    """An input cannot be read; the message is one line naming the file."""


def first_line(exc: BaseException, limit: Optional[int] = None) -> str:
    """The first line of `exc`'s message (its type's name where the message is empty), cut to `limit`
    characters."""
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:limit]
