"""`realtime-feat view`, `epochs` and `report`: reviewing a recorded session (its folder as `record` and
the app write it), over `load_session`. What review adds (annotations.csv, identities.json) is applied
here as everywhere; the recorded files are never rewritten."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from ..errors import PROG, UserError, first_line


def open_session(folder: Path):
    from ..review.recorded_session import load_session

    try:
        return load_session(folder)
    except (OSError, ValueError) as exc:
        raise UserError(first_line(exc)) from None


def _range(text: str, option: str) -> tuple[float, float]:
    from ..review.epochs import parse_range

    try:
        return parse_range(text, option)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _arrays(session) -> None:
    """The session's arrays, said when they must first be built from fex.csv (a minute per GB, once)."""
    from ..recording.fex_arrays import ArraysBuild

    build = ArraysBuild(session.folder, mesh=session.has_mesh)
    if not build.start().done:
        print(f"{PROG}: reading {session.folder / 'fex.csv'} into {build.target} (once)", file=sys.stderr)
    try:
        session.__dict__["arrays"] = build.wait()
    except (OSError, ValueError) as exc:
        raise UserError(f"{session.folder / 'fex.csv'}: cannot be read ({first_line(exc)})") from None


def cmd_epochs(args) -> int:
    from ..review.epochs import epochs, parse_labels, write_csv

    window = _range(args.window, "--window")
    baseline = _range(args.baseline, "--baseline") if args.baseline else None
    labels = parse_labels(args.markers)
    started = time.perf_counter()
    session = open_session(args.session)
    for _, each in _each_camera(session):
        _arrays(each)
    try:  # several cameras: each camera's rows, with a `camera` column first
        table = epochs(session, labels, window, baseline)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    write_csv(table, args.output)
    markers = table[["marker", "occurrence"]].drop_duplicates()
    excluded = table.drop_duplicates(["marker", "occurrence", "person"])["n_excluded"].sum()
    print(f"{PROG}: {len(markers)} marker(s) x {table['person'].nunique()} person(s) x {table['signal'].nunique()} "
          f"signals: {len(table)} rows to {args.output}; {excluded} excluded row(s) left out "
          f"({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return 0


def cmd_report(args) -> int:
    from ..review.report import write_report

    window = _range(args.window, "--window")
    started = time.perf_counter()
    session = open_session(args.session)
    signals = [name.strip() for name in args.signals.split(",") if name.strip()]
    for name, each in _each_camera(session):
        _arrays(each)
        unknown = [signal for signal in signals if signal not in each.arrays.columns]
        if unknown:
            raise UserError(f"--signals: {', '.join(unknown)} not in fex.csv (e.g. valence, arousal, AU12, Happy)")
        # several cameras: a report each, named after its camera
        path = Path(args.output) if name is None else Path(args.output).with_stem(f"{Path(args.output).stem}-{name}")
        out = write_report(each, path, window, signals, args.min_score, args.max_turn, args.min_face)
        print(f"{PROG}: report of {session.folder.name}{'' if name is None else ' ' + name} to {out} "
              f"({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return 0


def _each_camera(session):
    """(None, session) for one camera; (name, its session) for each camera of a several-camera one."""
    return list(session.cameras.items()) or [(None, session)]


def cmd_view(args) -> int:
    import importlib.util

    if importlib.util.find_spec("PySide6") is None or importlib.util.find_spec("pyqtgraph") is None:
        raise UserError("the viewer needs PySide6 and pyqtgraph: pip install -e '.[app]'")
    from ..ui.app import has_display, view_main

    session = open_session(args.session)
    if not len(session.frames):
        raise UserError(f"{session.folder}: no frame was recorded (frames.csv has no row): nothing to view")
    if not has_display():
        raise UserError("no display to open a window on (DISPLAY is unset): run it under `xvfb-run -a "
                        "realtime-feat view ...`, or use `realtime-feat report` for a file")
    return view_main(session)
