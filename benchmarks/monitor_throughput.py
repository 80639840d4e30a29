"""Learned-monitor throughput on CPU (short generator text, and ~300-word long-form scratchpads for
the scratchpad monitors an auditor would run on real reasoning), and the judge's on-disk cache hit
rate on a rerun.

The judge runs against an in-process stand-in backend (no network, no model) that counts calls,
so the figure is the cache's, not a server's.

    python benchmarks/monitor_throughput.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, record

from aflab.monitors import get_monitor
from aflab.monitors.corpus import monitor_corpus
from aflab.monitors.judge.backends import Backend, Completion
from aflab.monitors.longform.composer import corpus

N = 5000


class CountingBackend(Backend):
    kind, model = "bench", "bench-model"

    def __init__(self) -> None:
        self.calls = self.requests_sent = self.retries = 0

    async def complete(self, messages, *, temperature, max_tokens, seed):
        self.calls += 1
        self.requests_sent += 1
        return Completion(
            text='VERDICT: {"c1": true, "c2": true, "c3": false, "c4": false}', input_tokens=10, output_tokens=5
        )


def main() -> None:
    import torch

    torch.set_num_threads(1)
    texts, _, _ = monitor_corpus(N, seed=11, split="test")
    print(f"machine: {machine()}")
    speed = {}
    for name in ("keyword", "learned", "learned_words"):
        mon = get_monitor(name)
        mon.score_texts(texts[:50])
        t0 = time.perf_counter()
        mon.score_texts(texts)
        speed[name] = N / (time.perf_counter() - t0)
        print(f"{name}: {speed[name]:,.0f} records/s")
    long = [i.scratchpad for i in corpus(3000, 21, "val") if 250 <= len(i.scratchpad.split()) <= 350]
    words = sum(len(t.split()) for t in long) / len(long)
    for name in ("keyword", "learned", "learned_words", "criteria"):
        mon = get_monitor(name)
        mon.score_texts(long[:50])
        t0 = time.perf_counter()
        mon.score_texts(long)
        rate = len(long) / (time.perf_counter() - t0)
        speed[f"{name} (long-form)"] = rate
        print(f"{name}: {rate:,.0f} scratchpads/s on {len(long)} long-form scratchpads of {words:.0f} words on average")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["AFLAB_CACHE_DIR"] = cache
        from aflab.monitors.judge import JudgeMonitor

        backend = CountingBackend()
        judge = JudgeMonitor(backend=backend, samples=4, cache_dir=cache)
        judge.score_texts(texts[:200])
        first = backend.calls
        judge.score_texts(texts[:200])
        second = backend.calls - first
        print(f"judge: first pass {first} backend calls for 200 scratchpads x 4 votes; rerun {second} calls")
        print(f"judge cache hit rate on rerun: {1 - second / first:.1%}")
    record(
        "monitor_throughput",
        "Monitor throughput",
        headline=[
            {
                "benchmark": "learned-monitor throughput",
                "goal": ">= 2,000 records/s",
                "measured": ", ".join(f"{v:,.0f} records/s (`{k}`)" for k, v in speed.items()),
                "verdict": "met" if speed["learned"] >= 2000 else "missed",
            },
            {
                "benchmark": "judge cache hit rate on a rerun",
                "goal": "(report)",
                "measured": f"{1 - second / first:.0%} ({first} calls on the first pass, {second} on the rerun)",
                "verdict": "—",
            },
        ],
        tables=[
            {
                "caption": "",
                "header": ["monitor", f"records/s (1 thread, {N:,} generator scratchpads)"],
                "rows": [[k, f"{v:,.0f}"] for k, v in speed.items()],
            }
        ],
        figures={**speed, "judge_first_calls": first, "judge_rerun_calls": second},
    )


if __name__ == "__main__":
    main()
