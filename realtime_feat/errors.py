"""The errors a user sees and the one line each is shown as: CLI errors, status lines, the app's log pane
and banners."""
from __future__ import annotations

import re
from typing import Callable, Optional

PROG = "realtime-feat"


class UserError(Exception):
    """A problem the user can act on (a bad option, a missing file or model): one line, no traceback.
    The CLI prints it and exits with 2; the app shows it in its banner."""


class OptionError(UserError, ValueError):
    """A bad option value, said with the library's name of each option (`PipelineOptions`' fields):
    "threshold must be in (0, 1], got 1.5". `problem` may name other options as {field}. `worded(name)`
    says it with the caller's names instead: the CLI's flags, the app's controls."""

    def __init__(self, option: str, problem: str):
        self.option, self.problem = option, problem
        super().__init__(self.worded(str))

    def worded(self, name: Callable[[str], str]) -> str:
        """The line with `name(field)` for each option it names."""
        from .options import OPTION_NAMES  # options.py raises these: imported when one is worded

        return f"{name(self.option)} " + re.sub(
            r"\{(\w+)\}", lambda m: name(m.group(1)) if m.group(1) in OPTION_NAMES else m.group(0), self.problem)


class MediaError(RuntimeError):
    """An input cannot be read; the message is one line naming the file."""


def first_line(exc: BaseException, limit: Optional[int] = None) -> str:
    """The first line of `exc`'s message (its type's name where the message is empty), cut to `limit`
    characters."""
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:limit]
