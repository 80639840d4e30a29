"""Which trainer checkpoint `aflab train --resume` continues from, and whether it may resume at all.

A checkpoint is trusted only after a validated read of every file (a kill or a full disk while
saving leaves a partial one, and a later stray write can damage any of them): the newest intact one
wins, and the run then reproduces exactly what the damaged one would have given. A resume under a
different config is refused instead of mixing two experiments in one folder, and a finished run is
returned as it is instead of training further.
"""

from __future__ import annotations

import json
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.numpy import load_file

from aflab.config import TrainConfig
from aflab.errors import UserError

CHECKPOINT_FILES = ("trainer_state.json", "model.safetensors", "optimizer.pt", "scheduler.pt")


def checkpoint_problem(folder: Path) -> str | None:
    """What is wrong with a checkpoint folder (naming the file), or None when every file reads back."""
    for name in CHECKPOINT_FILES:
        if not (folder / name).is_file():
            return f"{folder / name}: missing"
    try:
        state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
        if not isinstance(state, dict) or not isinstance(state.get("global_step"), int):
            return f"{folder / 'trainer_state.json'}: no global_step"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return f"{folder / 'trainer_state.json'}: damaged ({type(e).__name__})"
    try:
        load_file(str(folder / "model.safetensors"))  # reads the header and every tensor
    except (OSError, SafetensorError) as e:
        return f"{folder / 'model.safetensors'}: damaged ({e})"
    for pt in sorted(folder.glob("*.pt")) + sorted(folder.glob("*.pth")):
        try:  # torch.save writes a zip with a CRC per member: check them without unpickling anything
            with zipfile.ZipFile(pt) as z:
                if (bad := z.testzip()) is not None:
                    return f"{pt}: damaged (member {bad})"
        except (OSError, zipfile.BadZipFile) as e:
            return f"{pt}: damaged ({e})"
    return None


def select_checkpoint(folder: Path, before_step: int) -> Path | None:
    """The newest intact checkpoint below `before_step`, warning about each newer one skipped.

    The trainer always takes one more step after resuming, so a checkpoint at the final step is
    never resumed from: the one before it reproduces the same run.
    """
    found = sorted(
        ((int(m.group(1)), d) for d in folder.glob("checkpoint-*") if (m := re.fullmatch(r"checkpoint-(\d+)", d.name))),
        reverse=True,
    )
    for step, d in found:
        if step >= before_step:
            continue
        if (problem := checkpoint_problem(d)) is None:
            return d
        print(f"warning: skipping checkpoint {d.name}: {problem}", file=sys.stderr)
    return None


def config_differences(old: Any, new: Any, path: str = "") -> list[str]:
    """Key paths at which two JSON-like values differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            d
            for k in sorted(old.keys() | new.keys(), key=str)
            for d in config_differences(old.get(k), new.get(k), f"{path}.{k}" if path else str(k))
        ]
    return [] if old == new else [path or "(top level)"]


def finished_metrics(cfg: TrainConfig, out: Path) -> dict[str, Any] | None:
    """Check that `out` may be resumed under `cfg`; returns the metrics if the run already finished.

    Raises a UserError naming what differs when `out` holds a run with another config.
    """
    saved_path = out / "config.json"
    if not saved_path.exists():
        return None
    try:
        saved = json.loads(saved_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UserError(f"{saved_path}: damaged; cannot tell which config this run used") from None
    if diff := config_differences(saved, cfg.model_dump(mode="json")):
        shown = ", ".join(diff[:5]) + (f" and {len(diff) - 5} more" if len(diff) > 5 else "")
        raise UserError(
            f"{saved_path}: --resume with a different config ({shown} differ); "
            "rerun with the original config or train into another --out"
        )
    try:
        metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
        last = (out / "steps.jsonl").read_text(encoding="utf-8").strip().rsplit("\n", 1)[-1]
        done = isinstance(metrics, dict) and json.loads(last).get("final_eval") is True
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # not finished (or its final files are damaged): train and evaluate again
    if done:
        print(f"{out}: this run already finished; nothing to resume", file=sys.stderr)
    return metrics if done else None
