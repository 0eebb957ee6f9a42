"""`realtime-feat` command line: one module per command family, over the library's public API.

Errors a user can act on are printed as one line (`realtime-feat: error: ...`), never a traceback.
Exit codes: 0 done, 1 partly done (some inputs failed, a recording or sink failed; what was written
stays), 2 nothing could run.
"""
from __future__ import annotations

import os
import sys
from typing import Optional

from ..errors import PROG, UserError
from ..options import OptionError
from .console import err, log_to_terminal
from .parser import build_parser, flag, join_ranges

__all__ = ["main", "build_parser", "PROG"]


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(join_ranges(argv) or ["app"])  # no command: the desktop app
    if getattr(args, "backend", "auto") != "torch":
        # Idle OpenMP threads of torch (crop, resize) would otherwise spin on the cores the inference
        # engine needs next (~6% of a frame on 2 cores); torch's own eager path is faster with spinning.
        # Only effective before torch is first imported.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    log_to_terminal()
    from . import live, process, review, tools

    commands = {"process": process.cmd_process, "live": live.cmd_live, "record": live.cmd_record,
                "cameras": live.cmd_cameras, "app": tools.cmd_app, "doctor": tools.cmd_doctor,
                "export": tools.cmd_export, "download": tools.cmd_download, "view": review.cmd_view,
                "epochs": review.cmd_epochs, "report": review.cmd_report}
    try:
        return commands[args.command](args)
    except OptionError as exc:  # the library names the option; the user typed its flag
        err(exc.worded(flag))
        return 2
    except UserError as exc:
        err(str(exc))
        return 2
    except KeyboardInterrupt:
        err("interrupted")
        return 130
