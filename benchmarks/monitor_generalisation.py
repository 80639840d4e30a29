"""How the learned monitor generalises to reasoning it never saw: train with one whole style (or
motivation) left out of the generator corpus, test on generator text of that style only (test-split
requests, another seed, no injections or label noise). Prints one row per held-out group.

    python benchmarks/monitor_generalisation.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, record

from aflab.monitors.corpus import STYLES
from aflab.monitors.learned import NgramMonitor
from aflab.monitors.validation import heldout_generalisation


def fmt(x: dict) -> str:
    if not x or x.get("value") is None:
        return "—"
    ci = x.get("ci95")
    return f"{x['value']:.3f} [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else f"{x['value']:.3f}"


def main() -> None:
    with tempfile.TemporaryDirectory() as cache:
        os.environ["AFLAB_CACHE_DIR"] = cache
        rows = heldout_generalisation(NgramMonitor, {"style": list(STYLES), "motivation": ["tgg", "igg", "sycophancy"]})
    print(f"machine: {machine()}")
    print("| held out of training | n | faking | AUROC | recall at 0.5 | precision at 0.5 | flag rate |")
    print("|---|---|---|---|---|---|---|")
    table = []
    for r in rows:
        flag = r["flag_rate"]
        cells = [
            f"{r['axis']}: {r['held_out']}",
            r["n"],
            r["positives"],
            fmt(r["auroc"]),
            fmt(r["recall"]),
            fmt(r["precision"]),
            f"{flag['rate']:.3f}",
        ]
        table.append(cells)
        print("| " + " | ".join(map(str, cells)) + " |")
    header = ["held out of training", "n", "faking", "AUROC", "recall at 0.5", "precision at 0.5", "flag rate"]
    record(
        "monitor_generalisation",
        "Monitor generalisation to unseen styles and motivations",
        tables=[{"caption": "", "header": header, "rows": table}],
    )


if __name__ == "__main__":
    main()
