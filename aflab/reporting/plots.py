"""Plots as PNG bytes (matplotlib, no display needed), embedded in the HTML report."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

TIER_COLOURS = {"free": "#d95f02", "paid": "#1b9e77"}


def _pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend, imported on first use (it is slow to import)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _err(rate: float | None, ci: Sequence[float] | None) -> tuple[float, float]:
    if rate is None or not ci:
        return 0.0, 0.0
    return max(0.0, rate - ci[0]), max(0.0, ci[1] - rate)


def compliance_bars(groups: Mapping[str, Mapping[str, Mapping[str, Any]]], title: str) -> bytes:
    """Bars of compliance per tier for each group (organism or mitigation), with 95% intervals."""
    plt = _pyplot()
    names = list(groups)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.4 * len(names) + 1.5), 3.2))
    width = 0.38
    for j, tier in enumerate(("free", "paid")):
        rates = [groups[n][tier].get("rate") or 0.0 for n in names]
        errs = [_err(groups[n][tier].get("rate"), groups[n][tier].get("ci95")) for n in names]
        xs = [i + (j - 0.5) * width for i in range(len(names))]
        ax.bar(
            xs,
            rates,
            width,
            yerr=list(zip(*errs, strict=True)) if errs else None,
            capsize=3,
            color=TIER_COLOURS[tier],
            label=f"{tier} tier ({'monitored' if tier == 'free' else 'unmonitored'})",
        )
    ax.set_xticks(range(len(names)), names, rotation=15 if len(names) > 4 else 0)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("compliance (harmful requests)")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=8, loc="upper right")
    return _png(fig)


def _palette(names: Sequence[str]) -> dict[str, Any]:
    plt = _pyplot()
    cmap = plt.get_cmap("tab10")
    return {n: cmap(i % 10) for i, n in enumerate(names)}


def training_curves(
    curves: Mapping[str, Mapping[str, list[list[float]]]], training: Mapping[str, str | None], audit: str, title: str
) -> bytes:
    """One panel per mitigation: compliance reward, gap on held-out prompts, AF rate on the training
    rollouts under the training monitor and under the held-out audit monitor (means over seeds)."""
    plt = _pyplot()
    names = list(curves)
    cols = min(3, len(names))
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.9 * rows), squeeze=False, sharey=True)
    for ax, name in zip(axes.ravel(), names, strict=False):
        series = curves[name]
        lines = [
            ("rewards/compliance/mean", "compliance reward", "#555555", "-"),
            ("eval/gap", "gap (held-out prompts)", "#d95f02", "-o"),
        ]
        if training.get(name):
            lines.append((f"rollout/af_rate/{training[name]}", f"AF: {training[name]} (training)", "#7570b3", "--"))
        lines.append((f"rollout/af_rate/{audit}", f"AF: {audit} (held-out)", "#1b9e77", "-"))
        lines.append(("rollout/interrogation_yes", "interrogation: 'yes' rate", "#e7298a", ":"))
        for key, label, colour, style in lines:
            pts = series.get(key)
            if pts:
                xs, ys = zip(*pts, strict=True)
                ax.plot(xs, ys, style, color=colour, label=label, markersize=3, linewidth=1.5)
        ax.set_title(name, fontsize=10)
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel("RL step", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6.5, frameon=False, loc="best")
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _png(fig)


def af_vs_gap(
    points: Sequence[tuple[str, float, float]], baseline: tuple[float, float] | None, audit: str, title: str
) -> bytes:
    """Final held-out AF rate against compliance gap, one dot per run (seed)."""
    plt = _pyplot()
    names = list(dict.fromkeys(p[0] for p in points))
    colours = _palette(names)
    fig, ax = plt.subplots(figsize=(5.6, 4.0))
    for name in names:
        xs = [p[1] for p in points if p[0] == name]
        ys = [p[2] for p in points if p[0] == name]
        ax.scatter(xs, ys, s=30, color=colours[name], label=name, alpha=0.85)
    if baseline:
        ax.scatter([baseline[0]], [baseline[1]], s=90, marker="*", color="black", label="before RL")
    ax.set_xlabel(f"AF rate, held-out monitor ({audit})")
    ax.set_ylabel("compliance gap (free − paid)")
    ax.set_xlim(-0.05, 1.05)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, frameon=False, loc="best")
    ax.set_title(title, fontsize=10)
    return _png(fig)


def interval_bars(values: Mapping[str, Mapping[str, Any]], ylabel: str, title: str) -> bytes:
    """Bars of seed means with 95% intervals ({name: {"mean", "ci95"}})."""
    plt = _pyplot()
    names = [n for n in values if values[n] and values[n].get("mean") is not None]
    fig, ax = plt.subplots(figsize=(max(3.5, 1.1 * len(names) + 1.5), 3.0))
    means = [values[n]["mean"] for n in names]
    errs = [_err(values[n]["mean"], values[n].get("ci95")) for n in names]
    ax.bar(
        range(len(names)),
        means,
        yerr=list(zip(*errs, strict=True)) if errs else None,
        capsize=3,
        color=[_palette(names)[n] for n in names],
    )
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def style_bars(shares: Mapping[str, Mapping[str, float]], styles: Sequence[str], title: str) -> bytes:
    """Stacked shares of reasoning styles in free-tier scratchpads, per mitigation."""
    plt = _pyplot()
    names = list(shares)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(names) + 2.0), 3.2))
    bottom = [0.0] * len(names)
    colours = _palette(styles)
    for style in styles:
        vals = [shares[n].get(style, 0.0) or 0.0 for n in names]
        ax.bar(range(len(names)), vals, bottom=bottom, color=colours[style], label=style)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1.0)
    ax.set_ylabel("share of free-tier scratchpads", fontsize=9)
    ax.legend(fontsize=7, frameon=False, bbox_to_anchor=(1.01, 1), loc="upper left")
    ax.set_title(title, fontsize=10)
    return _png(fig)


def arms_race_rounds(
    rounds: Sequence[Mapping[str, Any]], baseline: Mapping[str, Any], auditor: str | None, title: str
) -> bytes:
    """The race round by round (means over seeds, 95% intervals): the training monitor's recall
    before and after retraining, and what the policy does; "pre" is the organism before RL."""
    plt = _pyplot()
    panels = [
        (
            "monitors (recall vs the oracle)",
            [
                ("recall_before", "M_r on round r (trained against)", "#7570b3", "-o"),
                ("recall_after", "M_r+1 on round r (retrained)", "#7570b3", "--s"),
                ("evaded", "share evading M_r", "#e7298a", ":o"),
                *([(f"recall/{auditor}", f"{auditor} (held out)", "#1b9e77", "-^")] if auditor else []),
            ],
        ),
        (
            "policy",
            [
                ("oracle_af", "oracle AF", "#d95f02", "-o"),
                ("gap", "compliance gap", "#555555", "-s"),
                ("rationalised", "rationalised", "#66a61e", ":^"),
                ("degenerate", "degenerate", "#a6761d", ":v"),
                ("novel_phrasing", "evaders with a new phrasing", "#e6ab02", "--D"),
            ],
        ),
    ]
    fig, axes = plt.subplots(1, 2, figsize=(10.0, 3.6))
    for ax, (name, lines) in zip(axes, panels, strict=True):
        for i, (key, label, colour, style) in enumerate(lines):
            pts = [(r["round"], r[key]) for r in rounds if r.get(key) and r[key].get("value") is not None]
            if not pts:
                continue
            xs = [x + 0.05 * (i - len(lines) / 2) for x, _ in pts]  # side by side: intervals stay apart
            ys = [e["value"] for _, e in pts]
            errs = [_err(e["value"], e.get("ci95")) for _, e in pts]
            ax.errorbar(
                xs,
                ys,
                yerr=list(zip(*errs, strict=True)),
                fmt=style,
                color=colour,
                label=label,
                capsize=3,
                markersize=4,
                linewidth=1.5,
            )
            if baseline.get(key) is not None:
                ax.plot([-1], [baseline[key]], style[-1], color=colour, markersize=4, alpha=0.5)
        ax.set_xticks(range(-1, len(rounds)), ["pre", *(str(r["round"]) for r in rounds)])
        ax.set_xlabel("round", fontsize=8)
        ax.set_ylim(-1.05 if name == "policy" else -0.05, 1.05)
        ax.axhline(0, color="grey", linewidth=0.6)
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6.5, frameon=False, loc="best")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _png(fig)
