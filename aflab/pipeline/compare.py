"""Two runs' summary.json, number for number: `python -m aflab.pipeline.compare A/summary.json B/summary.json`.

Executors, worker counts and run folders must not change a result; this says where two summaries
differ, ignoring only what is about the run and not its results (wall times, folders).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

IGNORED = frozenset({"wall_s", "timings_s", "folder"})  # time taken and where: not results


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Key paths where `a` and `b` differ (exactly: same numbers, not close ones), `IGNORED` keys aside."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted((set(a) | set(b)) - IGNORED, key=str)
        return [d for k in keys for d in differences(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b and type(a) is type(b) else [f"{path or '.'}: {a!r} != {b!r}"[:300]]


def main(argv: list[str]) -> int:
    one, two = (json.loads(Path(p).read_text(encoding="utf-8")) for p in argv)
    diffs = differences(one, two)
    print("\n".join(diffs) or f"identical (ignoring {', '.join(sorted(IGNORED))})")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
