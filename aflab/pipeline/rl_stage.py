"""RL under one arm, then the audit of its final evaluation: the one stage the sweep and the arms race
share. A caller says what the run is (its `TrainConfig`) and what it is keyed by; this stage trains,
audits with the arm's reward monitors and its held-out auditors, and cleans up, so that a new
experiment is a graph of such stages rather than another copy of them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from aflab.config import TrainConfig
from aflab.evaluation.audit import audit
from aflab.io import read_rows, write_json
from aflab.mitigations import reward_monitors
from aflab.monitors.base import get_monitor
from aflab.pipeline.cache import timed_stage
from aflab.progress import Reporter
from aflab.records import load_transcripts
from aflab.rollouts.followups import load_mediation


def rl_and_audit(
    reporter: Reporter, folder: Path, key: dict[str, Any], cfg: TrainConfig, oracle: bool, keep_model: bool
) -> float:
    """Build `folder` (config.json, steps.jsonl, final/, metrics.json, audit.json, and model/ when
    `keep_model`) unless a build of `key` is there; seconds spent (0 when reused). `oracle` is whether
    the organism speaks the phrase bank, so that the provenance oracle can read its text.

    The checkpoints go when the run is done: a killed stage reruns whole, so they would only take disk."""

    def build(tmp: Path) -> None:
        from aflab.training.grpo import train_run  # torch and TRL load in the worker that trains

        train_run(cfg, tmp, reporter=reporter)
        trained = reward_monitors(cfg.mitigation)
        monitors = {n: get_monitor(n) for n in [*trained, *cfg.held_out_monitors]}
        records = load_transcripts(tmp / "final" / "transcripts.jsonl")
        mediated = load_mediation(tmp / "final" / "mediation.jsonl")
        a = audit(records, monitors, trained, cfg.held_out_monitors, mediated, oracle=oracle)
        write_json(tmp / "audit.json", a)
        shutil.rmtree(tmp / "checkpoints", ignore_errors=True)
        if not keep_model:
            shutil.rmtree(tmp / "model", ignore_errors=True)

    return timed_stage(folder, key, build)


def stage_record(folder: Path) -> dict[str, Any]:
    """What a finished stage holds for the report: its audit and its per-step log."""
    return {
        "audit": json.loads((folder / "audit.json").read_text(encoding="utf-8")),
        "steps": read_rows(folder / "steps.jsonl"),
    }
