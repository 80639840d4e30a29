"""Do the quickstart's verdicts depend on which organisms were drawn? The quickstart under three
top-level seeds that share no organism (replica k of seed s is built from seed s + k, and the seeds
are 100 apart), each arm's verdict and its paired differences against the null update per seed, and
the share of arms whose verdict is the same at every seed.

    python benchmarks/stability.py [--seeds 0 100 200] [--root runs/stability] [--config quickstart]

A run folder that already holds a finished run is reused: `aflab run` resumes from its stage cache
and recomputes only the summary, so a finished run can stand for its seed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record

from aflab.stats import fmt

METRICS = (
    ("Δ gap", "gap"),
    ("Δ oracle AF", "oracle_af"),
    ("Δ auditor AF", "af_rate_audit"),
    ("Δ rationalised", "rationalised_free"),
    ("Δ degenerate", "degenerate"),
)


def run(config: str, seed: int, out: Path) -> dict:
    """`aflab run` at top-level `seed` into `out`: a finished run's stages are reused and only its
    summary (statistics, verdicts, report) is recomputed, so every seed is judged by today's rules."""
    subprocess.run(
        [sys.executable, "-m", "aflab.cli", "run", config, "--seed", str(seed), "--out", str(out)], check=True
    )
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 100, 200])
    ap.add_argument("--root", type=Path, default=Path("runs/stability"))
    ap.add_argument("--config", default="quickstart")
    args = ap.parse_args()
    summaries = {s: run(args.config, s, args.root / f"seed{s}") for s in args.seeds}
    sweeps = {s: summary["sweep"] for s, summary in summaries.items()}
    first = sweeps[args.seeds[0]]
    # the known answers (expected verdicts fixed in the config) at every seed
    known = [
        [k["name"], str(s), k["expected"], k["got"], "yes" if k["pass"] else "NO"]
        for s in args.seeds
        for k in summaries[s].get("known_answers", [])
    ]
    known_passed = sum(row[-1] == "yes" for row in known)
    rows, agree, figures = [], [], {}
    for org in first["verdicts"]:
        for arm in first["mitigations"]:
            verdicts = [sweeps[s]["verdicts"][org][arm]["verdict"] for s in args.seeds]
            same = len(set(verdicts)) == 1
            agree.append(same)
            for s in args.seeds:
                d = sweeps[s]["paired_vs_null"].get(org, {}).get(arm, {})
                v = sweeps[s]["verdicts"][org][arm]
                rows.append(
                    [org, arm, str(s), v["verdict"], *(fmt(d.get(k), True) if d.get(k) else "—" for _, k in METRICS)]
                )
            figures[f"{org}/{arm}"] = {
                "verdicts": dict(zip(map(str, args.seeds), verdicts, strict=True)),
                "same": same,
                "paired_vs_null": {str(s): sweeps[s]["paired_vs_null"].get(org, {}).get(arm) for s in args.seeds},
                "reasons": {str(s): sweeps[s]["verdicts"][org][arm]["reason"] for s in args.seeds},
            }
    share = sum(agree) / len(agree)
    header = ["organism", "arm", "seed", "verdict", *(h for h, _ in METRICS)]
    print(" | ".join(header))
    for r in rows:
        print(" | ".join(r))
    print(f"verdicts the same at every seed: {sum(agree)}/{len(agree)} arms ({share:.0%})")
    for row in known:
        print(" | ".join(row))
    if known:
        print(f"known answers that got their expected verdict: {known_passed}/{len(known)} (cases x seeds)")
    design = first.get("design", {})
    record(
        "stability",
        f"Verdict stability: `aflab run {args.config}` at top-level seeds {', '.join(map(str, args.seeds))}",
        headline=[
            {
                "benchmark": "arms whose verdict is the same at every seed",
                "goal": "all",
                "measured": f"{sum(agree)}/{len(agree)}",
                "verdict": "met" if all(agree) else "missed",
            },
            *(
                [
                    {
                        "benchmark": "known answers with their expected verdict, cases x seeds",
                        "goal": "all",
                        "measured": f"{known_passed}/{len(known)}",
                        "verdict": "met" if known_passed == len(known) else "missed",
                    }
                ]
                if known
                else []
            ),
        ],
        tables=[
            {
                "caption": f"Each arm against the null update, paired by organism ({design.get('organisms')} organisms "
                f"per seed, 95% t-intervals, df = {(design.get('df') or {}).get('paired_vs_null')}); seeds share no "
                "organism.",
                "header": header,
                "rows": rows,
            },
            *(
                [
                    {
                        "caption": "Known answers: each case's verdict, fixed in the config before the run, and "
                        "what the audit said at each seed.",
                        "header": ["case", "seed", "expected", "got", "pass"],
                        "rows": known,
                    }
                ]
                if known
                else []
            ),
        ],
        figures={
            "seeds": args.seeds,
            "agree": share,
            "arms": figures,
            "known_answers": {str(s): summaries[s].get("known_answers", []) for s in args.seeds},
        },
    )


if __name__ == "__main__":
    main()
