"""Wall time of the README's test command (what CI runs) on a fresh clone, installation included, and
its slowest tests. Goal: <= 10 min, so that every CI run and every developer's full run stays short.

    python benchmarks/test_suite.py             # a fresh clone of HEAD
    python benchmarks/test_suite.py --rev REV   # ... of another commit, with the test command of its README
                                                # (the before/after pair is two runs on the same host)

The command is the README's second set-up command, verbatim, split at the test runner so that install
and tests are timed apart; pytest's `--durations` report gives the slowest tests (added when the
command does not ask for it).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import clone_at, record


def test_command(readme: str) -> str:
    """The README's second set-up command (the one that runs pytest), verbatim."""
    return next(line for line in readme.splitlines() if line.startswith("python3 -m venv") and "pytest" in line)


def fresh_clone(rev: str) -> tuple[str, float, float, str]:
    """(commit, install seconds, test seconds, pytest's output) of the README's test command in a fresh
    clone of `rev`, with nothing inherited from this shell's virtual environment."""
    checkout, commit = clone_at(rev, "aflab-tests-")
    command = test_command((checkout / "README.md").read_text(encoding="utf-8"))
    install, tests = command.split(" && python -m pytest", 1)
    tests = ". .venv/bin/activate && python -m pytest" + tests
    if "--durations" not in tests:
        tests += " --durations=10"
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    t0 = time.perf_counter()
    subprocess.run(["bash", "-c", install], cwd=checkout, env=env, check=True)
    t1 = time.perf_counter()
    done = subprocess.run(["bash", "-c", tests], cwd=checkout, env=env, capture_output=True, text=True)
    t2 = time.perf_counter()
    if done.returncode != 0:
        log = checkout.parent / "pytest.log"
        log.write_text(done.stdout + done.stderr, encoding="utf-8")
        sys.exit(f"the test command failed in {checkout} (whole output: {log}):\n{done.stdout[-3000:]}")
    return commit, t1 - t0, t2 - t1, done.stdout


def slowest(output: str, n: int = 10) -> list[list[str]]:
    """The first `n` rows of pytest's durations report: [seconds, phase, test]."""
    rows = re.findall(r"^([\d.]+)s (call|setup|teardown)\s+(\S+)", output, re.M)
    return [[f"{float(s):.1f}", phase, test] for s, phase, test in rows[:n]]


def main() -> None:
    rev = sys.argv[sys.argv.index("--rev") + 1] if "--rev" in sys.argv else "HEAD"
    commit, install_s, tests_s, output = fresh_clone(rev)
    summary = re.findall(r"^=*\s*(\d+ passed.*?) in [\d.]+s", output, re.M)
    total = install_s + tests_s
    print(output[-2500:])
    print(f"README's test command, fresh clone of {commit}: install {install_s:.0f} s + tests {tests_s:.0f} s")
    print(f"total: {total:.0f} s ({total / 60:.2f} min)")
    name = "test_suite" if rev == "HEAD" else "test_suite_before"
    record(
        name,
        "README's test command on a fresh clone" + ("" if rev == "HEAD" else f", before ({commit})"),
        headline=[
            {
                "benchmark": f"README's test command on a fresh clone of {commit}, installation included",
                "goal": "<= 10 min",
                "measured": f"{total:.0f} s (install {install_s:.0f} s, tests {tests_s:.0f} s)",
                "verdict": "met" if total <= 600 else "missed",
            }
        ],
        tables=[
            {
                "caption": f"The slowest tests (pytest --durations); {summary[-1] if summary else 'no summary line'}.",
                "header": ["seconds", "phase", "test"],
                "rows": slowest(output),
            }
        ],
        figures={"commit": commit, "install_s": round(install_s, 1), "tests_s": round(tests_s, 1)},
    )


if __name__ == "__main__":
    main()
