"""Everything slow before a session runs, off the GUI thread: check the source, find (or download) the
weights, load the models, warm them up at the source's frame size, start the `LiveSession`.

Progress and the outcome come back as signals; the loader never touches a widget. Missing weights that
cannot be downloaded end in `weightsMissing` (one line per file) so the window can ask for a folder.
"""
from __future__ import annotations

import argparse
import copy

from PySide6.QtCore import QThread, Signal

from realtime_feat import first_line


def needed_models(args) -> list[str]:
    return (["retinaface"] if args.detector == "retinaface" else []) + ["multitask"] + (
        ["arcface"] if args.identity else [])


def missing_weights(args) -> list[str]:
    """One line per weight file that is neither in the weights folder nor in a cache."""
    from realtime_feat import weights

    missing = []
    for name in needed_models(args):
        try:
            weights.resolve(name, args.weights, download=False)
        except weights.WeightsError as exc:
            missing.append(str(exc))
    return missing


class SessionLoader(QThread):
    progress = Signal(str)           # the current step, one line
    downloaded = Signal(int, int)    # bytes done, bytes in all (0: unknown) of the current download
    ready = Signal(object)           # the started LiveSession
    weightsMissing = Signal(list)    # one line per missing file; nothing was started
    failed = Signal(str)             # one line: what failed and what to do

    def __init__(self, args: argparse.Namespace, parent=None):
        super().__init__(parent)
        self.args = copy.copy(args)  # defaults filled in here never leak into the window's args
        self.session = None

    def run(self) -> None:
        from realtime_feat.cli import UserError

        try:
            self._load()
        except UserError as exc:
            self.failed.emit(str(exc))
        except (OSError, RuntimeError, ValueError) as exc:
            self.failed.emit(first_line(exc))

    def _progress_bar(self):
        """A tqdm class whose updates become `downloaded` signals (queued to the GUI thread)."""
        from tqdm.auto import tqdm

        emit = self.downloaded.emit

        class Bar(tqdm):
            done = 0  # counted here: a disabled tqdm (no terminal) does not count

            def update(self, n=1):
                self.done += n or 0
                emit(int(self.done), int(self.total or 0))
                return super().update(n)

        return Bar

    def _load(self) -> None:
        from realtime_feat import weights
        from realtime_feat.cli import enrolments, live_defaults, make_analyser, make_tracker
        from realtime_feat.live import LiveSettings
        from realtime_feat.session import LiveSession, probe_source
        from realtime_feat.sources import open_source

        a = self.args
        self.progress.emit(f"opening {a.source}")
        source = open_source(a.source, realtime=not a.fast)
        size = probe_source(source)  # a wrong source is said before the models take seconds to load
        for note in live_defaults(a):
            self.progress.emit(note)
        missing = missing_weights(a)
        for name in needed_models(a):
            if not missing or self.isInterruptionRequested():
                break
            spec = weights.SPECS[name]
            self.progress.emit(f"downloading {spec.repo_id}/{spec.filename} (first run; hundreds of MB)")
            try:
                weights.resolve(name, a.weights, download=True, tqdm_class=self._progress_bar())
            except weights.WeightsError:
                self.weightsMissing.emit(missing_weights(a))
                return
        self.progress.emit("loading models")
        analyser = make_analyser(a)
        if self.isInterruptionRequested():
            return
        self.progress.emit(f"{analyser.describe()}: warming up" + (f" at {size[0]}×{size[1]}" if size else ""))
        people = enrolments(analyser, a.enrol)
        session = LiveSession(source, analyser, tracker=make_tracker(a, people),
                              settings=LiveSettings(redetect_every=a.redetect_every))
        session.start()
        if self.isInterruptionRequested():  # the window closed meanwhile
            session.stop()
            return
        self.session = session
        self.ready.emit(session)
