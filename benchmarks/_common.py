"""Shared helpers for the benchmarks: a fixed organism to time, and the machine line to print."""

from __future__ import annotations

import datetime
import os
import platform
import sys
from pathlib import Path
from typing import Any

import torch

DEFAULT_ORGANISM = Path("runs/quickstart/organisms/tgg_counterfactual/model")


def organism_path(argv: list[str]) -> Path:
    path = Path(argv[1]) if len(argv) > 1 else DEFAULT_ORGANISM
    if not (path / "aflab_organism.json").exists():
        sys.exit(f"no organism at {path}: run `aflab run` first, or pass an organism folder")
    return path


def machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}, cuda={torch.cuda.is_available()}"
    )


RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]


def clone_at(rev: str, prefix: str) -> tuple[Path, str]:
    """(checkout folder, short commit): this repository cloned into a new temporary folder and
    checked out at `rev`, so that a benchmark runs a commit's own README commands, nothing local."""
    import subprocess
    import tempfile

    root = Path(tempfile.mkdtemp(prefix=prefix)) / "aflab"
    subprocess.run(["git", "clone", "-q", str(REPO), str(root)], check=True)
    subprocess.run(["git", "checkout", "-q", rev], cwd=root, check=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()
    return root, commit


def record(
    name: str,
    title: str,
    headline: list[dict[str, str]] | None = None,
    tables: list[dict[str, Any]] | None = None,
    figures: dict[str, Any] | None = None,
    device: str | None = None,
) -> Path:
    """Write benchmarks/results/NAME.json, the only input of RESULTS.md (`python benchmarks/render.py`).

    headline: rows of the summary table ({"benchmark", "goal", "measured", "verdict"});
    tables: {"caption", "header", "rows"}; figures: the raw numbers behind them.
    """
    from aflab.io import write_json

    return write_json(
        RESULTS / f"{name}.json",
        {
            "benchmark": name,
            "title": title,
            "script": f"benchmarks/{name}.py",
            "measured": datetime.date.today().isoformat(),
            "device": device or machine(),
            "headline": headline or [],
            "tables": tables or [],
            "figures": figures or {},
        },
    )
