"""Files written whole or not at all: a new version goes to a unique temporary name beside the file and is
moved over it in one step, so a reader, a kill or a full disk never leaves half a file (DESIGN.md,
"Faults"). Used by every writer that replaces a file: metadata.json, annotations.csv, identities.json,
the columnar copy's schema, rewritten CSVs and the engines' cache entries."""
from __future__ import annotations

import json
import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside `path`, unique to this call (hidden, so a folder listing never shows it):
    moved onto `path` when the block ends without an error, removed when it raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: Path, data: bytes) -> None:
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    with replacing(path) as tmp:
        tmp.write_text(text)


def write_json(path: Path, data: dict, indent: int = 2) -> None:
    write_text(path, json.dumps(data, indent=indent, default=str))
