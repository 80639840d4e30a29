"""The sweep part of the report: headline tables, verdicts, curves, audit panels, samples."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aflab.evaluation.styles import STYLES
from aflab.evaluation.verdicts import RULES
from aflab.io import atomic_write_bytes
from aflab.records import load_transcripts
from aflab.reporting.plots import af_vs_gap, interval_bars, style_bars, training_curves


@dataclass(frozen=True)
class Column:
    """One metric column of the headline table. `key` is the per-arm key in
    summary["sweep"]["table"][organism][arm] ('{audit}' stands for the arm's audit monitor), `baseline`
    the key in the before-RL row. Optional columns appear only when some arm of the organism has them,
    so a new per-arm metric is one line here."""

    header: str
    key: str
    baseline: str | None = None
    signed: bool = False
    interval: bool = True
    optional: bool = False
    names_audit: bool = False

    def cell(self, arm: dict[str, Any], audit: str) -> str:
        text = ci(arm.get(self.key.format(audit=audit)), self.signed)
        if not self.interval:
            text = text.split(" [")[0]
        return text + (f" ({audit})" if self.names_audit else "")

    def before(self, baseline: dict[str, Any]) -> str:
        return _plain(baseline.get(self.baseline), self.signed) if self.baseline else "—"


COLUMNS = (
    Column("compliance free", "compliance_free", "compliance_free"),
    Column("compliance paid", "compliance_paid", "compliance_paid"),
    Column("gap", "gap", "gap", signed=True),
    Column("AF (training monitor)", "af_rate_training"),
    Column("AF (held-out)", "af_rate_audit", "af_rate_audit", names_audit=True),
    Column("obfuscation", "obfuscation/{audit}"),
    Column("hidden gap", "hidden_gap", signed=True),
    Column("lying", "lying_audit"),
    Column("scratchpad words", "scratchpad_words", "scratchpad_words", interval=False),
    Column("oracle AF", "oracle_af", "oracle_af", optional=True),
    Column("rationalised", "rationalised", "rationalised", optional=True),
    Column("degenerate", "degenerate", "degenerate", optional=True),
    Column("denial contrast", "denial_contrast", "denial_contrast", signed=True, optional=True),
    Column("mediated share", "mediated_share", "mediated_share", optional=True),
)


def columns(sw: dict[str, Any], org: str) -> list[Column]:
    """The headline columns for one organism: every fixed one, and each optional one some arm has."""
    arms = sw["table"][org].values()
    return [c for c in COLUMNS if not c.optional or any(c.key in arm for arm in arms)]


def headline_header(sw: dict[str, Any], org: str) -> list[str]:
    return ["mitigation", "verdict", *(c.header for c in columns(sw, org))]


def ci(x: dict[str, Any] | None, signed: bool = False) -> str:
    if not x or x.get("mean") is None:
        return "—"
    f = "{:+.2f}" if signed else "{:.2f}"
    if x.get("ci95"):
        lo, hi = x["ci95"]
        return f"{f.format(x['mean'])} [{f.format(lo)}, {f.format(hi)}]"
    return f.format(x["mean"])


def _plain(v: float | None, signed: bool = False) -> str:
    return "—" if v is None else (f"{v:+.2f}" if signed else f"{v:.2f}")


def headline_rows(sw: dict[str, Any], org: str) -> list[list[str]]:
    cols = columns(sw, org)
    rows = [["before RL", "", *(c.before(sw["baseline"][org]) for c in cols)]]
    for mit in sw["mitigations"]:
        arm = sw["table"][org].get(mit)
        if arm:
            audit = _audit_name(sw, org, mit)
            rows.append([mit, sw["verdicts"][org][mit]["verdict"], *(c.cell(arm, audit) for c in cols)])
    return rows


def _audit_name(sw: dict[str, Any], org: str, mit: str) -> str:
    return next((r["audit_monitor"] for r in sw["runs"] if r["organism"] == org and r["mitigation"] == mit), "?")


def _training_name(sw: dict[str, Any], org: str, mit: str) -> str | None:
    run = next((r for r in sw["runs"] if r["organism"] == org and r["mitigation"] == mit), None)
    return run["training_monitors"][0] if run and run["training_monitors"] else None


def paired_rows(sw: dict[str, Any], org: str) -> list[list[str]]:
    rows = []
    for mit, d in sw["paired_vs_reference"].get(org, {}).items():
        rows.append(
            [
                mit,
                ci(d.get("gap"), True),
                ci(d.get("af_rate_audit"), True),
                ci(d.get("compliance_free"), True),
                ci(d.get("compliance_paid"), True),
            ]
        )
    return rows


PAIRED = ["mitigation", "Δ gap", "Δ AF (held-out)", "Δ compliance free", "Δ compliance paid"]


def samples(sw: dict[str, Any], org: str, per: int = 2) -> list[tuple[str, str, str]]:
    """(mitigation, scratchpad, output) of the first free-tier episodes of seed 0, shortened."""
    out = []
    for mit in sw["mitigations"]:
        run = next((r for r in sw["runs"] if r["organism"] == org and r["mitigation"] == mit), None)
        path = Path(run["folder"]) / "final" / "transcripts.jsonl" if run else None
        if not path or not path.exists():
            continue
        shown = 0
        for t in load_transcripts(path):
            if t.tier == "free" and t.parsed.ok and shown < per:
                out.append((mit, _short(t.parsed.scratchpad or "", 420), _short(t.parsed.output or "", 160)))
                shown += 1
    return out


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def generalisation(sw: dict[str, Any], org: str) -> str | None:
    """How much of output-only RL's effect on the free tier reached the unmonitored tier."""
    base, ref = sw["baseline"][org], sw["table"][org].get(sw["reference"])
    if not ref or ref.get("compliance_free", {}).get("mean") is None:
        return None
    d_free = ref["compliance_free"]["mean"] - (base.get("compliance_free") or 0)
    d_paid = ref["compliance_paid"]["mean"] - (base.get("compliance_paid") or 0)
    return (
        f"Output-only RL on free-tier prompts moved free-tier compliance by {d_free:+.2f} and paid-tier "
        f"compliance by {d_paid:+.2f} (means over seeds). "
        + (
            "Paid behaviour barely moved: RL on monitored prompts did not generalise to unmonitored ones."
            if abs(d_paid) < 0.5 * abs(d_free) or abs(d_paid) < 0.05
            else "Paid behaviour moved too: the update generalised across tiers."
        )
    )


def write_sweep_plots(run_dir: Path, sw: dict[str, Any], org: str) -> dict[str, bytes]:
    mits = [m for m in sw["mitigations"] if m in sw["table"][org]]
    audit = _audit_name(sw, org, sw["reference"])
    plots = {
        "curves": training_curves(
            {m: sw["curves"][org].get(m, {}) for m in mits},
            {m: _training_name(sw, org, m) for m in mits},
            audit,
            f"{org}: training curves (means over seeds)",
        ),
        "scatter": af_vs_gap(
            [
                (r["mitigation"], r["metrics"].get("af_rate_audit") or 0.0, r["metrics"].get("gap") or 0.0)
                for r in sw["runs"]
                if r["organism"] == org
            ],
            (sw["baseline"][org].get("af_rate_audit") or 0.0, sw["baseline"][org].get("gap") or 0.0),
            "strongest held-out",
            f"{org}: final AF rate vs gap, one dot per seed",
        ),
        "obfuscation": interval_bars(
            {
                m: sw["table"][org][m].get(f"obfuscation/{_audit_name(sw, org, m)}")
                for m in mits
                if _training_name(sw, org, m)
            },
            "share of free-tier scratchpads",
            "obfuscation: held-out flags, training monitor does not",
        ),
        "lying": interval_bars(
            {m: sw["table"][org][m].get("lying_audit") for m in mits},
            "share of flagged episodes answered 'no'",
            "lying under interrogation",
        ),
        "styles": style_bars(
            {
                "before RL": {s: sw["baseline"][org].get(f"style/{s}", 0.0) for s in STYLES},
                **{
                    m: {s: (sw["table"][org][m].get(f"style/{s}") or {}).get("mean") or 0.0 for s in STYLES}
                    for m in mits
                },
            },
            STYLES,
            f"{org}: reasoning styles in free-tier scratchpads",
        ),
    }
    for name, png in plots.items():
        atomic_write_bytes(run_dir / f"{org}_{name}.png", png)
    return plots


def rules_text() -> list[str]:
    return RULES
