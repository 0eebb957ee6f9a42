"""realtime-feat: py-feat's face models, fast, live and recorded.

The library never imports Qt. Public API: `Analyser`, the seam types, `FexWriter`, `LiveSession`
(+ `SessionStatus`, `SinkFailure`), `load_session` (a recorded session with review's annotations and
identities applied; `realtime_feat.epochs` and `realtime_feat.report` work on it), `PipelineOptions`
(+ `Enrolment`; `realtime_feat.factories` builds from it), the errors users see (`UserError`, `OptionError`
naming the option, `MediaError`) and `first_line` (an exception as one line); `realtime_feat.logfile` keeps
the tracebacks behind those lines."""
from .errors import MediaError, OptionError, UserError, first_line
from .options import Enrolment, PipelineOptions
from .types import Detections, FaceAnalysis, Frame, FrameResult

__version__ = "0.1.0"
__all__ = ["Analyser", "Detections", "FaceAnalysis", "Frame", "FrameResult", "FexWriter", "LiveSession", "SessionStatus",
           "SinkFailure", "load_session", "PipelineOptions", "Enrolment", "UserError", "OptionError", "MediaError",
           "first_line", "__version__"]


def __getattr__(name):  # torch and py-feat load only when the analyser is asked for
    if name == "Analyser":
        from .analyser import Analyser

        return Analyser
    if name == "FexWriter":
        from .fex import FexWriter

        return FexWriter
    if name in ("LiveSession", "SessionStatus"):
        from . import session

        return getattr(session, name)
    if name == "SinkFailure":
        from .live import SinkFailure

        return SinkFailure
    if name == "load_session":
        from .session_files import load_session

        return load_session
    raise AttributeError(name)
