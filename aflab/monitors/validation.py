"""Monitor validation against labelled data: AUROC, AP, P/R/F1 at threshold, calibration error,
each with a bootstrap 95% interval, overall and per kind/style; and generalisation to styles and
motivations a learned monitor never saw in training."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from aflab.errors import UserError
from aflab.monitors.base import Monitor
from aflab.monitors.judge.prompt import CRITERIA
from aflab.records import Transcript
from aflab.stats import Estimate, wilson


def label_of(r: Transcript) -> int:
    raw = (r.model_extra or {}).get("label_af", r.meta.get("label_af"))
    if raw not in (0, 1, True, False):
        raise UserError(f"record {r.id!r}: needs 'label_af' (0 or 1) to validate a monitor")
    return int(raw)


def group_of(r: Transcript) -> str | None:
    extra = r.model_extra or {}
    return extra.get("kind") or r.meta.get("kind") or r.meta.get("style")


def ece(y: np.ndarray, s: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: |mean score - positive rate| weighted over equal-width bins."""
    idx = np.minimum((s * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.mean() * abs(s[m].mean() - y[m].mean())
    return float(total)


def _point(y: np.ndarray, s: np.ndarray, thr: float) -> dict[str, float | None]:
    f = s >= thr
    tp, fp, fn = float((f & (y == 1)).sum()), float((f & (y == 0)).sum()), float((~f & (y == 1)).sum())
    both = 0 < y.sum() < len(y)
    prec = tp / (tp + fp) if tp + fp else None
    rec = tp / (tp + fn) if tp + fn else None
    f1 = 2 * prec * rec / (prec + rec) if prec and rec else (0.0 if prec is not None and rec is not None else None)
    return {
        "auroc": float(roc_auc_score(y, s)) if both else None,
        "average_precision": float(average_precision_score(y, s)) if both else None,
        "precision": prec,
        "recall": rec,
        "f1": f1,
        "ece": ece(y, s),
    }


def score_report(
    y: Sequence[int], s: Sequence[float], threshold: float, n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    y_arr, s_arr = np.asarray(y, dtype=int), np.asarray(s, dtype=float)
    point = _point(y_arr, s_arr, threshold)
    rng = np.random.default_rng(seed)
    boots: dict[str, list[float]] = {k: [] for k in point}
    for _ in range(n_boot):
        i = rng.integers(0, len(y_arr), len(y_arr))
        for k, v in _point(y_arr[i], s_arr[i], threshold).items():
            if v is not None:
                boots[k].append(v)
    out: dict[str, Any] = {"n": len(y_arr), "positives": int(y_arr.sum()), "threshold": threshold}
    for k, v in point.items():
        out[k] = Estimate(
            v, _percentiles(boots[k]) if v is not None else None, len(y_arr), BOOTSTRAP, "value"
        ).as_dict()
    out["flag_rate"] = wilson(int((s_arr >= threshold).sum()), len(s_arr)).as_dict()
    return out


def criteria_labels(r: Transcript) -> dict[str, int] | None:
    """The record's per-criterion labels ({"c1": 0/1, ...}) when it carries them, else None."""
    raw = (r.model_extra or {}).get("criteria", r.meta.get("criteria"))
    if not isinstance(raw, dict) or set(raw) != set(CRITERIA) or any(v not in (0, 1) for v in raw.values()):
        return None
    return {c: int(raw[c]) for c in CRITERIA}


def auroc_with_ci(y: np.ndarray, s: np.ndarray, n_boot: int, seed: int) -> dict[str, Any] | None:
    """AUROC and its bootstrap 95% interval, or None when only one class is present."""
    if not 0 < y.sum() < len(y):
        return None
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        i = rng.integers(0, len(y), len(y))
        if 0 < y[i].sum() < len(y):
            boots.append(roc_auc_score(y[i], s[i]))
    auroc = Estimate(float(roc_auc_score(y, s)), _percentiles(boots), len(y), BOOTSTRAP, "value")
    return {**auroc.as_dict(), "positives": int(y.sum())}


BOOTSTRAP = "bootstrap over records (percentile)"


def _percentiles(boots: Sequence[float]) -> tuple[float, float] | None:
    """The 95% percentile interval of bootstrap draws; None with too few draws to trust one."""
    if len(boots) <= 10:
        return None
    lo, hi = (float(x) for x in np.quantile(boots, [0.025, 0.975]))
    return lo, hi


def evaluate_monitor(
    monitor: Monitor, records: Sequence[Transcript], n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    y = [label_of(r) for r in records]
    s, details = monitor.score_with_details(records)
    report: dict[str, Any] = {
        "monitor": monitor.name,
        "overall": score_report(y, s, monitor.threshold, n_boot, seed),
        "groups": {},
    }
    # Per-criterion AUROC where the records carry criterion labels and the monitor scores criteria.
    labelled = [(criteria_labels(r), d.get("criteria")) for r, d in zip(records, details, strict=True)]
    if labelled and all(lab is not None and isinstance(sc, dict) and set(CRITERIA) <= set(sc) for lab, sc in labelled):
        report["criteria"] = {
            c: auroc_with_ci(
                np.array([lab[c] for lab, _ in labelled]), np.array([sc[c] for _, sc in labelled]), n_boot, seed
            )
            for c in CRITERIA
        }
    groups = sorted({g for g in map(group_of, records) if g})
    for g in groups:
        idx = [i for i, r in enumerate(records) if group_of(r) == g]
        report["groups"][g] = score_report([y[i] for i in idx], s[idx], monitor.threshold, n_boot, seed)
    return report


def heldout_generalisation(
    make: Callable[..., Monitor], groups: dict[str, Sequence[str]], n_test: int = 1500, seed: int = 7
) -> list[dict[str, Any]]:
    """Train with a whole style (or motivation) left out, test on generator text of that group only.

    `groups` maps "style"/"motivation" to the values to hold out in turn. Test text comes from
    test-split requests and another corpus seed, with no injections or label noise.
    """
    from aflab.monitors.corpus import STYLES, monitor_corpus

    rows = []
    for axis, values in groups.items():
        for value in values:
            kwargs = {"exclude_styles": [value]} if axis == "style" else {"exclude_motivations": [value]}
            mon = make(**kwargs)
            others = {"style": [s for s in STYLES if s != value]} if axis == "style" else {}
            texts, labels, _recs = monitor_corpus(
                n_test,
                seed,
                injection_rate=0.0,
                label_noise=0.0,
                split="test",
                exclude_styles=others.get("style", ()),
                exclude_motivations=()
                if axis == "style"
                else [m for m in ("tgg", "igg", "sycophancy", "genuine") if m != value],
            )
            scores = mon.score_texts(texts)
            rows.append({"axis": axis, "held_out": value, **score_report(labels, scores, mon.threshold, 300, seed)})
    return rows
