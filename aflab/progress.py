"""Progress reporting for long tasks, below every stage that reports (training, organisms, sweep).

Training reports progress but must not depend on the pipeline that schedules it, so the reporter
lives here and `pipeline/parallel.py` supplies its sink.
"""

from __future__ import annotations

from typing import Any


class Reporter:
    """What a task uses to show progress: one line per task, updated from any process."""

    def __init__(self, sink: Any, name: str):
        self.sink, self.name = sink, name
        self.desc, self.done, self.total = "", 0, 1

    def stage(self, desc: str, total: int = 1) -> None:
        self.desc, self.done, self.total = desc, 0, max(1, total)
        self._send()

    def advance(self, n: int = 1) -> None:
        self.done = min(self.total, self.done + n)
        self._send()

    def set(self, done: int, total: int | None = None) -> None:
        self.done, self.total = done, max(1, total or self.total)
        self._send()

    def _send(self) -> None:
        self.sink.put((self.name, self.desc, self.done, self.total))
