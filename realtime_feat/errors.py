"""The one line a user sees for an exception: CLI errors, status lines, the app's log pane and banners."""
from __future__ import annotations

from typing import Optional


def first_line(exc: BaseException, limit: Optional[int] = None) -> str:
    """The first line of `exc`'s message (its type's name where the message is empty), cut to `limit`
    characters."""
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:limit]
