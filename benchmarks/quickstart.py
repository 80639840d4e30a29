"""Wall time and peak memory of the README's main job (`aflab run`) from an empty run folder.

Peak RSS is the largest single process (the main process or a worker), as the OS reports it for
finished children. Goals: <= 10 min, <= 4 GiB.

    python benchmarks/quickstart.py [OUT_DIR]
    python benchmarks/quickstart.py --from RUN_DIR   # record a finished run (e.g. a fresh clone's) from its
                                                    # manifest; peak RSS is then not measured
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
from _common import machine, record


def main() -> None:
    if sys.argv[1:2] == ["--from"]:
        out = Path(sys.argv[2])
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
    print(f"machine: {machine()}")
    print("stage timings (s):", json.dumps(timings))
    print(f"peak RSS (largest process): {peak}")
    print(f"quickstart wall: {wall / 60:.2f} min")
    record(
        "quickstart",
        "Quickstart (`aflab run`, from an empty run folder and monitor cache)",
        headline=[
            {
                "benchmark": "quickstart wall time",
                "goal": "<= 10 min",
                "measured": f"{wall / 60:.2f} min",
                "verdict": "met" if wall <= 600 else "missed",
            },
            {
                "benchmark": "quickstart peak RSS, largest process",
                "goal": "<= 4 GiB",
                "measured": peak,
                "verdict": "—" if peak_kib is None else ("met" if peak_kib <= 4 * 2**20 else "missed"),
            },
        ],
        tables=[
            {
                "caption": "Per-stage seconds from `manifest.json` (`timings_s`).",
                "header": ["stage", "seconds"],
                "rows": [[k, f"{v:.1f}"] for k, v in timings.items()],
            }
        ],
        figures={
            "wall_s": round(wall, 1),
            "peak_rss_gib": None if peak_kib is None else round(peak_kib / 2**20, 3),
            "timings_s": timings,
        },
    )


if __name__ == "__main__":
    main()
