"""The `criteria` monitor: feature families compared on composer A's validation split, then every
offline scratchpad monitor on the separately written validation set (composer B) and on the
hand-written holdout, with 95% bootstrap intervals. Prints markdown tables.

    python benchmarks/monitor_criteria.py families     # model selection (composer A val split only)
    python benchmarks/monitor_criteria.py validation   # reported figures (validation_b.jsonl, handset)

The family comparison trains every family on the same reduced corpus (MiniLM embeds every window,
which is slow on CPU); the shipped monitor is the default family at full size.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine

from aflab.monitors import get_monitor
from aflab.monitors.criteria import FAMILIES, CriteriaMonitor
from aflab.monitors.longform.composer import CRITERIA, corpus
from aflab.monitors.validation import auroc_with_ci, evaluate_monitor, score_report
from aflab.records import load_transcripts

ROOT = Path(__file__).resolve().parent.parent
VALIDATION_B = ROOT / "aflab" / "monitors" / "longform" / "validation_b.jsonl"
HANDSET = ROOT / "tests" / "data" / "monitor_handset.jsonl"
MONITORS = ("keyword", "learned", "learned_blind", "learned_words", "auditor", "criteria")


def fmt(x: dict | None) -> str:
    if not x or x.get("value") is None:
        return "—"
    ci = x.get("ci95")
    return f"{x['value']:.3f} [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else f"{x['value']:.3f}"


def families() -> None:
    dev = corpus(300, 7, "val")
    texts = [i.scratchpad for i in dev]
    y = np.array([i.label_af for i in dev])
    print(f"machine: {machine()}")
    print(f"composer A validation split (templates and phrases unseen in training), n={len(dev)}, faking={y.sum()}")
    print("| features | AUROC (all four) | c1 | c2 | c3 | c4 | scratchpads/s |")
    print("|---|---|---|---|---|---|---|")
    for family in FAMILIES:
        mon = CriteriaMonitor(features=family, n_train=500, n_generator=500, n_dev=300)
        t0 = time.perf_counter()
        crit = mon.criterion_scores(texts)
        rate = len(texts) / (time.perf_counter() - t0)
        per = [
            fmt(auroc_with_ci(np.array([i.criteria[c] for i in dev]), crit[:, k], 300, 0))
            for k, c in enumerate(CRITERIA)
        ]
        overall = fmt(score_report(y, mon.combine(crit), mon.threshold, 300)["auroc"])
        print(f"| {family} | {overall} | {' | '.join(per)} | {rate:,.0f} |")


def validation() -> None:
    print(f"machine: {machine()}")
    for path in (VALIDATION_B, HANDSET):
        records = load_transcripts(path)
        reports = [evaluate_monitor(get_monitor(name), records, n_boot=1000) for name in MONITORS]
        print(f"\n{path.relative_to(ROOT)} (n={len(records)})\n")
        print("| monitor | AUROC | AP | recall at threshold | precision | ECE | c1 | c2 | c3 | c4 |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for rep in reports:
            o, crit = rep["overall"], rep.get("criteria", {})
            cells = [fmt(o[k]) for k in ("auroc", "average_precision", "recall", "precision", "ece")]
            cells += [fmt(crit.get(c)) for c in CRITERIA]
            print(f"| {rep['monitor']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    {"families": families, "validation": validation}[sys.argv[1] if len(sys.argv) > 1 else "validation"]()
