"""What the live benchmarks (bench_live, bench_record) share: their options, the temporary cache and
weights, and running each configuration in a process of its own (a child that prints one RESULT line),
so that each runs in the environment its users give it."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_process import _maker


def parse(doc: str, configs: dict, default_video: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--weights", type=Path)
    ap.add_argument("--video", type=Path)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--configs", nargs="+", default=list(configs))
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if a.video is None:
        from feat.utils.io import get_test_data_path

        a.video = Path(get_test_data_path()) / default_video
    return a


def prepare(a: argparse.Namespace, prefix: str) -> Path:
    """A temporary folder with the exports' cache, and random-init weights unless --weights was given."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ.setdefault("REALTIME_FEAT_CACHE", str(tmp / "cache"))
    if a.weights is None:
        a.weights = tmp / "weights"
        _maker().write_random_weights(a.weights)
    return tmp


def run_child(script: str, name: str, a: argparse.Namespace, env: dict, *extra: str) -> list[float]:
    """Run configuration `name` in its own process; the numbers of its RESULT line."""
    cmd = [sys.executable, script, "--child", name, "--weights", str(a.weights), "--video", str(a.video),
           "--seconds", str(a.seconds), "--threads", str(a.threads), *extra]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not line:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    return [float(v) for v in line[0].split()[1:]]
