"""Independent tasks (organisms, seeds x mitigations) in worker processes, with live progress.

Each task runs with one torch thread whatever the number of workers, so a result never depends on
how many processes shared the machine (thread count changes floating-point reduction order).
Workers never outlive the run: an error, Ctrl-C or SIGTERM in the main process terminates them,
and a worker whose parent died (kill -9) exits on its own within a second.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Literal

from rich.console import Console

from aflab.progress import Reporter, TaskBoard


@dataclass
class Task:
    name: str
    fn: Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    after: tuple[str, ...] = ()  # names of tasks that must finish first
    kind: Literal["sft", "monitors", "rl"] = "rl"  # which `resources` entry the ray executor asks for


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


def _exit_with_parent(parent: int) -> None:
    """Pool initializer: a watcher thread ends this worker once its parent process is gone."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Terminate every worker now (a shutdown would wait for running tasks: minutes of training).
    Python 3.14 has pool.terminate_workers(); before that the process table is the only handle."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        proc.terminate()
    for proc in processes:
        proc.join(timeout=5)


def _call(task: Task, sink: Any) -> Any:
    configure_worker()
    return task.fn(reporter=Reporter(sink, task.name), **task.kwargs)


def run_tasks(tasks: Sequence[Task], workers: int, console: Console | None = None, title: str = "") -> list[Any]:
    """Run tasks, each once all tasks named in its `after` are done; results in submission order.

    Ready tasks start in list order, so put the long ones first. A worker's exception is re-raised
    here once the running tasks have finished and written their (cached) outputs; an interrupt
    terminates the workers at once.
    """
    board = TaskBoard(len(tasks), console or Console(stderr=True))

    def drain(q: Any) -> None:
        while True:
            try:
                board.report(*q.get_nowait())
            except queue.Empty:
                return

    results: list[Any] = [None] * len(tasks)
    with board:
        if title:
            board.console.print(f"[bold cyan]{title}")
        if workers <= 1 or len(tasks) <= 1:
            local: queue.Queue[Any] = queue.Queue()
            for i, t in enumerate(tasks):  # list order respects `after` by construction
                board.begin(t.name)
                results[i] = _call(t, _Immediate(local, drain))
                board.end(t.name)
            return results
        ctx = mp.get_context("spawn")
        pool_args = {"max_workers": workers, "mp_context": ctx, "initializer": _exit_with_parent}
        with ctx.Manager() as manager, ProcessPoolExecutor(**pool_args, initargs=(os.getpid(),)) as pool:
            q = manager.Queue()
            done_names: set[str] = set()
            waiting = list(range(len(tasks)))
            running: dict[Future[Any], int] = {}
            try:
                while waiting or running:
                    ready = [i for i in waiting if set(tasks[i].after) <= done_names]
                    for i in ready[: max(0, workers - len(running))]:
                        waiting.remove(i)
                        running[pool.submit(_call, tasks[i], q)] = i
                        board.begin(tasks[i].name)
                    finished, _ = wait(set(running), timeout=0.2, return_when=FIRST_COMPLETED)
                    drain(q)
                    for f in finished:
                        i = running.pop(f)
                        results[i] = f.result()  # re-raises a worker's exception here
                        done_names.add(tasks[i].name)
                        board.end(tasks[i].name)
            except (KeyboardInterrupt, SystemExit):  # Ctrl-C or SIGTERM (cli.py): stop training now
                _stop_workers(pool)
                raise
            drain(q)
    return results


class _Immediate:
    """A queue that refreshes the display on every put (single-process mode)."""

    def __init__(self, q: queue.Queue[Any], drain: Callable[[Any], None]):
        self.q, self.drain = q, drain

    def put(self, item: Any) -> None:
        self.q.put(item)
        self.drain(self.q)
