"""Independent tasks (organisms, seeds x mitigations) in worker processes, with live progress.

Each task runs with one torch thread whatever the number of workers, so a result never depends on
how many processes shared the machine (thread count changes floating-point reduction order).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


@dataclass
class Task:
    name: str
    fn: Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)


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


def configure_worker() -> None:
    import torch
    import transformers

    torch.set_num_threads(1)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    warnings.filterwarnings("ignore")
    import datasets

    datasets.disable_progress_bars()


def _call(task: Task, sink: Any) -> Any:
    configure_worker()
    return task.fn(reporter=Reporter(sink, task.name), **task.kwargs)


def run_tasks(tasks: Sequence[Task], workers: int, console: Console | None = None, title: str = "") -> list[Any]:
    """Run tasks (in order of submission) and return their results in the same order."""
    console = console or Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]{task.fields[name]}"),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=not tasks,
    )
    rows = {t.name: progress.add_task("waiting", total=1, name=t.name) for t in tasks}

    def drain(q: Any) -> None:
        while True:
            try:
                name, desc, done, total = q.get_nowait()
            except queue.Empty:
                return
            progress.update(rows[name], description=desc, completed=done, total=total)

    with progress:
        if title:
            progress.console.print(f"[bold cyan]{title}")
        if workers <= 1 or len(tasks) <= 1:
            local: queue.Queue[Any] = queue.Queue()
            results = []
            for t in tasks:
                results.append(_call(t, _Immediate(local, drain)))
            return results
        ctx = mp.get_context("spawn")
        with ctx.Manager() as manager, ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            q = manager.Queue()
            futures: dict[Future[Any], int] = {pool.submit(_call, t, q): i for i, t in enumerate(tasks)}
            results: list[Any] = [None] * len(tasks)
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                drain(q)
                for f in done:
                    results[futures[f]] = f.result()  # re-raises a worker's exception here
            drain(q)
            return results


class _Immediate:
    """A queue that refreshes the display on every put (single-process mode)."""

    def __init__(self, q: queue.Queue[Any], drain: Callable[[Any], None]):
        self.q, self.drain = q, drain

    def put(self, item: Any) -> None:
        self.q.put(item)
        self.drain(self.q)
