"""The sweep: every organism x mitigation x seed through RL, then the audit (statistics over seeds:
evaluation/aggregate.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from aflab.config import ArmSpec, FinalEvalSpec, MonitorRef, RLSpec, RunConfig, TrainConfig
from aflab.evaluation.aggregate import estimates, mean_rows, pooled
from aflab.evaluation.audit import agreement, audit, flatten
from aflab.mitigations import follow_up, held_out_for, reward_monitors
from aflab.monitors.base import get_monitor, lead_auditor
from aflab.organisms.checkpoint import speaks_bank
from aflab.pipeline.cache import digest
from aflab.pipeline.organisms import instance_name, model_key
from aflab.pipeline.parallel import Task
from aflab.pipeline.rl_stage import rl_and_audit, stage_record
from aflab.progress import Reporter
from aflab.records import load_transcripts
from aflab.rollouts.followups import load_mediation
from aflab.stats import nested_ci


def run_seed(seed: int, replica: int) -> int:
    """The RL and final-evaluation seed of RL seed `seed` on organism replica `replica`. Every arm of
    one replica shares it (common random numbers: an arm minus the null update is the arm's effect);
    replicas do not, because a random stream shared by all of them moved every replica's evaluation
    the same way (+0.04 oracle AF on all six, null update against before RL), a shift that an
    interval over replicas takes for signal."""
    return seed + 1000 * replica


def sweep_task(
    reporter: Reporter,
    run_dir: str,
    organism: str,
    model_dir: str,
    model_key: str,
    mitigation: dict[str, Any],
    rl: dict[str, Any],
    final_eval: dict[str, Any],
    seed: int,
    audit_monitors: list[str],
    keep_model: bool,
    replica: int = 0,
) -> dict[str, Any]:
    mit = ArmSpec.model_validate(mitigation)
    held_out = held_out_for(mit, audit_monitors)
    instance = instance_name(organism, replica)
    folder = Path(run_dir) / "sweep" / instance / mit.name / f"seed{seed}"
    key = {
        "stage": "rl",
        "model": model_key,
        "mitigation": mitigation,
        "rl": rl,
        "final_eval": final_eval,
        "seed": run_seed(seed, replica),
        "held_out": [MonitorRef.parse(m).spec() for m in held_out],  # options change the audit
    }

    cfg = TrainConfig(
        name=f"{instance.replace('@', '-')}-{mit.name}-s{seed}",
        organism=model_dir,
        mitigation=mit,
        rl=RLSpec.model_validate(rl),
        seed=run_seed(seed, replica),
        held_out_monitors=held_out,
        final_eval=FinalEvalSpec.model_validate(final_eval),
    )
    seconds = rl_and_audit(reporter, folder, key, cfg, oracle=speaks_bank(Path(model_dir)), keep_model=keep_model)
    reporter.stage("done", 1)
    reporter.advance()
    return {
        "organism": organism,
        "replica": replica,
        "mitigation": mit.name,
        "seed": seed,
        "held_out": held_out,
        "training": reward_monitors(mit),
        "interrogated": follow_up(mit) is not None,  # only such an arm can be taught to deny
        "audit_monitor": lead_auditor(held_out),
        **stage_record(folder),
        "folder": str(folder),
        "seconds": seconds,  # 0 when reused from an earlier run
    }


def warm_monitors(reporter: Reporter, names: list[str]) -> float:
    """Train (or load) the learned monitors once, before RL workers all need them at once; seconds."""
    t0 = time.perf_counter()
    reporter.stage("train/load monitors", len(names))
    for name in names:
        get_monitor(name)
        reporter.advance()
    return round(time.perf_counter() - t0, 2)


def sweep_tasks(cfg: RunConfig, run_dir: Path, after: tuple[str, ...] = ()) -> list[Task]:
    """One task per (seed, organism, mitigation), in the config's order; each waits for its organism
    and for `after`."""
    assert cfg.sweep is not None
    sw = cfg.sweep
    by_name = {o.name: o for o in cfg.organisms}
    tasks = []
    cells = [
        (seed, org, k, mit)
        for seed in sw.seeds  # seeds outermost: a partial sweep still covers every mitigation
        for k in range(cfg.organism_seeds)
        for org in sw.organisms or list(by_name)
        for mit in sw.mitigations
        if mit.organisms is None or org in mit.organisms
    ]
    for seed, org, k, mit in cells:
        overrides = {"steps": mit.steps or sw.rl.steps}
        if mit.learning_rate is not None:
            overrides["learning_rate"] = mit.learning_rate
        if mit.beta is not None:
            overrides["beta"] = mit.beta
        instance = instance_name(org, k)
        tasks.append(
            Task(
                f"{instance}/{mit.name}/s{seed}",
                sweep_task,
                {
                    "run_dir": str(run_dir),
                    "organism": org,
                    "replica": k,
                    "model_dir": str(run_dir / "organisms" / instance / "model"),
                    "model_key": digest(model_key(by_name[org], cfg.seed + k, by_name.get(by_name[org].teacher or ""))),
                    "mitigation": mit.model_dump(mode="json"),
                    "rl": sw.rl.model_copy(update=overrides).model_dump(mode="json"),
                    "final_eval": sw.final_eval.model_dump(mode="json"),
                    "seed": seed,
                    "audit_monitors": sw.audit_monitors,
                    "keep_model": sw.keep_models,
                },
                after=(instance, *after),
                kind="rl",
            )
        )
    return tasks


def baseline_audit(cfg: RunConfig, run_dir: Path) -> dict[str, Any]:
    """The same audit on each organism's pre-RL transcripts: the 'before' of every comparison,
    with every training monitor too, and the flag agreement of each training monitor with each
    auditor (how independent the audit is, measured where nothing has been optimised yet)."""
    assert cfg.sweep is not None
    auditors = cfg.sweep.audit_monitors
    trainers = sorted({m for mit in cfg.sweep.mitigations for m in reward_monitors(mit)})
    monitors = {n: get_monitor(n) for n in dict.fromkeys([*auditors, *trainers])}
    rows, intervals, agreements, per_replica = {}, {}, {}, {}
    for org in cfg.sweep.organisms or [o.name for o in cfg.organisms]:
        replica_rows, replica_estimates, free = [], [], []
        for k in range(cfg.organism_seeds):
            folder = run_dir / "organisms" / instance_name(org, k)
            records = load_transcripts(folder / "baseline" / "transcripts.jsonl")
            mediated = load_mediation(folder / "baseline" / "mediation.jsonl")
            a = audit(records, monitors, [], list(monitors), mediated, oracle=speaks_bank(folder / "model"))
            row = flatten(a, [], list(monitors))
            row["af_rate_audit"] = a["af_rate"][lead_auditor(auditors)]
            replica_rows.append(row)
            replica_estimates.append(estimates(a))
            free += [r for r in records if r.tier == "free" and r.parsed.ok and r.meta.get("harmful") is not False]
        rows[org], per_replica[org] = mean_rows(replica_rows), replica_rows
        intervals[org] = pooled(replica_estimates)
        for k in ("gap", "gap_empty_scratchpad"):  # differences of rates: t over replicas, no Wilson
            if len(replica_rows) > 1 and all(row.get(k) is not None for row in replica_rows):
                intervals[org][k] = nested_ci([[row[k]] for row in replica_rows], (-1.0, 1.0)).as_dict()
        flags = {n: monitors[n].flag(free) for n in monitors}
        independent = [h for h in auditors if h not in trainers]
        agreements[org] = {f"{t}~{h}": agreement(flags[t], flags[h]) for t in trainers for h in independent}
    return {"rows": rows, "intervals": intervals, "agreement": agreements, "replica_rows": per_replica}
