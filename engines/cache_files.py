"""Cache entries (ONNX exports, TensorRT engines, the fast detector's wheel) that several processes may
fill at once: a first `process --ray`, two windows (DESIGN.md, "Faults"). An entry is written under a
unique temporary name beside it and moved into place in one step (`realtime_feat.atomic_files`), so a
reader sees a whole file or none; the writing is done under `<entry>.lock`, so one process builds it
while the others wait and then use it. An entry that cannot be used (truncated, from another version) is rebuilt with one warning."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Optional, TypeVar

from filelock import FileLock

from ..atomic_files import replacing
from ..errors import first_line

log = logging.getLogger(__name__)
T = TypeVar("T")


def _identity(path: Path) -> Optional[tuple]:
    """Which file is at `path` now (None: none); a replaced entry is another inode."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def load_or_build(path: Path, load: Callable[[Path], T], write: Callable[[Path], None]) -> T:
    """`load(path)` of the cache entry at `path`, which `write(tmp)` writes first where it is missing or
    `load` raises on it. Building holds `<path>.lock` and looks again once it has it: another process
    may have written the entry while this one waited. A rebuilt entry that `load` still rejects raises."""
    seen, why = _identity(path), None
    if seen is not None:
        try:
            return load(path)
        except Exception as exc:
            why = exc
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock"):
        now = _identity(path)
        if now is not None and now != seen:  # written by another process since the first look
            try:
                return load(path)
            except Exception as exc:
                why = exc
        if now is not None:
            log.warning("cache entry %s is unusable (%s); rebuilding it", path, first_line(why, 200))
            path.unlink()
        with replacing(path) as tmp:
            write(tmp)
    return load(path)
