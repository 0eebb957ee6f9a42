"""realtime-feat: py-feat's face models, fast, live and recorded.

The package reads as the data flows: `capture` → `analysis` → `live` → `recording`, then `review` of a
recorded session and `offline` processing of files; `types`, `errors`, `options`, `factories`, `weights`
and `logfile` sit on top. The library never imports Qt.

Public API, importable from here: `Analyser`, the seam types, `FexWriter`, `LiveSession` and
`MultiSession` (+ `SessionStatus`, `SinkFailure`), `load_session` (a recorded session with review's
annotations and identities applied), `Annotation`, `epochs` and `write_report` on it, `PipelineOptions`
(+ `Enrolment`; `realtime_feat.factories` builds from it), the errors users see (`UserError`,
`OptionError` naming the option, `MediaError`) and `first_line` (an exception as one line);
`realtime_feat.logfile` keeps the tracebacks behind those lines."""
from importlib import import_module

from .errors import MediaError, UserError, first_line
from .options import Enrolment, OptionError, PipelineOptions
from .types import Detections, FaceAnalysis, Frame, FrameResult

__version__ = "0.1.0"

# name -> module: loaded when first asked for, so `import realtime_feat` stays light (no torch or py-feat)
_LAZY = {
    "Analyser": ".analysis.analyser",
    "FexWriter": ".recording.fex",
    "LiveSession": ".live.live_session",
    "SessionStatus": ".live.live_session",
    "MultiSession": ".live.multi_session",
    "SinkFailure": ".live.worker",
    "load_session": ".review.recorded_session",
    "Annotation": ".review.annotations",
    "epochs": ".review.epochs",
    "write_report": ".review.report",
}
__all__ = ["Detections", "FaceAnalysis", "Frame", "FrameResult", "PipelineOptions", "Enrolment", "UserError",
           "OptionError", "MediaError", "first_line", "__version__", *_LAZY]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'realtime_feat' has no attribute {name!r}")
    return getattr(import_module(_LAZY[name], __name__), name)
