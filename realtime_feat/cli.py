"""`realtime-feat` command line: process files into Fex CSVs, check the installation, fetch weights.

Errors a user can act on are printed as one line (`realtime-feat: error: ...`), never a traceback.
Exit codes: 0 all inputs done, 1 some inputs failed (the others are written), 2 nothing could run.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Optional

from .errors import first_line

PROG = "realtime-feat"


class UserError(Exception):
    """Ends the command with one line and exit code 2."""


def _err(msg: str) -> None:
    print(f"{PROG}: error: {msg}", file=sys.stderr)


def _add_model_options(p: argparse.ArgumentParser, detector: Optional[str]) -> None:
    p.add_argument("--detector", default=detector, choices=["retinaface", "fast"],
                   help="retinaface: py-feat's ResNet-34 (equal to py-feat); fast: RetinaFace MobileNet-0.25 "
                        "with real weights, for live use on a CPU (default: "
                        + (detector or "fast on a CPU where installed, else retinaface") + ")")
    p.add_argument("--backend", default="auto", choices=["auto", "tensorrt", "openvino", "onnxruntime", "torch"],
                   help="inference backend (default: the best one available for the device)")
    p.add_argument("--device", default="auto",
                   help="auto, cpu, cuda or cuda:N (default auto: the first CUDA device where there is one, else cpu)")
    p.add_argument("--precision", choices=["fp32", "fp16", "bf16"], default=None,
                   help="fp32: equal to py-feat (default of process on the CPU); fp16: CUDA (default there); "
                        "bf16: OpenVINO on a CPU with AMX or AVX-512 BF16, several times faster (default of "
                        "live where the CPU has it)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for inference (default: all cores)")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="torch on CUDA: replay each network as a CUDA graph (fixed shapes of live use, up to 8 faces)")
    p.add_argument("--weights", type=Path, default=None, metavar="DIR",
                   help="folder with the weight files (else $REALTIME_FEAT_WEIGHTS, else the Hugging Face cache)")
    p.add_argument("--threshold", type=float, default=None,
                   help="face detection score threshold (default 0.5; 0.6 with --detector fast)")
    p.add_argument("--identity", action=argparse.BooleanOptionalAction, default=True,
                   help="compute ArcFace identity embeddings (default: on)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="py-feat's face models, fast: live and offline.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("process", help="analyse videos, images or image folders into Fex CSV files",
                       epilog="exit status: 0 every input analysed; 1 some inputs failed or were skipped (each "
                              "named; an image in a folder or list counts as an input), the others are written; "
                              "2 nothing could run")
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT",
                   help="video, image or image folder; pyfeat:NAME is a sample file shipped with py-feat, "
                        "e.g. pyfeat:single_face.mp4")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT",
                   help="a .csv file for a single input, else a folder that gets one CSV per input")
    p.add_argument("--batch-size", type=int, default=1, help="frames per inference batch (default 1)")
    p.add_argument("--skip-frames", type=int, default=1, metavar="K",
                   help="analyse every K-th video frame: 0, K, 2K, ... (default 1: every frame)")
    _add_enrol_option(p)
    _add_model_options(p, detector="retinaface")
    from .cluster import add_options as add_ray_options

    add_ray_options(p)

    lv = sub.add_parser("live", help="analyse a camera, file or stream live: status line, CSV, tracking")
    lv.add_argument("-o", "--output", type=Path, metavar="OUT.csv", help="write what was analysed to this CSV")
    rec = sub.add_parser("record", help="record a session: every frame to video on the capture clock, frames.csv, "
                                        "fex.csv, markers (type a label + Enter), metadata; optional LSL")
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
    for p in (lv, rec):
        p.add_argument("--source", required=True,
                       help="camera index (0, 1, ...), video file, stream URL (rtsp://, http://) or image folder")
        p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
        _add_enrol_option(p)
        p.add_argument("--redetect-every", type=int, default=5, metavar="N",
                       help="full face detection every N analysed frames, landmarks carry the boxes between (default 5)")
        p.add_argument("--fast", action="store_true", help="play a video file as fast as possible, not at its own rate")
        p.add_argument("--width", type=int, help="camera width to request")
        p.add_argument("--height", type=int, help="camera height to request")
        p.add_argument("--fps", type=float, help="camera rate to request (frames/s for an image folder)")
        _add_model_options(p, detector=None)

    ap = sub.add_parser("app", help="the desktop window (the default with no command): live video, overlays, "
                                    "bars, plots, recording, markers")
    ap.add_argument("--source", help="as for live; without it the first camera found, else the source picker")
    ap.add_argument("--sessions", type=Path, metavar="DIR",
                    help="where recordings and screenshots go (default: ~/Documents/realtime-feat)")
    ap.add_argument("--redetect-every", type=int, default=5, metavar="N", help="as for live (default 5)")
    ap.add_argument("--fast", action="store_true", help="play a video file as fast as possible")
    _add_enrol_option(ap)
    _add_model_options(ap, detector=None)

    ex = sub.add_parser("export", help="build the backend's exports or engines now (TensorRT: minutes)")
    ex.add_argument("--size", default="720x1280", metavar="HxW",
                    help="frame size the detector engine is built for (default 720x1280)")
    _add_model_options(ex, detector="retinaface")

    sub.add_parser("cameras", help="list the cameras OpenCV can open")
    sub.add_parser("doctor", help="versions, backends, devices, caches and weights")
    d = sub.add_parser("download", help="download every model's weights into the Hugging Face cache")
    d.add_argument("--no-identity", dest="identity", action="store_false", help="skip ArcFace")
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv or ["app"])  # no command: the desktop app
    if getattr(args, "backend", "auto") != "torch":
        # Idle OpenMP threads of torch (crop, resize) would otherwise spin on the cores the inference
        # engine needs next (~6% of a frame on 2 cores); torch's own eager path is faster with spinning.
        # Only effective before torch is first imported.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        if args.command == "process":
            return cmd_process(args)
        if args.command in ("live", "record", "cameras"):
            from . import live_cli

            return {"live": live_cli.cmd_live, "record": live_cli.cmd_record, "cameras": live_cli.cmd_cameras}[
                args.command](args)
        if args.command == "app":
            return cmd_app(args)
        if args.command == "doctor":
            return cmd_doctor(args)
        if args.command == "export":
            return cmd_export(args)
        return cmd_download(args)
    except UserError as exc:
        _err(str(exc))
        return 2
    except KeyboardInterrupt:
        _err("interrupted")
        return 130


def _set_threads(threads: Optional[int]) -> int:
    import torch  # `import feat` sets OMP_NUM_THREADS=1 when unset: undo that for our work

    n = threads or os.cpu_count() or 1
    torch.set_num_threads(n)
    return n


def make_analyser(args):
    from .analyser import Analyser
    from .weights import WeightsError

    if args.threshold is not None and not 0.0 < args.threshold < 1.0:
        raise UserError(f"--threshold must be between 0 and 1, got {args.threshold}")
    threads = _set_threads(args.threads)
    try:
        analyser = Analyser(args.backend, args.device, detector=args.detector, identity=args.identity,
                            threshold=args.threshold, weights_dir=args.weights, threads=threads,
                            precision=args.precision, cuda_graphs=args.cuda_graphs)
    except (WeightsError, RuntimeError, ValueError) as exc:
        raise UserError(first_line(exc)) from None
    for line in analyser.fallbacks:
        print(f"{PROG}: warning: {line}", file=sys.stderr)
    return analyser


def live_defaults(args) -> list[str]:
    """Fill in live's detector and precision where the user left them open, and say why. On a CPU with
    a bf16 unit: py-feat's own RetinaFace R34 in bf16 (py-feat's boxes, live speed); on other CPUs the
    fast detector (MobileNet-0.25) in FP32; on a GPU py-feat's R34 at the GPU's default precision."""
    from realtime_feat.engines import resolve_device
    from realtime_feat.engines.fast_detector import available
    from realtime_feat.engines.select import default_live_precision

    notes = []
    if args.precision is None:
        args.precision, why = default_live_precision(args.backend, args.device)
        notes += [why] if why else []
    if args.detector is None:
        on_cpu = resolve_device(args.device, args.backend)[0] == "cpu"
        args.detector = "fast" if on_cpu and args.precision != "bf16" and not available() else "retinaface"
        notes.append(f"detector {args.detector}" + (" (no bf16 on this CPU; --detector retinaface for py-feat's "
                                                    "boxes)" if args.detector == "fast" else ""))
    return notes


def _add_enrol_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--enrol", action="append", default=[], metavar="NAME=IMAGE",
                   help="name the person whose face is in IMAGE (repeatable); the identity column shows it")


def enrolments(analyser, specs: list[str]) -> dict:
    """NAME=IMAGE → {NAME: ArcFace embedding of the largest face in IMAGE}."""
    import numpy as np

    from .media import iter_images, sample_path

    if specs and not analyser.identity:
        raise UserError("--enrol needs ArcFace: drop --no-identity")
    people = {}
    for spec in specs:
        name, sep, image = spec.partition("=")
        if not sep or not name or not image:
            raise UserError(f"--enrol expects NAME=IMAGE, got {spec!r}")
        errors: list[str] = []
        frames = [f for _, f in iter_images([sample_path(Path(image))], errors)]
        if errors:
            raise UserError(f"--enrol {name}: {errors[0]}")
        result = analyser.analyse(frames)[0]
        if result.n_faces == 0:
            raise UserError(f"--enrol {name}: no face found in {image}")
        areas = np.prod(result.detections.xyxy[:, 2:] - result.detections.xyxy[:, :2], axis=1)
        people[name] = result.faces.embedding[int(np.argmax(areas))]
    return people


def make_tracker(args, people: dict, clock: str = "capture"):
    """A FaceTracker (ArcFace unless --no-identity) that knows the enrolled `people`."""
    from .tracking import FaceTracker

    tracker = FaceTracker(use_embeddings=args.identity, clock=clock)
    for name, embedding in people.items():
        tracker.enrol(name, embedding)
    return tracker


def _output_path(out: Path, job, n_jobs: int) -> Path:
    if n_jobs == 1 and out.suffix.lower() == ".csv":
        return out
    if out.suffix.lower() == ".csv":
        raise UserError(f"{n_jobs} inputs give {n_jobs} CSV files: pass a folder to -o, not {out}")
    return out / f"{job.name}.csv"


def cmd_process(args) -> int:
    from .media import jobs_for
    from .process import process_job

    if args.batch_size < 1 or args.skip_frames < 1:
        raise UserError("--batch-size and --skip-frames must be at least 1")
    failures: list[str] = []
    jobs = jobs_for(args.inputs, failures)  # a missing input is reported; the others still run
    for msg in failures:
        _err(msg)
    if not jobs:
        raise UserError("no readable input")
    outputs = [_output_path(args.output, job, len(jobs)) for job in jobs]
    from .cluster import check_options, cmd_process_ray

    check_options(args)
    if args.ray is not None:
        return cmd_process_ray(args, jobs, outputs, failures)

    analyser = make_analyser(args)
    people = enrolments(analyser, args.enrol)
    print(f"{PROG}: backend {analyser.describe()}", file=sys.stderr)
    started, frames, rows, written = time.perf_counter(), 0, 0, []
    for job, out in zip(jobs, outputs):
        # people across a video's frames: on the video's own clock
        tracker = make_tracker(args, people, clock="source") if job.kind == "video" else None
        report = process_job(analyser, job, out, args.batch_size, args.skip_frames, tracker=tracker)
        for msg in report.skipped:  # an image left out of a set is an input that failed
            failures.append(msg)
            _err(f"skipped {msg}")
        if report.error:
            failures.append(report.error)
            _err(report.error)
        if report.path:
            frames, rows = frames + report.frames, rows + report.rows
            written.append(report.path)
    seconds = time.perf_counter() - started
    print(f"{PROG}: {frames} frames, {rows} rows in {len(written)} file(s) "
          f"({', '.join(map(str, written)) or 'none'}) in {seconds:.1f} s, {frames / max(seconds, 1e-9):.2f} frames/s"
          + (f"; {len(failures)} input(s) failed" if failures else ""), file=sys.stderr)
    if not written:
        return 2
    return 1 if failures else 0


def cmd_doctor(args) -> int:
    import platform

    import torch

    from realtime_feat.engines import available_backends, select_backend
    from realtime_feat.engines.onnx_export import cache_dir

    from . import __version__, weights

    lines = [f"realtime-feat {__version__}", f"python {platform.python_version()} ({sys.executable})",
             f"torch {torch.__version__}"]
    try:
        from importlib.metadata import version

        lines.append(f"py-feat {version('py-feat')}")
    except Exception:
        lines.append("py-feat: not installed")
    cuda = torch.cuda.is_available()
    for device in ("cpu",) + (("cuda",) if cuda else ()):
        for name, why in available_backends(device).items():
            lines.append(f"backend {name} on {device}: {'available' if not why else why}")
    from realtime_feat.engines.cpu_info import bf16_problem, describe_cpu

    lines.append(f"cpu: {describe_cpu()}; bf16: {bf16_problem() or 'available (--precision bf16, the default of live)'}")
    lines.append("devices: cpu ({} cores){}".format(
        os.cpu_count(), "".join(f", cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count()))
        if cuda else ", no CUDA device"))
    for device in ("cpu",) + (("cuda",) if cuda else ()):
        try:
            backend, why = select_backend("auto", device)
            lines.append(f"auto on {device}: {backend.describe()} [{why}]")
        except Exception as exc:
            lines.append(f"auto on {device}: none ({exc})")
    from huggingface_hub.constants import HF_HUB_CACHE

    folder = weights.weights_dir_from_env() or f"not set (--weights or ${weights.ENV_WEIGHTS_DIR})"
    lines += [f"cache: Hugging Face {HF_HUB_CACHE}", f"cache: exported models {cache_dir()}",
              f"weights folder: {folder}"]
    for name, where in weights.status().items():
        spec = weights.SPECS[name]
        lines.append(f"weights {spec.repo_id}: {where}  [licence: {spec.licence}]")
    print("\n".join(lines))
    return 0


def cmd_app(args) -> int:
    import importlib.util

    if importlib.util.find_spec("PySide6") is None or importlib.util.find_spec("pyqtgraph") is None:
        raise UserError("the app needs PySide6 and pyqtgraph: pip install -e '.[app]' (or use `realtime-feat live`)")
    from realtime_feat.ui.app import has_display, main as app_main

    if not has_display():
        raise UserError("no display to open a window on (DISPLAY is unset): run it under `xvfb-run -a "
                        "realtime-feat app ...`, or use `realtime-feat live` without a window")
    return app_main(args)


def cmd_export(args) -> int:
    try:
        height, width = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise UserError(f"--size expects HxW, e.g. 720x1280, got {args.size!r}") from None
    analyser = make_analyser(args)
    started = time.perf_counter()
    analyser.warm_up(height, width)
    print(f"{PROG}: {analyser.describe()}: ready for {height}x{width} frames in {time.perf_counter() - started:.1f} s")
    return 0


def cmd_download(args) -> int:
    from . import weights

    for name in ("retinaface", "multitask") + (("arcface",) if args.identity else ()):
        try:
            print(f"{weights.SPECS[name].repo_id}: {weights.resolve(name)}")
        except weights.WeightsError as exc:
            raise UserError(str(exc)) from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
