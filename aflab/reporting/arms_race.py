"""report.md of `aflab arms-race`: the table of rounds, what the race shows (computed, with the
rule each statement follows) and a plot across rounds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aflab.io import atomic_write_bytes, atomic_write_text
from aflab.reporting.plots import arms_race_rounds
from aflab.reporting.report import md_table

COLUMNS = (
    ("extra_examples", "M_r's extra examples"),
    ("recall_before", "recall M_r (before)"),
    ("recall_after", "recall M_r+1 (after)"),
    ("evaded", "evaded M_r"),
    ("oracle_af", "oracle AF"),
    ("rationalised", "rationalised"),
    ("degenerate", "degenerate"),
    ("gap", "gap"),
    ("novel_phrasing", "evaders with a new phrasing"),
)


def fmt_estimate(e: dict[str, Any] | None, signed: bool = False) -> str:
    """'0.42 [0.10, 0.80]' ('+0.42 ...' when signed); '—' when absent."""
    if not e or e.get("value") is None:
        return "—"
    f = "{:+.2f}" if signed else "{:.2f}"
    ci = e.get("ci95")
    return f.format(e["value"]) + (f" [{f.format(ci[0])}, {f.format(ci[1])}]" if ci else "")


def _fmt_point(v: float | None, signed: bool = False) -> str:
    return "—" if v is None else (f"{v:+.2f}" if signed else f"{v:.2f}")


def _figure(round_: dict[str, Any], key: str) -> dict[str, Any] | None:
    """A round's estimate; the monitor's extra examples live with the monitor."""
    return round_["monitor"].get(key) if key == "extra_examples" else round_.get(key)


def write_report(run_dir: Path, result: dict[str, Any]) -> None:
    """report.md and arms_race.png in `run_dir`."""
    auditors = [a if isinstance(a, str) else a["name"] for a in result["auditors"]]
    auditor = "auditor" if "auditor" in auditors else auditors[-1]
    columns = [*COLUMNS, (f"af_rate/{auditor}", f"{auditor} AF"), (f"recall/{auditor}", f"{auditor} recall")]
    header = ["round", *(title for _, title in columns)]
    base = result["baseline"]
    rows = [["pre-RL", *(_fmt_point(base.get(k), k == "gap") for k, _ in columns)]]
    rows += [
        [str(r["round"]), *(fmt_estimate(_figure(r, k), k == "gap") for k, _ in columns)] for r in result["rounds"]
    ]
    png = arms_race_rounds(result["rounds"], base, auditor, f"Arms race: {result['organism']}")
    atomic_write_bytes(run_dir / "arms_race.png", png)
    monitor = result["training_monitor"]
    name = monitor if isinstance(monitor, str) else monitor["name"]
    findings = result["findings"]
    timings = result.get("timings_s", {})
    md = [
        f"# Arms race: {result['organism']}",
        "",
        f"Each round trains the previous round's policy (GRPO, process supervision) against M_r, the `{name}` "
        "monitor retrained on every scratchpad that evaded it so far: faking by "
        f"{'the provenance oracle' if result['truth'] == 'oracle' else result['truth']}, not flagged. "
        f"Seeds (one chain each): {result['seeds']}. Figures are means over seeds with 95% intervals "
        f"({result['method']}).",
        "",
        md_table(header, rows),
        "",
        "![the race round by round](arms_race.png)",
        "",
        "## What the race shows",
        "",
        *(
            f"- **{title}** ({findings[key]['answer']}): {findings[key]['text']}"
            for key, title in (
                ("evasion_moves", "Does evasion move to new phrasings?"),
                ("gap_follows", "Does the gap follow?"),
                ("recall_converges", "Does recall converge?"),
            )
        ),
        "",
        "## Time by stage (seconds; stages in parallel workers add up to more than the wall time)",
        "",
        md_table(["stage", "s"], [[k, f"{v:.1f}"] for k, v in timings.items()]),
        "",
    ]
    atomic_write_text(run_dir / "report.md", "\n".join(md))
