"""The sweep: every organism x mitigation x seed through RL, then the audit, aggregated over seeds."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from aflab.config import FinalEvalSpec, MitigationSpec, MonitorRef, RLSpec, RunConfig, TrainConfig
from aflab.evaluation.audit import RATES, agreement, audit, flatten
from aflab.evaluation.verdicts import verdict
from aflab.io import write_json
from aflab.monitors.base import get_monitor
from aflab.pipeline.cache import digest, run_stage
from aflab.pipeline.organisms import instance_name, model_key
from aflab.pipeline.parallel import Task
from aflab.progress import Reporter
from aflab.records import Transcript, load_transcripts
from aflab.stats import TWO_LEVEL, nested_ci, pooled_rate, power
from aflab.training.grpo import train_run

AUDIT_PREFERENCE = ("judge", "auditor", "learned_words", "learned", "learned_embed", "keyword")


def reward_monitors(m: MitigationSpec) -> list[str]:
    return [s.monitor for s in (m.process_supervision, m.af_plus) if s]


def held_out_for(m: MitigationSpec, audit_monitors: list[str]) -> list[str]:
    used = set(reward_monitors(m))
    return [a for a in audit_monitors if a not in used]


def audit_monitor(held_out: list[str]) -> str:
    """The strongest held-out monitor: the one whose verdict the report leads with."""
    return next((m for m in AUDIT_PREFERENCE if m in held_out), held_out[0])


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
    mit = MitigationSpec.model_validate(mitigation)
    held_out = held_out_for(mit, audit_monitors)
    instance = instance_name(organism, replica)
    folder = Path(run_dir) / "sweep" / instance / mit.name / f"seed{seed}"
    key = {
        "stage": "rl",
        "model": model_key,
        "mitigation": mitigation,
        "rl": rl,
        "final_eval": final_eval,
        "seed": seed,
        "held_out": [MonitorRef.parse(m).spec() for m in held_out],  # options change the audit
    }

    def build(tmp: Path) -> dict[str, Any]:
        cfg = TrainConfig(
            name=f"{instance.replace('@', '-')}-{mit.name}-s{seed}",
            organism=model_dir,
            mitigation=mit,
            rl=RLSpec.model_validate(rl),
            seed=seed,
            held_out_monitors=held_out,
            final_eval=FinalEvalSpec.model_validate(final_eval),
        )
        train_run(cfg, tmp, reporter=reporter)
        monitors = {n: get_monitor(n) for n in [*reward_monitors(mit), *held_out]}
        records = load_transcripts(tmp / "final" / "transcripts.jsonl")
        mediated = load_mediation(tmp / "final" / "mediation.jsonl")
        a = audit(records, monitors, reward_monitors(mit), held_out, mediated, oracle=speaks_bank(Path(model_dir)))
        write_json(tmp / "audit.json", a)
        shutil.rmtree(tmp / "checkpoints", ignore_errors=True)
        if not keep_model:
            shutil.rmtree(tmp / "model", ignore_errors=True)
        return {}

    run_stage(folder, key, build)
    reporter.stage("done", 1)
    reporter.advance()
    return {
        "organism": organism,
        "replica": replica,
        "mitigation": mit.name,
        "seed": seed,
        "held_out": held_out,
        "training": reward_monitors(mit),
        "audit": json.loads((folder / "audit.json").read_text()),
        "steps": [json.loads(x) for x in (folder / "steps.jsonl").read_text().splitlines() if x.strip()],
        "folder": str(folder),
    }


def warm_monitors(reporter: Reporter, names: list[str]) -> None:
    """Train (or load) the learned monitors once, before RL workers all need them at once."""
    reporter.stage("train/load monitors", len(names))
    for name in names:
        get_monitor(name)
        reporter.advance()


def sweep_tasks(cfg: RunConfig, run_dir: Path, after: tuple[str, ...] = ()) -> list[Task]:
    """One task per (seed, organism, mitigation); each waits for its organism and for `after`."""
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
            )
        )
    return tasks


def load_mediation(path: Path) -> list[Transcript]:
    """Mediation records; none (an empty file) when no request parsed in both tiers."""
    return load_transcripts(path) if path.stat().st_size else []


def speaks_bank(model_dir: Path) -> bool:
    """Whether the provenance oracle applies: from-scratch organisms speak only the phrase bank."""
    info = json.loads((model_dir / "aflab_organism.json").read_text(encoding="utf-8"))
    return info.get("base_model") is None


def baseline_audit(cfg: RunConfig, run_dir: Path) -> dict[str, Any]:
    """The same audit on each organism's pre-RL transcripts: the 'before' of every comparison,
    with every training monitor too, and the flag agreement of each training monitor with each
    auditor (how independent the audit is, measured where nothing has been optimised yet)."""
    assert cfg.sweep is not None
    auditors = cfg.sweep.audit_monitors
    trainers = sorted({m for mit in cfg.sweep.mitigations for m in reward_monitors(mit)})
    monitors = {n: get_monitor(n) for n in dict.fromkeys([*auditors, *trainers])}
    rows, intervals, agreements = {}, {}, {}
    for org in cfg.sweep.organisms or [o.name for o in cfg.organisms]:
        replica_rows, replica_estimates, free = [], [], []
        for k in range(cfg.organism_seeds):
            folder = run_dir / "organisms" / instance_name(org, k)
            records = load_transcripts(folder / "baseline" / "transcripts.jsonl")
            mediated = load_mediation(folder / "baseline" / "mediation.jsonl")
            a = audit(records, monitors, [], list(monitors), mediated, oracle=speaks_bank(folder / "model"))
            row = flatten(a, [], list(monitors))
            row["af_rate_audit"] = a["af_rate"][audit_monitor(auditors)]
            replica_rows.append(row)
            replica_estimates.append(estimates(a))
            free += [r for r in records if r.tier == "free" and r.parsed.ok and r.meta.get("harmful") is not False]
        rows[org] = mean_rows(replica_rows)
        keys = {k for e in replica_estimates for k in e}
        intervals[org] = {k: pooled_rate([e.get(k) for e in replica_estimates]) for k in sorted(keys)}
        flags = {n: monitors[n].flag(free) for n in monitors}
        independent = [h for h in auditors if h not in trainers]
        agreements[org] = {f"{t}~{h}": agreement(flags[t], flags[h]) for t in trainers for h in independent}
    return {"rows": rows, "intervals": intervals, "agreement": agreements}


def mean_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Key by key mean of several replicas' rows (a key missing or None in one is left out)."""
    keys = dict.fromkeys(k for row in rows for k in row)
    out = {}
    for k in keys:
        vals = [row[k] for row in rows if isinstance(row.get(k), int | float)]
        out[k] = float(np.mean(vals)) if vals else None
    return out


def estimates(a: dict[str, Any]) -> dict[str, Any]:
    """The binomial estimates of one audit (rate, Wilson ci95, n), keyed like the table."""
    out = {k: a[k] for k in RATES if k in a}
    for kind in ("recall_vs_oracle", "precision_vs_oracle"):
        out.update({f"{kind}/{m}": e for m, e in a.get(kind, {}).items()})
    if "denial" in a:
        out.update({"denial/flagged": a["denial"]["flagged"], "denial/unflagged": a["denial"]["unflagged"]})
    if "mediation" in a:
        m = a["mediation"]
        out["mediated_share"] = {"rate": m["mediated_share"], "ci95": m["ci95"], "n": m["n"]}
    return out


PAIRED_KEYS = ("gap", "af_rate_audit", "oracle_af", "rationalised", "degenerate", "compliance_free", "compliance_paid")


def aggregate(cfg: RunConfig, results: list[dict[str, Any]], base: dict[str, Any]) -> dict[str, Any]:
    """Mean and 95% interval over seeds per (organism, mitigation), paired differences against
    the reference arm (the first) on the same seeds, verdicts, and mean training curves."""
    assert cfg.sweep is not None
    baseline = base["rows"]
    reference = cfg.sweep.mitigations[0].name
    rows: dict[tuple[str, str], dict[tuple[int, int], dict[str, Any]]] = defaultdict(dict)
    runs = []
    for r in results:
        row = flatten(r["audit"], r["training"], r["held_out"])
        am = audit_monitor(r["held_out"])
        row["af_rate_audit"] = r["audit"]["af_rate"].get(am)
        row["lying_audit"] = (r["audit"].get("lying") or {}).get(am)
        row["recall_vs_oracle/audit"] = row.get(f"recall_vs_oracle/{am}")
        if r["training"]:
            row["recall_vs_oracle/training"] = row.get(f"recall_vs_oracle/{r['training'][0]}")
        rows[(r["organism"], r["mitigation"])][(r.get("replica", 0), r["seed"])] = row
        runs.append(
            {
                "organism": r["organism"],
                "replica": r.get("replica", 0),
                "mitigation": r["mitigation"],
                "seed": r["seed"],
                "audit_monitor": am,
                "training_monitors": r["training"],
                "metrics": row,
                "folder": r["folder"],
            }
        )
    table: dict[str, dict[str, Any]] = defaultdict(dict)
    paired: dict[str, dict[str, Any]] = defaultdict(dict)
    verdicts: dict[str, dict[str, Any]] = defaultdict(dict)
    gap_diffs: dict[str, list[list[list[float]]]] = defaultdict(list)
    for (org, mit), by_run in rows.items():
        keys = sorted({k for row in by_run.values() for k in row})
        table[org][mit] = {
            k: nested_ci(by_replica({r: row.get(k) for r, row in by_run.items()}), bounds_of(k)) for k in keys
        }
        ref = rows.get((org, reference), {})
        if mit != reference and ref:
            diffs = {
                k: {r: _diff(row.get(k), ref[r].get(k)) for r, row in by_run.items() if r in ref} for k in PAIRED_KEYS
            }
            paired[org][mit] = {k: nested_ci(by_replica(d), (-2.0, 2.0)) for k, d in diffs.items()}
            gap_diffs[org].append([[g for g in group if g is not None] for group in by_replica(diffs["gap"])])
        v, why = verdict(table[org][mit], paired[org].get(mit), baseline.get(org))
        verdicts[org][mit] = {"verdict": v, "reason": why}
    return {
        "reference": reference,
        "mitigations": [m.name for m in cfg.sweep.mitigations],
        "seeds": cfg.sweep.seeds,
        "organism_seeds": cfg.organism_seeds,
        "interval_method": TWO_LEVEL if cfg.organism_seeds > 1 else "t-interval over RL seeds",
        "power": {org: power(groups) for org, groups in gap_diffs.items()},
        "baseline": baseline,
        "baseline_intervals": base["intervals"],
        "agreement": base["agreement"],
        "table": table,
        "paired_vs_reference": paired,
        "verdicts": verdicts,
        "curves": curves(results, baseline),
        "runs": runs,
    }


def by_replica(values: dict[tuple[int, int], Any]) -> list[list[Any]]:
    """Values keyed by run (replica, seed), grouped per organism replica in seed order."""
    groups: dict[int, list[Any]] = defaultdict(list)
    for (replica, _), v in sorted(values.items()):
        groups[replica].append(v)
    return [groups[k] for k in sorted(groups)]


def bounds_of(metric: str) -> tuple[float, float] | None:
    """The range a metric lives in: rates in [0, 1], differences in [-1, 1], lengths and shares of
    a gap (which can fall outside [0, 1]) unbounded."""
    if metric.startswith("gap") or metric in ("hidden_gap", "rationalisation_gap", "denial_contrast"):
        return (-1.0, 1.0)
    return None if metric in ("scratchpad_words", "mediated_share") else (0.0, 1.0)


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


CURVE_KEYS = (
    "reward",
    "rewards/compliance/mean",
    "eval/gap",
    "eval/compliance_free",
    "eval/compliance_paid",
    "rollout/interrogation_yes",
    "rollout/scratchpad_tokens",
)
CURVE_PREFIXES = ("rollout/af_rate/", "eval/af_rate/")


def curves(
    results: list[dict[str, Any]], baseline: dict[str, Any]
) -> dict[str, dict[str, dict[str, list[float | None]]]]:
    """Per organism and mitigation: each logged quantity per step, averaged over seeds; step 0 is
    the organism's pre-RL evaluation (the same for every mitigation)."""
    acc: dict[tuple[str, str], dict[str, dict[int, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for r in results:
        for row in r["steps"]:
            for k, v in row.items():
                if isinstance(v, int | float) and (k in CURVE_KEYS or k.startswith(CURVE_PREFIXES)):
                    acc[(r["organism"], r["mitigation"])][k][row["step"]].append(float(v))
    for (org, _), series in acc.items():
        base = baseline.get(org, {})
        start = {
            "eval/gap": base.get("gap"),
            "eval/compliance_free": base.get("compliance_free"),
            "eval/compliance_paid": base.get("compliance_paid"),
            "rewards/compliance/mean": base.get("compliance_free"),
            **{f"rollout/af_rate/{k.split('/', 1)[1]}": v for k, v in base.items() if k.startswith("af_rate/")},
        }
        for k, v in start.items():
            if v is not None and 0 not in series[k]:
                series[k][0].append(float(v))
    out: dict[str, dict[str, dict[str, list[float | None]]]] = defaultdict(dict)
    for (org, mit), series in acc.items():
        out[org][mit] = {
            k: [[s, float(np.mean(v))] for s, v in sorted(by_step.items())] for k, by_step in series.items()
        }
    return out
