"""Wall time and peak memory of the README's main job (`aflab run`) from an empty run folder.

Peak RSS is the largest single process (the main process or a worker), as the OS reports it for
finished children. Goals: <= 10 min, <= 4 GiB.

    python benchmarks/quickstart.py [OUT_DIR]
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
from _common import machine


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/bench_quickstart")
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "aflab.cli", "run", "--out", str(out)], check=True)
    wall = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    timings = json.loads((out / "manifest.json").read_text())["timings_s"]
    print(f"machine: {machine()}")
    print("stage timings (s):", json.dumps(timings))
    print(f"peak RSS (largest process): {peak_kib / 2**20:.2f} GiB")
    print(f"quickstart wall: {wall / 60:.2f} min")


if __name__ == "__main__":
    main()
