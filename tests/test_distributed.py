"""The distributed path on this machine: `accelerate launch` with 2 CPU processes (gloo) runs organism
SFT and `aflab train` with the global batch of the single-process run, rank-0-only writes, and every
completion scored by the monitors once."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
# --multi_gpu selects accelerate's torchrun launcher; ACCELERATE_USE_CPU makes it CPU processes on gloo
# (`--cpu` alone would start one process). docs/GPU.md has the same command.
LAUNCH = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
LAUNCH += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0"]

pytestmark = pytest.mark.slow


def _run(cmd: list[str], tmp: Path) -> None:
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "PYTHONPATH": str(ROOT)}
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, (p.stdout + p.stderr)[-4000:]


def test_two_process_sft_keeps_the_global_batch_and_the_ranks_in_sync(tmp_path):
    _run([*LAUNCH, "-m", "tests.dist_worker", "sft", str(tmp_path / "ddp")], tmp_path)
    _run([sys.executable, "-m", "tests.dist_worker", "sft", str(tmp_path / "one")], tmp_path)
    ranks = [json.loads((tmp_path / "ddp" / f"rank{r}.json").read_text()) for r in (0, 1)]
    [single] = [json.loads((tmp_path / "one" / "rank0.json").read_text())]
    a, b = ranks[0]["checksums"]
    assert len(ranks[0]["checksums"]) == 2 and a == pytest.approx(b, rel=1e-9)  # DDP kept the weights equal
    assert ranks[0]["steps"] == single["steps"]  # same optimizer steps: the batch was split, not doubled
    assert ranks[0]["loss"] == pytest.approx(single["loss"], rel=0.02)


def test_two_process_aflab_train_writes_on_rank_0_and_scores_each_completion_once(tiny_organism, tmp_path):
    cfg = {
        "name": "ddp",
        "organism": str(tiny_organism),
        "seed": 3,
        "mitigation": {"name": "m", "process_supervision": {"monitor": "keyword"}},
        "rl": {
            "steps": 2,
            "prompts_per_step": 2,
            "num_generations": 4,
            "max_completion_length": 40,
            "eval_every": 1,
            "save_every": 2,
            "eval_requests": 4,
            "learning_rate": 0.001,
        },
        "final_eval": {"max_new_tokens": 40},
    }
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    _run([*LAUNCH, "-m", "tests.dist_worker", "train", str(path), str(tmp_path / "ddp" / "run")], tmp_path)
    _run([sys.executable, "-m", "tests.dist_worker", "train", str(path), str(tmp_path / "one" / "run")], tmp_path)
    ranks = [json.loads((tmp_path / "ddp" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == ["2", "2"]
    assert [r["group_open"] for r in ranks] == [False, False]  # aflab closed its gloo group before exit
    assert ranks[1]["writes"] == [] and any(w.endswith("metrics.json") for w in ranks[0]["writes"])
    per_step = [a + b for a, b in zip(ranks[0]["scored"], ranks[1]["scored"], strict=True)]
    assert per_step == [2 * 4] * 2  # prompts_per_step x num_generations, each completion scored once

    def rows(run: Path) -> list[dict]:
        return [json.loads(x) for x in (run / "steps.jsonl").read_text().splitlines()]

    ddp, one = rows(tmp_path / "ddp" / "run"), rows(tmp_path / "one" / "run")
    assert [r["step"] for r in ddp] == [r["step"] for r in one] == [0, 1, 2]
    assert [set(r) for r in ddp] == [set(r) for r in one]  # the same metrics, logged once per step
    m_ddp, m_one = (json.loads((tmp_path / d / "run" / "metrics.json").read_text()) for d in ("ddp", "one"))
    assert set(m_ddp) == set(m_one) and sum(m_ddp["n"].values()) == sum(m_one["n"].values())
