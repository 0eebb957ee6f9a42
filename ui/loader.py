"""Everything slow before a session runs, off the GUI thread: check the source, find (or download) the
weights, load the models, warm them up at the source's frame size, start the `LiveSession` (for
several sources a `MultiSession`: a source that cannot be opened is said, one line in `skipped`,
and the others start).

Progress and the outcome come back as signals; the loader never touches a widget. Missing weights that
cannot be downloaded end in `weightsMissing` (one line per file) so the window can ask for a folder.
"""
from __future__ import annotations

from PySide6.QtCore import QThread, Signal

from realtime_feat import OptionError, PipelineOptions, UserError, first_line

from .controls import control_name


def needed_models(options: PipelineOptions) -> list[str]:
    return (["retinaface"] if options.detector == "retinaface" else []) + ["multitask"] + (
        ["arcface"] if options.identity else [])


def missing_weights(options: PipelineOptions) -> list[str]:
    """One line per weight file that is neither in the weights folder nor in a cache."""
    from realtime_feat import weights

    missing = []
    for name in needed_models(options):
        try:
            weights.resolve(name, options.weights, download=False)
        except weights.WeightsError as exc:
            missing.append(str(exc))
    return missing


class SessionLoader(QThread):
    progress = Signal(str)           # the current step, one line
    downloaded = Signal(int, int)    # bytes done, bytes in all (0: unknown) of the current download
    ready = Signal(object)           # the started LiveSession (or MultiSession)
    weightsMissing = Signal(list)    # one line per missing file; nothing was started
    failed = Signal(str)             # one line: what failed and what to do
    skipped = Signal(list)           # several sources: one line per source that could not be opened

    def __init__(self, options: PipelineOptions, source: str, realtime: bool = True, parent=None,
                 more: tuple[str, ...] = ()):
        super().__init__(parent)
        self.options, self.source, self.realtime, self.more = options, source, realtime, tuple(more)
        self.session = None
        self.opened: list[str] = []      # the specs that opened, in order

    def run(self) -> None:
        try:
            self._load()
        except OptionError as exc:
            self.failed.emit(exc.worded(control_name))
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
        from realtime_feat.factories import live_session, multi_session, open_checked_source, with_live_defaults

        opened, skipped = [], []
        for spec in (self.source, *self.more):
            self.progress.emit(f"opening {spec}")
            # a wrong source is said before the models take seconds to load
            try:
                opened.append(open_checked_source(spec, realtime=self.realtime))
                self.opened.append(spec)
            except UserError as exc:
                if not self.more:
                    raise
                skipped.append(str(exc))
        if not opened:
            raise UserError(f"no source could be opened: {skipped[0]}")
        size = opened[0][1]
        options, notes = with_live_defaults(self.options)
        for note in notes:
            self.progress.emit(note)
        missing = missing_weights(options)
        for name in needed_models(options):
            if not missing or self.isInterruptionRequested():
                break
            spec = weights.SPECS[name]
            self.progress.emit(f"downloading {spec.repo_id}/{spec.filename} (first run; hundreds of MB)")
            try:
                weights.resolve(name, options.weights, download=True, tqdm_class=self._progress_bar())
            except weights.WeightsError:
                self.weightsMissing.emit(missing_weights(options))
                return
        if self.isInterruptionRequested():
            return
        self.progress.emit("loading models")
        if self.more:
            session = multi_session(options, [source for source, _ in opened], progress=self.progress.emit)
        else:
            session = live_session(options, opened[0][0], progress=self.progress.emit)
        if self.isInterruptionRequested():
            return
        self.progress.emit(f"{session.analyser.describe()}: warming up" + (f" at {size[0]}×{size[1]}" if size else ""))
        session.start()
        if self.isInterruptionRequested():  # the window closed, or another source was chosen, meanwhile
            session.stop()
            return
        self.session = session
        self.ready.emit(session)
        if skipped:
            self.skipped.emit(skipped)
