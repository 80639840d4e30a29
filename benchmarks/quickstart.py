"""Wall time and peak memory of the README's main job (`aflab run`) from an empty run folder.

Peak RSS is the largest single process (the main process or a worker), as the OS reports it for
finished children. Goals: <= 10 min, <= 4 GiB.

    python benchmarks/quickstart.py [OUT_DIR]
    python benchmarks/quickstart.py --from RUN_DIR   # record a finished run (e.g. a fresh clone's) from its
                                                    # manifest; peak RSS is then not measured
    python benchmarks/quickstart.py --fresh-clone    # the acceptance figure: clone HEAD into a temporary
                                                    # folder and run the README's first command there,
                                                    # timing the install and `aflab run` apart
    python benchmarks/quickstart.py --fresh-clone --rev REV   # the same for another commit, recorded as
                                                    # the "before" (quickstart_before.json); a HEAD
                                                    # run then states its ratio to it (run both on
                                                    # the same host, one after the other)
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, clone_at, machine, record
from sft_mfu import matmul_peak


def readme_command(readme: str) -> str:
    """The README's first set-up command (the one that ends in `aflab run`), verbatim."""
    return next(
        line for line in readme.splitlines() if line.startswith("python3 -m venv") and line.endswith("aflab run")
    )


def fresh_clone(rev: str) -> tuple[Path, float, float, int, str]:
    """(run folder, install seconds, run seconds, peak RSS KiB, commit) of the README's first command
    (that commit's README) in a fresh clone of `rev`, with an empty monitor cache."""
    import os

    checkout, commit = clone_at(rev, "aflab-fresh-")
    command = readme_command((checkout / "README.md").read_text(encoding="utf-8"))
    install, run = command.removesuffix(" && aflab run"), ". .venv/bin/activate && aflab run"
    env = {**os.environ, "AFLAB_CACHE_DIR": str(checkout.parent / "cache")}
    env.pop("VIRTUAL_ENV", None)
    t0 = time.perf_counter()
    subprocess.run(["bash", "-c", install], cwd=checkout, env=env, check=True)
    t1 = time.perf_counter()
    subprocess.run(["bash", "-c", run], cwd=checkout, env=env, check=True)
    t2 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return checkout / "runs" / "quickstart", t1 - t0, t2 - t1, peak, commit


def main() -> None:
    install_s, rev, commit = None, "HEAD", None
    if sys.argv[1:2] == ["--fresh-clone"]:
        rev = sys.argv[sys.argv.index("--rev") + 1] if "--rev" in sys.argv else "HEAD"
        out, install_s, wall, peak_kib, commit = fresh_clone(rev)
    elif sys.argv[1:2] == ["--from"]:
        out = Path(sys.argv[2])
        if sys.argv[3:4] == ["--install-seconds"]:  # a fresh clone's run recorded afterwards
            install_s = float(sys.argv[4])
        manifest = json.loads((out / "manifest.json").read_text())
        wall, peak_kib = manifest["wall_s"], None
    else:
        out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/bench_quickstart")
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "aflab.cli", "run", "--out", str(out)], check=True)
        wall = time.perf_counter() - t0
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    timings = json.loads((out / "manifest.json").read_text())["timings_s"]
    peak = "not measured (--from)" if peak_kib is None else f"{peak_kib / 2**20:.2f} GiB"
    # The host's speed varies from day to day: the same process's fp32 matmul peak, taken after the
    # run, says which kind of day this figure comes from (compare benchmarks/sft_mfu.py's peak).
    peak_flops = matmul_peak()
    print(f"machine: {machine()}; fp32 matmul peak, 1 thread, after the run: {peak_flops / 1e9:.1f} GFLOP/s")
    print("stage timings (s):", json.dumps(timings))
    print(f"peak RSS (largest process): {peak}")
    print(f"quickstart wall: {wall / 60:.2f} min")
    before = rev != "HEAD"
    tag = f" (before: {commit})" if before else ""
    headline = []
    if install_s is not None:
        total = install_s + wall
        print(
            f"README's first command, fresh clone{tag}: install {install_s:.0f} s + run {wall:.0f} s = "
            f"{total / 60:.2f} min"
        )
        headline.append(
            {
                "benchmark": f"README's first command on a fresh clone, installation included{tag}",
                "goal": "measured",
                "measured": f"{total / 60:.2f} min (install {install_s:.0f} s, `aflab run` {wall:.0f} s)",
                "verdict": "—",
            }
        )
        then = RESULTS / "quickstart_before.json"
        if not before and then.exists() and (old := json.loads(then.read_text()))["figures"].get("install_s"):
            old_total = old["figures"]["install_s"] + old["figures"]["wall_s"]
            ratio = total / old_total
            print(f"ratio to the before run ({old['figures'].get('commit')}, {old['measured']}): {ratio:.2f}x")
            headline.append(
                {
                    "benchmark": f"fresh clone, this commit / before ({old['figures'].get('commit')}, same host, "
                    f"measured {old['measured']})",
                    "goal": "<= 2.0x",
                    "measured": f"{ratio:.2f}x ({total:.0f} s / {old_total:.0f} s)",
                    "verdict": "met" if ratio <= 2.0 else "missed",
                }
            )
    record(
        "quickstart_before" if before else "quickstart",
        f"Quickstart before this round ({commit}, `aflab run` from an empty run folder and monitor cache)"
        if before
        else "Quickstart (`aflab run`, from an empty run folder and monitor cache)",
        headline=[
            *headline,
            {
                "benchmark": f"quickstart wall time{tag}",
                "goal": "measured",
                "measured": f"{wall / 60:.2f} min",
                "verdict": "—",
            },
            {
                "benchmark": f"quickstart peak RSS, largest process{tag}",
                "goal": "<= 4 GiB",
                "measured": peak,
                "verdict": "—" if peak_kib is None else ("met" if peak_kib <= 4 * 2**20 else "missed"),
            },
        ],
        tables=[
            {
                "caption": "Per-stage seconds from `manifest.json` (`timings_s`); the host's fp32 matmul peak (1 "
                f"thread) measured right after the run: {peak_flops / 1e9:.1f} GFLOP/s.",
                "header": ["stage", "seconds"],
                "rows": [[k, f"{v:.1f}"] for k, v in timings.items()],
            }
        ],
        figures={
            "commit": commit,
            "wall_s": round(wall, 1),
            "install_s": None if install_s is None else round(install_s, 1),
            "matmul_peak_gflops": round(peak_flops / 1e9, 1),
            "peak_rss_gib": None if peak_kib is None else round(peak_kib / 2**20, 3),
            "timings_s": timings,
        },
    )


if __name__ == "__main__":
    main()
