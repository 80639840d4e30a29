"""Plots as PNG bytes (matplotlib, no display needed), embedded in the HTML report."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

TIER_COLOURS = {"free": "#d95f02", "paid": "#1b9e77"}


def _png(fig: Any) -> bytes:
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
