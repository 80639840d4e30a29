"""Executor pieces that need no Ray: the stage lock across processes, the config keys, the CLI's
choice of executor and the summary comparison (the Ray executor itself: tests/test_ray.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from aflab.config import RunConfig, packaged_config
from aflab.errors import UserError
from aflab.pipeline.compare import differences
from aflab.pipeline.executors import LocalExecutor, RayExecutor, make_executor
from aflab.pipeline.load import load_config

BUILD = """
import sys, time
from pathlib import Path
from aflab.pipeline.cache import run_stage

folder, log = Path(sys.argv[1]), Path(sys.argv[2])

def note(line):
    with log.open("a") as f:
        f.write(line + "\\n")

def build(tmp):
    note(f"start {tmp.name}")
    while "second" not in log.read_text():  # hold the stage until the second builder is at its door
        time.sleep(0.05)
    time.sleep(1.0)
    (tmp / "out.txt").write_text("built")
    note("end")

if sys.argv[3] == "second":
    note("second")
print(run_stage(folder, {"k": 1}, build)[1])
"""


def test_two_processes_never_build_the_same_stage_at_once(tmp_path):
    """The second builder waits on the stage's lock, then finds the stage done and reuses it; it does
    not delete the first one's live temporary folder (as on two nodes sharing a file system)."""
    folder, log = tmp_path / "stages" / "s", tmp_path / "log"
    first = subprocess.Popen(
        [sys.executable, "-c", BUILD, str(folder), str(log), "first"], stdout=subprocess.PIPE, text=True
    )
    deadline = time.time() + 60
    while not log.exists() and time.time() < deadline:
        time.sleep(0.05)
    second = subprocess.Popen(
        [sys.executable, "-c", BUILD, str(folder), str(log), "second"], stdout=subprocess.PIPE, text=True
    )
    outs = [p.communicate(timeout=60)[0].strip() for p in (first, second)]
    assert outs == ["False", "True"]  # built once, then reused
    lines = log.read_text().splitlines()
    assert len(lines) == 3 and lines[0].startswith("start .s.tmp-") and lines[1:] == ["second", "end"], lines
    assert (folder / "out.txt").read_text() == "built"
    assert sorted(p.name for p in folder.parent.iterdir()) == [".s.lock", "s"]


def test_executor_keys_validate_and_default():
    cfg = load_config(packaged_config("smoke"), RunConfig)
    assert (cfg.resources.rl.num_cpus, cfg.resources.rl.num_gpus, cfg.max_retries, cfg.cache_dir) == (1, 0, 2, None)
    assert load_config(packaged_config("smollm2"), RunConfig).resources.rl.num_gpus == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"resources": {"gpu": {"num_gpus": 1}}}, "resources.gpu: unknown key"),
        ({"resources": {"rl": {"num_gpus": -1}}}, "resources.rl.num_gpus"),
        ({"max_retries": -1}, "max_retries"),
    ],
)
def test_bad_executor_keys_are_named(tmp_path, extra, message):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**yaml.safe_load(packaged_config("smoke").read_text()), **extra}))
    with pytest.raises(UserError, match=message.replace(".", r"\.")):
        load_config(path, RunConfig)


def test_the_cli_picks_the_executor():
    cfg = load_config(packaged_config("smoke"), RunConfig)
    assert make_executor("local", 3, cfg.resources, 2) == LocalExecutor(3)
    ray = make_executor("ray", 3, cfg.resources, 5, "10.0.0.1:6379", Path("t"))
    assert isinstance(ray, RayExecutor) and (ray.address, ray.max_retries) == ("10.0.0.1:6379", 5)
    with pytest.raises(UserError, match="need --executor ray"):
        make_executor("local", 2, cfg.resources, 2, "10.0.0.1:6379")
    with pytest.raises(UserError, match="unknown executor 'slurm'"):
        make_executor("slurm", 2, cfg.resources, 2)


def test_differences_ignore_only_times_and_folders():
    a = {"wall_s": 1.0, "sweep": {"runs": [{"folder": "/a", "gap": 0.25, "n": 4}]}}
    assert differences(a, {"wall_s": 9.0, "sweep": {"runs": [{"folder": "/b", "gap": 0.25, "n": 4}]}}) == []
    assert differences(a, {"wall_s": 1.0, "sweep": {"runs": [{"folder": "/a", "gap": 0.250001, "n": 4}]}}) == [
        ".sweep.runs[0].gap: 0.25 != 0.250001"
    ]
    assert differences({"n": 4}, {"n": 4.0}) == [".n: 4 != 4.0"]
    assert differences({"runs": [1]}, {"runs": [1, 2]}) == [".runs: [1] != [1, 2]"]
    assert differences({"x": 1}, {}) == [".x: 1 != None"]
