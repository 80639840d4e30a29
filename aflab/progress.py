"""Progress reporting for long tasks, below every stage that reports (training, organisms, sweep).

Training reports progress but must not depend on the pipeline that schedules it, so the reporter
lives here and `pipeline/parallel.py` supplies its sink. `TaskBoard` is what the sink feeds: the
live display of the tasks that are running, sized to fit the terminal (docs/PROGRESS.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from rich.console import Console, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TaskID, TextColumn
from rich.progress import Task as ProgressTask
from rich.table import Column
from rich.text import Text


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


def clock(seconds: float | None) -> str:
    """H:MM:SS, as rich shows elapsed time."""
    return str(timedelta(seconds=max(0, int(seconds or 0))))


class _Elapsed(ProgressColumn):
    """Time since the task started. rich's TimeElapsedColumn stops the clock for good once any stage
    reaches its total, but a task here runs several stages, each starting again from 0."""

    def render(self, task: ProgressTask) -> Text:
        return Text(clock(task.elapsed), style="progress.elapsed")


class TaskBoard(Progress):
    """The live display of a batch of tasks: one row per running task and a summary line.

    A row is added when its task starts and removed when it ends, with a "done: NAME (H:MM:SS)"
    line printed above the live area, so the live area never holds more than the running tasks and
    the scrollback keeps every finished one. The columns share the width by ratio (names and stages
    cut with an ellipsis) around fixed-width counts and time, so they fit 80 columns; rows beyond
    the terminal's height are counted in the summary instead of shown. On a console that is not a
    terminal (CI logs, pipes) rich draws the live area only once, at the end, so such output is
    the title, the "done:" lines and one final summary.
    """

    def __init__(self, n_tasks: int, console: Console):
        self.n_tasks, self.n_done = n_tasks, 0  # before Progress.__init__, which renders once
        self.rows: dict[str, TaskID] = {}
        self.screen = console  # what `console` returns, usable before Progress.__init__ has set it
        super().__init__(
            TextColumn("[bold]{task.fields[name]}", table_column=Column(ratio=4, no_wrap=True, overflow="ellipsis")),
            TextColumn("{task.description}", table_column=Column(ratio=3, no_wrap=True, overflow="ellipsis")),
            BarColumn(bar_width=None, table_column=Column(ratio=1, min_width=4)),
            MofNCompleteColumn(table_column=Column(width=9, justify="right", no_wrap=True)),
            _Elapsed(table_column=Column(width=8, justify="right", no_wrap=True)),
            console=console,
            expand=True,
            disable=n_tasks == 0,
        )

    def begin(self, name: str) -> None:
        """A task began running: its row appears and its clock starts."""
        self.rows[name] = self.add_task("starting", total=1, name=name)

    def report(self, name: str, desc: str, done: int, total: int) -> None:
        """A Reporter's message; ignored for a task that is not running (a late message)."""
        if name in self.rows:
            self.update(self.rows[name], description=desc, completed=done, total=total)

    def end(self, name: str) -> None:
        """A task ended: its row leaves the live area and one line records it above."""
        row = self.rows.pop(name)
        elapsed = next(t.elapsed for t in self.tasks if t.id == row)
        self.remove_task(row)
        self.n_done += 1
        self.console.print(Text.assemble(("done", "green"), f": {name} ({clock(elapsed)})"))  # names are not markup

    def get_renderables(self) -> Iterable[RenderableType]:
        """The running rows that fit the terminal (one line kept for the summary, two for context)."""
        running = self.tasks
        shown = running[: max(1, self.screen.height - 3)]
        if shown:
            yield self.make_tasks_table(shown)
        waiting = self.n_tasks - self.n_done - len(running)
        summary = f"{self.n_done}/{self.n_tasks} done, {len(running)} running, {waiting} waiting"
        if len(shown) < len(running):
            summary += f" ({len(running) - len(shown)} not shown)"
        yield Text(summary, style="dim", no_wrap=True, overflow="ellipsis")
