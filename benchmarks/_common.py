"""Shared helpers for the benchmarks: a fixed organism to time, and the machine line to print."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

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
