"""`aflab run`: the whole main job, stage by stage, with a manifest of what produced what."""

from __future__ import annotations

import hashlib
import platform
import re
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console

import aflab
from aflab.config import RunConfig
from aflab.evaluation.aggregate import aggregate
from aflab.io import folder_lock, write_json
from aflab.mitigations import reward_monitors
from aflab.pipeline.executors import Executor, LocalExecutor
from aflab.pipeline.known_answers import known_answers
from aflab.pipeline.organisms import instance_name, organism_kwargs, organism_task
from aflab.pipeline.parallel import Task
from aflab.pipeline.sweep import baseline_audit, sweep_tasks, warm_monitors
from aflab.reporting.report import write_report

PACKAGES = ("torch", "transformers", "trl", "peft", "accelerate", "tokenizers", "scikit-learn", "numpy")


def run_all(
    cfg: RunConfig, run_dir: Path, config_path: Path | None = None, executor: Executor | None = None
) -> dict[str, Any]:
    """Run (or resume) the whole job in `run_dir`, its tasks on `executor` (default: the local process
    pool); a second process on the same folder is refused."""
    with folder_lock(run_dir):
        return _run_all(cfg, run_dir, config_path, executor or LocalExecutor(cfg.workers))


def _run_all(cfg: RunConfig, run_dir: Path, config_path: Path | None, executor: Executor) -> dict[str, Any]:
    console = Console(stderr=True)
    t0 = time.perf_counter()
    write_json(run_dir / "config.json", cfg.model_dump(mode="json"))
    tasks = organism_tasks(cfg, run_dir)
    sweep: list[Task] = []
    if cfg.sweep is not None:
        names = sorted({*cfg.sweep.audit_monitors, *(m for mit in cfg.sweep.mitigations for m in reward_monitors(mit))})
        tasks.insert(1, Task("monitors", warm_monitors, {"names": names}, kind="monitors"))
        sweep = sweep_tasks(cfg, run_dir, after=("monitors",))
        # Ready tasks start in list order: within a seed, the arms with the most RL steps first, so that
        # the run ends on short tasks, not on the last organism's 15-step positive control beside an idle
        # worker. Results do not depend on the order: every task is seeded on its own, on one thread.
        tasks += sorted(sweep, key=lambda t: (t.kwargs["seed"], -t.kwargs["rl"]["steps"]))
    title = "Organisms (data -> SFT -> baseline)" + (" and the RL sweep (x mitigations x seeds)" if cfg.sweep else "")
    results = dict(zip([t.name for t in tasks], executor.run(tasks, console, title=title), strict=True))
    organisms = [results[instance_name(o.name, k)] for o in cfg.organisms for k in range(cfg.organism_seeds)]
    timings = {
        "tasks_wall": round(time.perf_counter() - t0, 2),
        **{f"{o['name']}.{k}": v for o in organisms for k, v in o["timings"].items()},
    }
    summary: dict[str, Any] = {
        "name": cfg.name,
        "seed": cfg.seed,
        "organisms": {o["name"]: {"metrics": o["metrics"], "model": o["info"]} for o in organisms},
    }
    if cfg.sweep is not None:
        sweep_results = [results[t.name] for t in sweep]  # the config's order
        cells = [r["seconds"] for r in sweep_results if r["seconds"]]  # built here, not reused
        timings.update(
            {
                "monitors": results["monitors"],
                "sweep.runs": len(cells),
                "sweep.run_s_sum": round(float(sum(cells)), 2),
                "sweep.run_s_max": max(cells, default=0.0),
            }
        )
        summary["sweep"] = aggregate(cfg, sweep_results, baseline_audit(cfg, run_dir))
        if cfg.known_answers:
            t_known = time.perf_counter()
            summary["known_answers"] = known_answers(cfg, run_dir, summary["sweep"])
            timings["known_answers"] = round(time.perf_counter() - t_known, 2)
    t_rep = time.perf_counter()
    write_report(run_dir, summary)
    timings["report"] = round(time.perf_counter() - t_rep, 2)
    summary["wall_s"] = round(time.perf_counter() - t0, 2)
    write_json(run_dir / "summary.json", summary)
    write_json(run_dir / "manifest.json", manifest(cfg, config_path, timings, summary["wall_s"]))
    return summary


def organism_tasks(cfg: RunConfig, run_dir: Path) -> list[Task]:
    """One task per organism replica (data, SFT, baseline): the biggest first, an organism built from
    a teacher after that teacher's replica."""
    by_name = {o.name: o for o in cfg.organisms}
    return [
        Task(
            instance_name(o.name, k),
            organism_task,
            organism_kwargs(
                run_dir, o, cfg.seed, cfg.sampling, cfg.evaluation, by_name[o.teacher] if o.teacher else None, k
            ),
            after=(instance_name(o.teacher, k),) if o.teacher else (),
            kind="sft",
        )
        for o in sorted(cfg.organisms, key=lambda o: (o.teacher is not None, -o.data.n_examples * o.sft.epochs))
        for k in range(cfg.organism_seeds)
    ]


def manifest(cfg: RunConfig, config_path: Path | None, timings: dict[str, float], wall: float) -> dict[str, Any]:
    import torch

    root = checkout()
    return {
        "aflab": aflab.__version__,
        "config_path": str(config_path) if config_path else None,
        "config": cfg.model_dump(mode="json"),
        "seed": cfg.seed,
        "git_commit": _git_commit(root),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {p: _version(p) for p in PACKAGES},
        "lock": lock_record(root, "cuda.txt" if torch.version.cuda else "cpu.txt"),
        "timings_s": timings,
        "wall_s": wall,
    }


def checkout() -> Path | None:
    """The source checkout aflab is imported from (an editable install, or the repository itself): the
    folder above the package whose pyproject.toml names aflab. None for an installed copy, which has
    no lock files and whose enclosing folders (a virtualenv inside some repository) say nothing
    about the code that runs."""
    root = Path(aflab.__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and re.search(r'^name = "aflab"$', pyproject.read_text(encoding="utf-8"), re.M):
        return root
    return None


def lock_record(root: Path | None, name: str) -> dict[str, Any] | None:
    """The lock this install should match (locks/cpu.txt, or cuda.txt under a CUDA torch), its sha256,
    and every locked package whose installed version differs, so a manifest shows an unlocked run.
    None when aflab is not run from a checkout (no lock files ship with an installed copy)."""
    lock = root / "locks" / name if root is not None else None
    if lock is None or not lock.is_file():
        return None
    raw = lock.read_bytes()
    text = raw.decode()
    pins = dict(re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", text, re.M))
    differ = {
        name: {"locked": version, "installed": installed}
        for name, version in sorted(pins.items())
        if (installed := _version(name)) != version
    }
    return {
        "path": f"locks/{lock.name}",
        "sha256": hashlib.sha256(raw).hexdigest(),
        "differs": differ,
    }


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def _git_commit(root: Path | None) -> str | None:
    if root is None:
        return None
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=root)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
