"""Same config and seed -> the same summary.json numbers, whatever the worker count, hash seed, run
folder or cache: two runs in separate processes with fresh caches are compared exactly."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.test_pipeline import CONFIG

ROOT = Path(__file__).resolve().parent.parent


def _run(tmp: Path, workers: int, hash_seed: str) -> dict:
    cfg = tmp / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({**CONFIG, "workers": workers}))
    env = {**os.environ, "AFLAB_CACHE_DIR": str(tmp / "cache"), "PYTHONHASHSEED": hash_seed}
    p = subprocess.run(
        [sys.executable, "-m", "aflab.cli", "run", str(cfg), "--out", str(tmp / "run")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    summary = json.loads((tmp / "run" / "summary.json").read_text())
    summary.pop("wall_s")
    for run in summary["sweep"]["runs"]:
        run.pop("folder")
    return summary


@pytest.mark.slow
def test_two_fresh_runs_with_different_workers_and_hash_seeds_give_identical_summaries(tmp_path_factory):
    one = _run(tmp_path_factory.mktemp("a"), workers=1, hash_seed="1")
    two = _run(tmp_path_factory.mktemp("b"), workers=2, hash_seed="2")
    assert one == two
