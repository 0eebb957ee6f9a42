"""fex.csv's numbers as memory-mapped arrays beside it, `<session>/fex.arrays/`: what review reads (the
viewer, epochs, report, `load_session(...).table()`); fex.csv stays what py-feat reads, and is the
truth: a copy that does not match it is built again from it.

One file per block, each row-major and appended a whole row at a time:

    meta.f64     (rows, 9) float64: frame, timestamp, t_monotonic, t_wall, t_lsl, n_faces, track_id
                 (NaN: none), identity (a code into labels.txt, -1: none), identity_distance
    core.f32     (rows, 233) float32: py-feat's numeric columns without the embedding and the mesh
                 (face box and score, 68 landmarks, pose, AUs, emotions, valence/arousal, gaze,
                 blendshapes, frame size)
    mesh.f32     (rows, 1434) float32: the 478-point mesh, as in fex.csv (all x, all y, all z);
                 absent when the recording left the mesh out
    labels.txt   identity code k is line k; a label is appended before a row uses it
    schema.json  the blocks and their columns; written first
    source.json  fex.csv's size and mtime when the copy was finished; without it (a killed recording,
                 a build cut short) the copy is built again from fex.csv

Why this and not a columnar format (parquet would need pyarrow, and is unreadable until closed): the
recorder appends each row as it writes fex.csv, a killed process leaves blocks that read up to their
last whole row, and memory mapping keeps resident memory to what is touched. A frame's overlays are one
row of each block; a signal over an hour is one strided pass over `core` (100 MB for 108,000 rows).
"""
from __future__ import annotations

import io
import json
import logging
import os
import secrets
import shutil
import threading
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..atomic_files import write_json
from ..types import Detections, FaceAnalysis, FrameResult
from .fex import EMBEDDING, MESH, N_VALUES, clock_values, numeric_rows

log = logging.getLogger(__name__)

FOLDER = "fex.arrays"
META = ["frame", "timestamp", "t_monotonic", "t_wall", "t_lsl", "n_faces", "track_id", "identity",
        "identity_distance"]
CORE = np.r_[0:EMBEDDING.start, MESH.stop:N_VALUES]  # numeric columns kept in core.f32
BLOCK_FILES = {"meta": "meta.f64", "core": "core.f32", "mesh": "mesh.f32"}
# where each group of py-feat's columns sits in core.f32 (its columns are in fex.csv's order)
GROUPS = {"box": slice(0, 5), "landmarks": slice(5, 141), "pose": slice(141, 147), "au": slice(147, 167),
          "emotions": slice(167, 174), "va": slice(174, 176), "gaze": slice(176, 179), "blendshapes": slice(179, 231),
          "frame_size": slice(231, 233)}


def header_groups(fex_csv: Path) -> dict[str, list[str]]:
    """py-feat's column names of each of GROUPS, from fex.csv's header (no py-feat import: the viewer
    stays light)."""
    with open(fex_csv, newline="") as f:
        header = f.readline().rstrip("\r\n").split(",")
    core = [header[i] for i in CORE]
    return {group: core[where] for group, where in GROUPS.items()}


def _schema(numeric_names: list[str], mesh: bool) -> dict:
    blocks = {"meta": {"dtype": "<f8", "columns": META},
              "core": {"dtype": "<f4", "columns": [numeric_names[i] for i in CORE]}}
    if mesh:
        blocks["mesh"] = {"dtype": "<f4", "columns": numeric_names[MESH]}
    return {"version": 1, "blocks": blocks}


def source_stamp(fex_csv: Path) -> dict:
    st = fex_csv.stat()
    return {"file": fex_csv.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


class ArraysWriter:
    """Appends rows to a copy in `folder`; `close(fex_csv)` marks it as matching that finished file."""

    def __init__(self, folder: Path, numeric_names: list[str], mesh: bool = True):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.mesh = mesh
        schema = _schema(list(numeric_names), mesh)
        write_json(self.folder / "schema.json", schema, indent=1)
        self._files = {name: open(self.folder / BLOCK_FILES[name], "wb") for name in schema["blocks"]}
        self._labels_file = open(self.folder / "labels.txt", "w", encoding="utf-8")
        self._codes: dict[str, int] = {}
        self.rows = 0

    def _code(self, label) -> int:
        if not isinstance(label, str) or not label:
            return -1
        code = self._codes.get(label)
        if code is None:
            code = self._codes[label] = len(self._codes)
            self._labels_file.write(label.replace("\n", " ") + "\n")
            self._labels_file.flush()  # on disk before any row that uses it
        return code

    def append_rows(self, meta: np.ndarray, labels, core: np.ndarray, mesh: Optional[np.ndarray]) -> None:
        """meta (rows, 9) with the identity column ignored (taken from `labels`), core (rows, 233),
        mesh (rows, 1434) when this copy keeps the mesh."""
        meta = np.array(meta, "<f8", copy=True)
        meta[:, META.index("identity")] = [self._code(label) for label in labels]
        self._files["meta"].write(meta.tobytes())
        self._files["core"].write(np.ascontiguousarray(core, "<f4").tobytes())
        if self.mesh:
            self._files["mesh"].write(np.ascontiguousarray(mesh, "<f4").tobytes())
        self.rows += len(meta)

    def append(self, result: FrameResult, identities: Optional[tuple] = None) -> None:
        """One result's rows, as FexWriter.append writes them to fex.csv."""
        numeric = numeric_rows(result)
        n = result.n_faces
        tracked = identities is not None and n > 0
        labels, distances = identities if tracked else ([""] * len(numeric), [np.nan] * len(numeric))
        meta = np.full((len(numeric), len(META)), np.nan)
        clocks = [np.nan if t is None else t for t in clock_values(result)]  # as fex.csv reads back
        meta[:, :6] = (result.index, *clocks, n)
        if tracked:
            meta[:, 6] = result.track_ids
            meta[:, 8] = distances
        self.append_rows(meta, labels, numeric[:, CORE], numeric[:, MESH])

    def flush(self) -> None:
        for f in self._files.values():
            f.flush()

    def close(self, fex_csv: Optional[Path] = None) -> None:
        """Close the blocks; with `fex_csv` (finished, under its final name) the copy is marked as its."""
        for f in (*self._files.values(), self._labels_file):
            if not f.closed:
                f.close()
        if fex_csv is not None:
            write_json(self.folder / "source.json", source_stamp(Path(fex_csv)), indent=1)


class FexArrays:
    """Read a copy: `n_rows` whole rows (of a finished copy, or so far of one being written: `refresh()`)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.schema = json.loads((self.folder / "schema.json").read_text())
        self.blocks: dict[str, np.ndarray] = {}
        self.where: dict[str, tuple[str, int]] = {}
        for block, spec in self.schema["blocks"].items():
            for j, name in enumerate(spec["columns"]):
                self.where.setdefault(name, (block, j))
        self.n_rows = -1
        self.labels: list[str] = []
        self._frames: Optional[np.ndarray] = None
        self.refresh()

    @property
    def has_mesh(self) -> bool:
        return "mesh" in self.schema["blocks"]

    @property
    def columns(self) -> list[str]:
        return list(self.where)

    def refresh(self) -> int:
        """Map the rows written since; returns the row count."""
        counts = {}
        for block, spec in self.schema["blocks"].items():
            width = len(spec["columns"]) * np.dtype(spec["dtype"]).itemsize
            path = self.folder / BLOCK_FILES[block]
            counts[block] = path.stat().st_size // width if path.is_file() else 0
        n = min(counts.values())
        if n != self.n_rows:
            for block, spec in self.schema["blocks"].items():
                shape = (n, len(spec["columns"]))
                self.blocks[block] = (np.memmap(self.folder / BLOCK_FILES[block], spec["dtype"], "r", shape=shape)
                                      if n else np.zeros(shape, spec["dtype"]))
            labels = self.folder / "labels.txt"
            self.labels = labels.read_text(encoding="utf-8").splitlines() if labels.is_file() else []
            self.n_rows, self._frames = n, None
        return n

    def names(self, group: str) -> list[str]:
        """py-feat's column names of a group of GROUPS ("au", "emotions", "va", ...), from fex.csv's header."""
        return self.schema["blocks"]["core"]["columns"][GROUPS[group]]

    @property
    def complete(self) -> bool:
        return (self.folder / "source.json").is_file()

    def column(self, name: str) -> np.ndarray:
        """One column over every row (a copy)."""
        block, j = self.where[name]
        return np.array(self.blocks[block][:, j])

    def select(self, names: list[str], rows=slice(None)) -> np.ndarray:
        """(rows, len(names)) float64 of several columns, in one pass per block."""
        out = np.empty((len(range(self.n_rows)[rows]) if isinstance(rows, slice) else len(rows), len(names)))
        by_block: dict[str, list[tuple[int, int]]] = {}
        for k, name in enumerate(names):
            block, j = self.where[name]
            by_block.setdefault(block, []).append((k, j))
        for block, pairs in by_block.items():
            ks, js = zip(*pairs)
            out[:, list(ks)] = self.blocks[block][rows][:, list(js)]
        return out

    def identity_labels(self, codes: np.ndarray) -> np.ndarray:
        table = np.array([*self.labels, ""], object)  # code -1 → ""
        codes = np.asarray(codes, np.float64)
        codes = np.where(np.isfinite(codes) & (codes >= 0) & (codes < len(self.labels)), codes, -1).astype(np.int64)
        return table[codes]

    @property
    def frames(self) -> np.ndarray:
        """Each row's frame index (rows are in frame order)."""
        if self._frames is None:
            self._frames = self.column("frame").astype(np.int64)
        return self._frames

    def rows_of(self, frame: int) -> slice:
        frames = self.frames
        return slice(int(np.searchsorted(frames, frame, "left")), int(np.searchsorted(frames, frame, "right")))

    def result(self, frame: int) -> Optional[FrameResult]:
        """The analysis of `frame` as a FrameResult (faces in fex.csv's row order), or None if it has no
        row. FaceRect is both the box and the face rect (fex.csv keeps the 1.2× chip the networks saw);
        the mesh is NaN when the copy has none."""
        rows = self.rows_of(frame)
        if rows.start == rows.stop:
            return None
        meta = self.blocks["meta"][rows]
        core = np.asarray(self.blocks["core"][rows])
        n = int(meta[0, 5])
        names = self.schema["blocks"]["core"]["columns"]
        height, width = core[0, names.index("FrameHeight")], core[0, names.index("FrameWidth")]
        t_lsl = meta[0, 4]
        pts = meta[0, 1]
        base = dict(index=frame, t_monotonic_ns=round(meta[0, 2] * 1e9), t_wall_ns=round(meta[0, 3] * 1e9),
                    t_lsl=None if np.isnan(t_lsl) else float(t_lsl), source_id="",
                    pts=None if np.isnan(pts) else float(pts),
                    height=int(height), width=int(width))
        if n == 0:
            return FrameResult(detections=Detections.empty(), faces=FaceAnalysis.empty(), **base)
        core = core[:n]
        x, y, w, h, score = (core[:, i] for i in range(5))
        rect = np.stack([x, y, x + w, y + h], 1)
        lm = core[:, 5:141].reshape(n, 2, 68).transpose(0, 2, 1)
        mesh = (np.asarray(self.blocks["mesh"][rows][:n]).reshape(n, 3, 478).transpose(0, 2, 1) if self.has_mesh
                else np.full((n, 478, 3), np.nan, np.float32))
        faces = FaceAnalysis(face_rect=rect, au=core[:, 147:167], emotions=core[:, 167:174], va=core[:, 174:176],
                             gaze=core[:, 176:178], pose=core[:, 141:147], mesh=mesh, landmarks68=lm,
                             blendshapes=core[:, 179:231])
        track = meta[:n, 6]
        track_ids = np.where(np.isfinite(track), track, -1).astype(np.int64)
        return FrameResult(detections=Detections(rect, score), faces=faces, track_ids=track_ids, **base)


# -- a session being recorded -------------------------------------------------------------------------
RECORDING_LOCK = "recording.lock"


class RecordingLock:
    """Held by a recorder for as long as it writes a session folder (`being_recorded`): readers then read
    its rows so far and never build a copy over the one it appends to. An OS lock (flock), so a killed
    recorder's is let go with its process; the file is removed when the recording ends."""

    def __init__(self, folder: Path):
        import fcntl

        self.path = Path(folder) / RECORDING_LOCK
        self._file = open(self.path, "a")  # a file object: closed (and let go) if the recorder is never started
        fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def release(self) -> None:
        """Let go (after the recording's last word is in metadata.json), then remove the file."""
        if not self._file.closed:
            self._file.close()
            self.path.unlink(missing_ok=True)


def being_recorded(session: Path) -> bool:
    """Whether a recorder, in any process, is writing `session` now."""
    import fcntl

    try:
        fd = os.open(Path(session) / RECORDING_LOCK, os.O_RDONLY)
    except OSError:  # no lock file: no recorder (a clean end removes it)
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False  # left by a killed recorder
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


# -- building a copy from fex.csv ------------------------------------------------------------------
class WholeLines(io.RawIOBase):
    """A text file up to its last complete line (a killed recording's may end mid-row); `tell()` is
    progress. For pandas: `pd.read_csv(io.BufferedReader(WholeLines(path)))`."""

    def __init__(self, path: Path):
        self._f = open(path, "rb")
        size = self._f.seek(0, io.SEEK_END)
        tail = b""
        end = size
        while end > 0 and not tail.endswith(b"\n"):
            start = max(0, end - 65536)
            self._f.seek(start)
            tail = self._f.read(end - start)
            if b"\n" in tail:
                end = start + tail.rindex(b"\n") + 1
                break
            end = start
        self.end = end
        self._f.seek(0)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        left = self.end - self._f.tell()
        view = memoryview(buffer)[:max(0, left)]
        return self._f.readinto(view) if len(view) else 0

    def tell(self) -> int:
        return self._f.tell()

    def close(self) -> None:
        self._f.close()
        super().close()


def build(fex_csv: Path, out: Path, mesh: bool = True, chunk_rows: int = 1000,
          on_chunk: Optional[Callable[[int, float], None]] = None,
          stop: Optional[threading.Event] = None) -> None:
    """Write the copy of `fex_csv` into `out` (a new folder), a chunk of rows at a time: readable while
    it grows. `on_chunk(rows, fraction of the file read)`; `stop` set: ends early, unmarked."""
    import pandas as pd

    with open(fex_csv, newline="") as f:
        header = f.readline().rstrip("\r\n").split(",")
    numeric = header[:N_VALUES]
    core_names = [numeric[i] for i in CORE]
    mesh_names = numeric[MESH] if mesh else []
    meta_names = [c for c in META if c != "identity"]
    dtypes = {name: np.float32 for name in (*core_names, *mesh_names)}
    dtypes.update({name: np.float64 for name in meta_names}, identity=str)
    writer = ArraysWriter(out, numeric, mesh)
    source = WholeLines(fex_csv)
    try:
        reader = pd.read_csv(io.BufferedReader(source, 1 << 20), usecols=[*meta_names, "identity", *core_names,
                                                                          *mesh_names],
                             dtype=dtypes, chunksize=chunk_rows, keep_default_na=False, na_values=[""])
        for chunk in reader:
            meta = np.column_stack([chunk[c].to_numpy(np.float64) if c != "identity" else np.zeros(len(chunk))
                                    for c in META])
            labels = chunk["identity"].fillna("").tolist()
            writer.append_rows(meta, labels, chunk[core_names].to_numpy(np.float32),
                               chunk[mesh_names].to_numpy(np.float32) if mesh else None)
            writer.flush()
            if on_chunk is not None:
                on_chunk(writer.rows, source.tell() / max(source.end, 1))
            if stop is not None and stop.is_set():
                writer.close()
                return
    finally:
        source.close()
    writer.close(fex_csv)


def is_current(folder: Path, fex_csv: Path) -> bool:
    """Whether `folder` holds a finished copy of `fex_csv` as it is now."""
    try:
        stamp = json.loads((folder / "source.json").read_text())
        return stamp == source_stamp(fex_csv) and (folder / "schema.json").is_file()
    except (OSError, ValueError):
        return False


def cache_location(session: Path) -> Path:
    """Where the copy of a session in a folder we may not write goes: the user's cache."""
    import hashlib

    from platformdirs import user_cache_dir

    key = hashlib.sha256(str(Path(session).resolve()).encode()).hexdigest()[:16]
    return Path(os.environ.get("REALTIME_FEAT_CACHE") or user_cache_dir("realtime-feat")) / "sessions" / key / FOLDER


def location(session: Path) -> Path:
    """The session's copy: beside fex.csv, or in the cache where the session folder is read-only."""
    here = Path(session) / FOLDER
    return here if here.is_dir() or os.access(session, os.W_OK) else cache_location(session)


class ArraysBuild:
    """The copy of a session's fex.csv, made current on a thread: `arrays()` reads what is there so far
    (None until the first rows), `wait()` the finished copy. Built under a unique temporary name and a
    file lock (two viewers of one session build it once), then renamed into place. A session being
    recorded is never built: its recorder's copy is read as far as it is written."""

    def __init__(self, session: Path, mesh: bool = True, chunk_rows: int = 1000):
        self.session, self.mesh, self.chunk_rows = Path(session), mesh, chunk_rows
        self.fex_csv = self.session / "fex.csv"
        self.target = location(self.session)
        self.fraction = 0.0
        self.rows = 0
        self.error: Optional[BaseException] = None
        self._building: Optional[Path] = None
        self._arrays: Optional[FexArrays] = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fex.arrays build", daemon=True)

    def start(self) -> "ArraysBuild":
        if being_recorded(self.session) or is_current(self.target, self.fex_csv):
            self.fraction = 1.0
            self._done.set()
        else:
            self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def _run(self) -> None:
        from filelock import FileLock

        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(self.target.with_name(FOLDER + ".lock"))):
                if not is_current(self.target, self.fex_csv):  # another process may have built it meanwhile
                    log.info("%s: building %s from fex.csv (once)", self.session, self.target.name)
                    tmp = self.target.with_name(f"{FOLDER}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
                    self._building = tmp
                    build(self.fex_csv, tmp, self.mesh, self.chunk_rows, self._progress, self._stop)
                    if self._stop.is_set():
                        shutil.rmtree(tmp, ignore_errors=True)
                        return
                    if self.target.exists():  # a stale copy (a killed recording's): replaced
                        stale = self.target.with_name(f"{FOLDER}.{os.getpid()}-{secrets.token_hex(4)}.stale")
                        self.target.rename(stale)
                        shutil.rmtree(stale, ignore_errors=True)
                    tmp.rename(self.target)
            self.fraction = 1.0
        except BaseException as exc:  # kept for the caller, who says it in one line
            self.error = exc
            log.error("%s: cannot build %s: %s", self.session, FOLDER, exc)
        finally:
            self._building = None
            self._done.set()

    def _progress(self, rows: int, fraction: float) -> None:
        self.rows, self.fraction = rows, fraction

    def arrays(self) -> Optional[FexArrays]:
        """The finished copy once done, else the rows built so far (None before the first)."""
        if self.done and self.error is None:
            if self._arrays is None or self._arrays.folder != self.target:
                self._arrays = FexArrays(self.target)
            return self._arrays
        building = self._building
        if building is None or not (building / "schema.json").is_file():
            return None
        try:
            if self._arrays is None or self._arrays.folder != building:
                self._arrays = FexArrays(building)
            self._arrays.refresh()
        except (OSError, ValueError):  # renamed into place meanwhile: the finished copy, next call
            return None
        return self._arrays

    def wait(self, timeout: Optional[float] = None) -> FexArrays:
        if not self._done.wait(timeout):
            raise TimeoutError(f"{self.session}: {FOLDER} still building")
        if self.error is not None:
            raise self.error
        return self.arrays()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
