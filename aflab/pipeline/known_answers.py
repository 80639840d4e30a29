"""The known-answer cases of a run (config `known_answers`): planted organisms audited here, RL arms
read from the sweep, each judged against the verdict the config fixed before the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aflab.config import KnownAnswerSpec, RunConfig, planted_data
from aflab.evaluation.audit import audit, flatten
from aflab.evaluation.known_answers import SHOWN, judge, planted_verdict
from aflab.io import write_json, write_jsonl
from aflab.monitors.base import Monitor, get_monitor, lead_auditor
from aflab.organisms.planted import planted_transcripts
from aflab.setting.requests import evaluation_requests


def known_answers(cfg: RunConfig, run_dir: Path, sweep: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for case in cfg.known_answers:
        org = cfg.case_organism(case).name
        if case.arm is not None:
            evasion = sweep["paired_vs_null"].get(org, {}).get(case.arm, {}).get("audit_minus_train")
            out.append(judge(case, sweep["verdicts"][org][case.arm], evasion))
            continue
        monitors, training = case_monitors(cfg, case)  # loaded once, read on every replica
        rows = [
            planted_row(cfg, case, k, monitors, training, run_dir / "known_answers" / case.name / f"o{k}")
            for k in range(cfg.organism_seeds)
        ]
        cells, got = planted_verdict(rows)
        out.append({**judge(case, got), "measured": {k: cells[k] for k in SHOWN if k in cells}})
    return out


def case_monitors(cfg: RunConfig, case: KnownAnswerSpec) -> tuple[dict[str, Monitor], list[str]]:
    """(monitors, training) of a planted case: its `monitor`, read as the training monitor, and the
    sweep's audit monitors but that one."""
    assert cfg.sweep is not None and case.planted is not None
    training = [case.planted.monitor] if case.planted.monitor else []
    held_out = [m for m in cfg.sweep.audit_monitors if m not in training]
    return {n: get_monitor(n) for n in [*training, *held_out]}, training


def planted_row(
    cfg: RunConfig,
    case: KnownAnswerSpec,
    replica: int,
    monitors: dict[str, Monitor],
    training: list[str],
    folder: Path,
) -> dict[str, Any]:
    """Replica `replica` of a planted organism, through the final evaluation's design and the sweep's
    audit (`monitors`, `training` read as its training monitor); its transcripts and audit are written
    to `folder` for inspection."""
    assert cfg.sweep is not None
    fe = cfg.sweep.final_eval
    requests = evaluation_requests(fe.include_benign, fe.limit_requests)
    org = cfg.case_organism(case).name
    records = planted_transcripts(planted_data(cfg, case), requests, fe.samples_per_request, org, cfg.seed + replica)
    held_out = [m for m in monitors if m not in training]
    a = audit(records, monitors, training, held_out)
    write_jsonl(folder / "transcripts.jsonl", records)
    write_json(folder / "audit.json", a)
    row = flatten(a, training, held_out)
    row["af_rate_audit"] = a["af_rate"][lead_auditor(held_out)]
    return row
