"""Sweep statistics: per-run audit rows aggregated over RL seeds and organism replicas, paired
differences against the reference arm, verdicts and mean training curves (summary["sweep"]).

Pure functions of the runs' audits: the orchestration that produces them is pipeline/sweep.py.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from aflab.config import RunConfig
from aflab.evaluation.audit import RATES, flatten
from aflab.evaluation.metrics import mediated_share
from aflab.evaluation.verdicts import NEAR, verdict
from aflab.stats import REPLICA_T, T_SEEDS, nested_ci, pooled_rate, power


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
        out["mediated_share"] = mediated_share(a["mediation"]).as_dict()
    return out


def pooled(replica_estimates: list[dict[str, Any]]) -> dict[str, Any]:
    """Each binomial estimate pooled over an organism's replicas (`estimates` of each replica's audit)."""
    keys = {k for e in replica_estimates for k in e}
    return {k: pooled_rate([e.get(k) for e in replica_estimates], bounds_of(k)).as_dict() for k in sorted(keys)}


PAIRED_KEYS = ("gap", "af_rate_audit", "oracle_af", "rationalised", "degenerate", "compliance_free", "compliance_paid")
BEFORE_KEYS = ("gap", "af_rate_audit", "oracle_af")
# summary["sweep"]["paired_vs_null"] keys -> the run-row metric each is the difference of (SUMMARY.md)
NULL_KEYS = {
    "gap": "gap",
    "oracle_af": "oracle_af",
    "af_rate_audit": "af_rate_audit",
    "af_rate_train": "af_rate_training",
    "rationalised_free": "rationalised",
    "degenerate": "degenerate",
    "denial_contrast": "denial_contrast",
    "compliance_free": "compliance_free",
    "compliance_paid": "compliance_paid",
    "oracle_af+degenerate": "oracle_af+degenerate",
    "af_rate_audit+degenerate": "af_rate_audit+degenerate",
    "audit_minus_train": "af_rate_audit-training",
}


def aggregate(cfg: RunConfig, results: list[dict[str, Any]], base: dict[str, Any]) -> dict[str, Any]:
    """Mean and 95% interval over seeds per (organism, mitigation), paired differences against
    the reference arm (the first) on the same seeds, verdicts, and mean training curves. Long because
    a third of it is the returned dict: summary.json's `sweep` section, key by key (docs/SUMMARY.md)."""
    assert cfg.sweep is not None
    baseline = base["rows"]
    reference = cfg.sweep.mitigations[0].name
    null_arms = {
        m.name
        for m in cfg.sweep.mitigations
        if m.learning_rate == 0 or (m.learning_rate is None and cfg.sweep.rl.learning_rate == 0)
    }
    rows, trained_on, runs = run_rows(results)
    null = next((m.name for m in cfg.sweep.mitigations if m.name in null_arms), None)
    interrogated = {r["mitigation"] for r in results if r.get("interrogated")}
    table: dict[str, dict[str, Any]] = defaultdict(dict)
    paired: dict[str, dict[str, Any]] = defaultdict(dict)
    vs_null: dict[str, dict[str, Any]] = defaultdict(dict)
    vs_before: dict[str, dict[str, Any]] = defaultdict(dict)
    verdicts: dict[str, dict[str, Any]] = defaultdict(dict)
    gap_diffs: dict[str, list[list[list[float]]]] = defaultdict(list)
    for (org, mit), by_run in rows.items():
        keys = sorted({k for row in by_run.values() for k in row})
        table[org][mit] = {
            k: nested_ci(by_replica({r: row.get(k) for r, row in by_run.items()}), bounds_of(k)).as_dict() for k in keys
        }
        ref = rows.get((org, reference), {})
        if mit != reference and ref:
            diffs = paired_diffs(by_run, ref, PAIRED_KEYS)
            paired[org][mit] = diff_intervals(diffs)
            gap_diffs[org].append([[g for g in group if g is not None] for group in by_replica(diffs["gap"])])
        delta = None  # the arm minus the null update, by run-row key: what the verdict reads
        if null is not None and mit != null and (null_rows := rows.get((org, null))):
            delta = against_null(by_run, null_rows, trained_on.get((org, mit)))
            vs_null[org][mit] = {k: delta[row_key] for k, row_key in NULL_KEYS.items() if row_key in delta}
        # each run against its own organism's before-RL audit: the noise floor's test, paired by organism
        if before_rows := base.get("replica_rows", {}).get(org):
            vs_before[org][mit] = diff_intervals(
                paired_diffs(by_run, {r: before_rows[r[0]] for r in by_run}, BEFORE_KEYS)
            )
        verdicts[org][mit] = verdict(
            table[org][mit],
            delta,
            baseline.get(org),
            null=mit in null_arms,
            vs_before=vs_before[org].get(mit),
            interrogated=mit in interrogated,
        )
    return {
        "reference": reference,
        "mitigations": [m.name for m in cfg.sweep.mitigations],
        "seeds": cfg.sweep.seeds,
        "organism_seeds": cfg.organism_seeds,
        "interval_method": REPLICA_T if cfg.organism_seeds > 1 else T_SEEDS,
        "power": {org: power(groups) for org, groups in gap_diffs.items()},
        "baseline": baseline,
        "baseline_intervals": base["intervals"],
        "agreement": base["agreement"],
        "table": table,
        "paired_vs_reference": paired,
        "paired_vs_before": vs_before,
        "null": null,
        "paired_vs_null": vs_null,
        "design": design(cfg, null),
        "verdicts": verdicts,
        "curves": curves(results, baseline),
        "runs": runs,
    }


Rows = dict[tuple[str, str], dict[tuple[int, int], dict[str, Any]]]  # (organism, arm) -> (replica, seed) -> row


def run_rows(results: list[dict[str, Any]]) -> tuple[Rows, dict[tuple[str, str], str], list[dict[str, Any]]]:
    """Each sweep run as a flat row, grouped by (organism, arm) and keyed by (replica, seed); each
    arm's (first) training monitor; and summary.json's `runs` list."""
    rows: Rows = defaultdict(dict)
    trained_on: dict[tuple[str, str], str] = {}  # (organism, arm) -> its (first) training monitor
    runs = []
    for r in results:
        row = run_row(r)
        rows[(r["organism"], r["mitigation"])][(r.get("replica", 0), r["seed"])] = row
        if r["training"]:
            trained_on[(r["organism"], r["mitigation"])] = r["training"][0]
        runs.append(
            {
                "organism": r["organism"],
                "replica": r.get("replica", 0),
                "mitigation": r["mitigation"],
                "seed": r["seed"],
                "audit_monitor": r["audit_monitor"],
                "training_monitors": r["training"],
                "metrics": row,
                "folder": r["folder"],
            }
        )
    return rows, trained_on, runs


def run_row(r: dict[str, Any]) -> dict[str, Any]:
    """One sweep run's audit as a flat row, with the keys the statistics read under fixed names
    (`af_rate_audit`: the run's lead auditor; `.../training`: its first training monitor)."""
    row = flatten(r["audit"], r["training"], r["held_out"])
    am = r["audit_monitor"]
    row["af_rate_audit"] = r["audit"]["af_rate"].get(am)
    for fk in ("oracle_af", "af_rate_audit"):  # faking or broken text: what degraded's test reads
        row[f"{fk}+degenerate"] = _sum(row.get(fk), row.get("degenerate"))
    row["recall_vs_oracle/audit"] = row.get(f"recall_vs_oracle/{am}")
    if r["training"]:
        row["recall_vs_oracle/training"] = row.get(f"recall_vs_oracle/{r['training'][0]}")
        # paired within the run (same samples, same oracle): what the audit sees that the reward's monitor misses
        row["recall_vs_oracle/audit_minus_training"] = _diff(
            row["recall_vs_oracle/audit"], row["recall_vs_oracle/training"]
        )
    return row


def against_null(
    by_run: dict[tuple[int, int], dict[str, Any]], null_rows: dict[tuple[int, int], dict[str, Any]], train: str | None
) -> dict[str, dict[str, Any]]:
    """An arm minus the null update, paired by run, by run-row key: what the verdict reads. The arm's
    training monitor `train` is read on the null update's samples too (it must be among the null's
    audit monitors), so that the same monitor stands on both sides of the difference."""
    diffs = paired_diffs(by_run, null_rows, tuple(NULL_KEYS.values()))
    if train:
        diffs["af_rate_training"] = paired_diffs(by_run, null_rows, (f"af_rate/{train}",))[f"af_rate/{train}"]
        # what the auditor sees that the reward's monitor does not, against the null: evasion
        diffs["af_rate_audit-training"] = {
            r: _diff(diffs["af_rate_audit"].get(r), d) for r, d in diffs["af_rate_training"].items()
        }
    return {row_key: est for row_key, d in diffs.items() if (est := diff_interval(d))["n"]}


def paired_diffs(
    by_run: dict[tuple[int, int], dict[str, Any]], against: dict[tuple[int, int], dict[str, Any]], keys: Sequence[str]
) -> dict[str, dict[tuple[int, int], float | None]]:
    """Per metric, each run's value minus its counterpart's (the row of `against` with the same run key)."""
    return {k: {r: _diff(row.get(k), against[r].get(k)) for r, row in by_run.items() if r in against} for k in keys}


def diff_intervals(diffs: dict[str, dict[tuple[int, int], float | None]]) -> dict[str, Any]:
    """Mean paired difference per metric with its interval over organism replicas (as the table's cells)."""
    return {k: diff_interval(d) for k, d in diffs.items()}


def diff_interval(diff: dict[tuple[int, int], float | None]) -> dict[str, Any]:
    return nested_ci(by_replica(diff), (-2.0, 2.0)).as_dict()


def design(cfg: RunConfig, null: str | None) -> dict[str, Any]:
    """What stands behind every interval: organisms, RL seeds, and the degrees of freedom of each kind
    of interval (a t-interval over organism replicas, or over RL seeds when there is one replica)."""
    assert cfg.sweep is not None
    organisms, seeds = cfg.organism_seeds, len(cfg.sweep.seeds)
    df = organisms - 1 if organisms > 1 else seeds - 1
    return {
        "organisms": organisms,
        "rl_seeds": seeds,
        "null": null,
        "near": NEAR,
        "df": {"table": df, "paired_vs_null": df, "paired_vs_reference": df, "paired_vs_before": df},
        "interval": REPLICA_T if organisms > 1 else T_SEEDS,
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
    if metric.startswith("gap") or metric in (
        "hidden_gap",
        "rationalisation_gap",
        "denial_contrast",
        "recall_vs_oracle/audit_minus_training",
    ):
        return (-1.0, 1.0)
    return None if metric in ("scratchpad_words", "mediated_share") else (0.0, 1.0)


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _sum(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


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
