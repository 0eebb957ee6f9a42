"""The command line's options, and the one conversion from them to the library's `PipelineOptions`.
Every help text states the default the code applies."""
from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Optional

from ..capture.camera_modes import DEFAULT_FOURCC
from ..errors import PROG
from ..options import BACKENDS, DETECTORS, PRECISIONS, Enrolment, PipelineOptions

LIVE_DETECTOR = ("py-feat's retinaface in bf16 on a CPU with a bf16 unit (AMX, AVX-512 BF16) or on a GPU; "
                 "fast on other CPUs")


def _add_model_options(p: argparse.ArgumentParser, detector: Optional[str], enrol: bool = True) -> None:
    p.add_argument("--detector", default=detector, choices=DETECTORS,
                   help="retinaface: py-feat's ResNet-34 (equal to py-feat); fast: RetinaFace MobileNet-0.25 "
                        "with real weights, for live use on a CPU (default: " + (detector or LIVE_DETECTOR) + ")")
    p.add_argument("--backend", default="auto", choices=BACKENDS,
                   help="inference backend (default auto: the best one available for the device, said at start)")
    p.add_argument("--device", default="auto",
                   help="auto, cpu, cuda or cuda:N (default auto: the first CUDA device where there is one, else cpu)")
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="fp32: equal to py-feat; fp16: CUDA; bf16: OpenVINO on a CPU with AMX or AVX-512 BF16, "
                        "several times faster (default: "
                        + ("fp32 on the CPU, fp16 on CUDA" if detector else
                           "bf16 on a CPU with a bf16 unit, else fp32 on the CPU and fp16 on CUDA") + ")")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for inference (default: all cores)")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="torch on CUDA: replay each network as a CUDA graph (fixed shapes of live use, up to 8 faces)")
    p.add_argument("--weights", type=Path, default=None, metavar="DIR",
                   help="folder with the weight files (default: $REALTIME_FEAT_WEIGHTS, else the Hugging Face cache)")
    p.add_argument("--threshold", type=float, default=None,
                   help="face detection score threshold (default 0.5 with retinaface, 0.6 with fast)")
    p.add_argument("--identity", action=argparse.BooleanOptionalAction, default=True,
                   help="compute ArcFace identity embeddings (default: on)")
    if enrol:
        p.add_argument("--enrol", action="append", default=[], metavar="NAME=IMAGE",
                       help="name the person whose face is in IMAGE (repeatable); the identity column shows it")


def _add_live_options(p: argparse.ArgumentParser, source_help: str, required: bool) -> None:
    p.add_argument("--source", action="append", required=required, help=source_help)
    p.add_argument("--redetect-every", type=int, default=5, metavar="N",
                   help="full face detection every N analysed frames, landmarks carry the boxes between (default 5)")
    p.add_argument("--fast", action="store_true", help="play a video file as fast as possible, not at its own rate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="py-feat's face models, fast: live and offline.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("process", help="analyse videos, images or image folders into Fex CSV files",
                       epilog="exit status: 0 every input analysed; 1 some inputs failed or were skipped (each "
                              "named; an image in a folder or list counts as an input), the others are written; "
                              "2 nothing could run")
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT",
                   help="video, image, image folder or recorded session folder (several cameras: one CSV per "
                        "camera); pyfeat:NAME is a sample file "
                        "shipped with py-feat, e.g. pyfeat:single_face.mp4")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT",
                   help="a .csv file for a single input, else a folder that gets one CSV per input")
    p.add_argument("--batch-size", type=int, default=1, help="frames per inference batch (default 1)")
    p.add_argument("--skip-frames", type=int, default=1, metavar="K",
                   help="analyse every K-th video frame: 0, K, 2K, ... (default 1: every frame)")
    _add_model_options(p, detector="retinaface")
    _add_ray_options(p)

    lv = sub.add_parser("live", help="analyse a camera, file or stream live: status line, CSV, tracking",
                        epilog="exit status: 0 the source ended or was stopped; 1 analysis, capture or the CSV "
                               "failed (what was written stays); 2 nothing could run")
    lv.add_argument("-o", "--output", type=Path, metavar="OUT.csv",
                    help="write what was analysed to this CSV; with several --source, a folder that gets one "
                         "<camera>.csv per source")
    rec = sub.add_parser("record", help="record a session: every frame to video on the capture clock, frames.csv, "
                                        "fex.csv, markers (type a label + Enter), metadata; optional LSL",
                         epilog="exit status: 0 recorded to the end; 1 the recording, analysis or capture failed "
                                "(the folder keeps what was written, metadata.json says why); 2 nothing could run")
    rec.add_argument("--out", type=Path, required=True, metavar="DIR",
                     help="sessions folder: each recording goes into DIR/<YYYYmmdd-HHMMSS>_<label>/")
    rec.add_argument("--label", default="", help="label in the session folder's name")
    rec.add_argument("--codec", choices=["h264", "ffv1"], default="h264",
                     help="h264 (default, small) or ffv1 (lossless, large)")
    rec.add_argument("--lsl", action="store_true",
                     help="open LSL outlets: face data per analysed frame, frame markers per captured frame")
    rec.add_argument("--lsl-markers", metavar="NAME",
                     help="record markers from the LSL stream with this name (or type) into markers.csv")
    rec.add_argument("--no-analysis", dest="analysis", action="store_false",
                     help="record video and frames.csv only, load no model")
    rec.add_argument("--leave-out", type=_leave_out, default=(), metavar="mesh,embedding",
                     help="leave the 478-point mesh and/or the ArcFace embedding out of fex.csv (their cells stay "
                          "empty; together 90%% of each row; said in metadata.json) (default: keep both)")
    for p in (lv, rec):
        _add_live_options(p, "camera index (0, 1, ...), video file, stream URL (rtsp://, http://) or image folder; "
                             "repeat it for several cameras in one session (each its own subfolder, CSV and LSL "
                             "outlets, one analyser for all)", required=True)
        p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds (default: until the end "
                                                                   "of a file, or Ctrl-C)")
        p.add_argument("--width", type=int, help="camera width to request (default: the camera's)")
        p.add_argument("--height", type=int, help="camera height to request (default: the camera's)")
        p.add_argument("--fps", type=float, help="camera rate to request (frames/s for an image folder, default 1)")
        p.add_argument("--fourcc", default=DEFAULT_FOURCC, metavar="CODE",
                       help="camera pixel format to request before size and rate, e.g. MJPG or YUYV; 'any' leaves "
                            "the driver's (default MJPG: USB webcams give 30 fps at 720p/1080p only in MJPEG); the "
                            "mode the driver gave is shown and recorded")
        _add_model_options(p, detector=None)

    ap = sub.add_parser("app", help="the desktop window (the default with no command): live video, overlays, "
                                    "bars, plots, recording, markers")
    _add_live_options(ap, "as for live, repeatable for several cameras in one window and session (default: the "
                          "first camera found, else the source picker)", required=False)
    ap.add_argument("--sessions", type=Path, metavar="DIR",
                    help="where recordings and screenshots go (default: ~/Documents/realtime-feat)")
    _add_model_options(ap, detector=None)

    _add_review_commands(sub)

    ex = sub.add_parser("export", help="build the backend's exports or engines now (TensorRT: minutes)")
    ex.add_argument("--size", default="720x1280", metavar="HxW",
                    help="frame size the detector engine is built for (default 720x1280)")
    _add_model_options(ex, detector="retinaface", enrol=False)

    sub.add_parser("cameras", help="list the cameras OpenCV can open, the mode each opens in and (Linux) the "
                                   "modes each offers")
    sub.add_parser("doctor", help="versions, backends, devices, caches, weights and the log file")
    d = sub.add_parser("download", help="download every model's weights into the Hugging Face cache")
    d.add_argument("--no-identity", dest="identity", action="store_false", help="skip ArcFace (default: include it)")
    return parser


def _add_review_commands(sub) -> None:
    v = sub.add_parser("view", help="review a recorded session: its video with the recorded overlays, a timeline, "
                                    "annotations and identity curation")
    v.add_argument("session", type=Path, metavar="SESSION_DIR")
    ep = sub.add_parser("epochs", help="per marker x person: mean and peak of each AU, emotion and valence/arousal "
                                       "in a window around the markers, as a long-format CSV",
                        epilog="excluded rows (annotations.csv) are left out and counted; persons follow "
                               "identities.json; markers are markers.csv's and the viewer's events")
    ep.add_argument("session", type=Path, metavar="SESSION_DIR")
    ep.add_argument("--markers", required=True, metavar="LABEL[,LABEL...]",
                    help="the marker labels to lock to, as text; quote one that holds a comma: '\"cue, left\",01'")
    ep.add_argument("--window", default="-1,3", metavar="START,END",
                    help="seconds around each marker, both ends included (default -1,3)")
    ep.add_argument("--baseline", metavar="START,END",
                    help="subtract each person's mean in this window (seconds around the marker), e.g. -1,0, from "
                         "the mean and the peak (default: none)")
    ep.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.csv")
    rp = sub.add_parser("report", help="one self-contained HTML file on a recorded session: rates, drops, gaps, "
                                       "people, quality flags, time courses, marker-locked averages")
    rp.add_argument("session", type=Path, metavar="SESSION_DIR")
    rp.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.html")
    rp.add_argument("--window", default="-1,3", metavar="START,END",
                    help="seconds around each marker for the marker-locked averages (default -1,3)")
    rp.add_argument("--signals", default="valence,arousal,AU12,AU04", metavar="NAME[,NAME...]",
                    help="fex.csv columns plotted (default valence,arousal,AU12,AU04)")
    rp.add_argument("--min-score", type=float, default=0.8, help="flag rows with a lower detection score (default 0.8)")
    rp.add_argument("--max-turn", type=float, default=40.0, metavar="DEGREES",
                    help="flag rows with the head's pitch or yaw beyond +-DEGREES (default 40)")
    rp.add_argument("--min-face", type=float, default=48.0, metavar="PX",
                    help="flag rows whose face (the detector's box, longer side) is below PX pixels (default 48)")


def _leave_out(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names or set(names) - {"mesh", "embedding"}:
        raise argparse.ArgumentTypeError(f"choose mesh, embedding or mesh,embedding, got {text!r}")
    return names


RANGE_OPTIONS = ("--window", "--baseline")


def join_ranges(argv: list[str]) -> list[str]:
    """`--window -1,3` as `--window=-1,3`: argparse takes a value that starts with '-' for an option."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in RANGE_OPTIONS and re.match(r"-[\d.]", arg):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def _add_ray_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="spread the inputs over Ray workers: alone, a local Ray instance on this machine's cores "
                        "and GPUs; with an address (auto, ray://HOST:10001), a running cluster. Write it after "
                        "the inputs or as --ray=ADDRESS (default: no Ray)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="with --ray: at most N workers (default: one per GPU of the cluster, else one per "
                        "--threads CPUs, --threads defaulting to 1)")
    p.add_argument("--split-frames", type=int, default=0, metavar="N",
                   help="with --ray: analyse a video of more than 2N analysed frames as ranges of N frames on "
                        "several workers, merged in order, its faces tracked after the merge (default 0: whole "
                        "videos; pays where analysis is slow next to decoding, as on CPU workers)")
    p.add_argument("--overwrite", action="store_true",
                   help="with --ray: analyse again the inputs whose CSV exists (default: skip them, which resumes "
                        "an interrupted run)")


def flag(option: str) -> str:
    """The flag that sets `PipelineOptions`' field `option` (an `OptionError` names the field)."""
    return "--" + option.replace("_", "-")


def pipeline_options(args: argparse.Namespace) -> PipelineOptions:
    """The library's description of the analyser and the live session the options ask for."""
    return PipelineOptions(
        detector=args.detector, backend=args.backend, device=args.device, precision=args.precision,
        threads=args.threads, cuda_graphs=args.cuda_graphs, weights=args.weights, identity=args.identity,
        threshold=args.threshold, redetect_every=getattr(args, "redetect_every", 5),
        enrol=tuple(Enrolment.parse(spec) for spec in getattr(args, "enrol", [])))
