"""The live task display (aflab/progress.py TaskBoard) fits an 80x24 terminal with every column
readable, keeps finished tasks in the scrollback, and stays quiet when the output is not a terminal."""

from __future__ import annotations

import io
import re

from rich.console import Console

from aflab.pipeline.parallel import Task, run_tasks
from aflab.progress import Reporter, TaskBoard

CLOCK = re.compile(r"\d:\d\d:\d\d$")
STAGES = ["SFT", "interrogate + mediation", "RL process_supervision_with_a_long_monitor_name", "final eval"]


def _terminal(width: int = 80, height: int = 24) -> Console:
    return Console(width=width, height=height, force_terminal=True, record=True, file=io.StringIO())


def _busy_board(console: Console, n_tasks: int, running: int) -> tuple[TaskBoard, list[str]]:
    """A board with `running` tasks under way for 1 h 2 min 5 s, names up to ~70 characters long."""
    board = TaskBoard(n_tasks, console)
    now = [1000.0]
    board.get_time = lambda: now[0]  # rich's task clocks read this
    names = [f"organism_with_a_long_name_{i}.{i % 3}/process_supervision_keyword/s{i}" for i in range(running)]
    for i, name in enumerate(names):
        board.begin(name)
        board.report(name, STAGES[i % len(STAGES)], i, 1200 if i % 2 else 12)
    now[0] += 3725
    return board, names


def _screen(console: Console, board: TaskBoard) -> list[str]:
    console.print(board)
    return console.export_text().splitlines()


def test_many_long_tasks_fit_80x24_with_the_elapsed_time_intact():
    console = _terminal()
    board, names = _busy_board(console, n_tasks=60, running=40)
    lines = _screen(console, board)
    assert len(lines) <= 24
    assert max(len(line) for line in lines) <= 80
    rows, summary = lines[:-1], lines[-1]
    assert len(rows) >= 15  # the screen is used, not left empty
    for row in rows:
        assert CLOCK.search(row) and row.endswith("1:02:05"), row  # never cut to "1:02…"
        assert re.search(r"\d+/\d+ +1:02:05$", row), row  # the M/N column is whole too
    assert rows[0].startswith(names[0][:20]) and "…" in rows[0]  # long names are cut with an ellipsis
    assert summary == f"0/60 done, 40 running, 20 waiting ({40 - len(rows)} not shown)"


def test_a_wider_terminal_shows_the_whole_name_and_a_short_one_fewer_rows():
    wide = _terminal(width=160, height=24)
    board, names = _busy_board(wide, n_tasks=3, running=3)
    lines = _screen(wide, board)
    assert [line.split()[0] for line in lines[:-1]] == names and lines[-1] == "0/3 done, 3 running, 0 waiting"
    short = _terminal(height=8)
    lines = _screen(short, _busy_board(short, n_tasks=10, running=10)[0])
    assert len(lines) <= 8 and lines[-1].endswith("(5 not shown)")


def test_a_finished_task_leaves_the_live_area_for_one_line_above_it():
    console = _terminal()
    board, names = _busy_board(console, n_tasks=5, running=3)
    board.end(names[1])
    board.report(names[1], "late message", 1, 1)  # a message after the end is dropped, not a KeyError
    lines = _screen(console, board)
    assert lines[0] == f"done: {names[1]} (1:02:05)"
    assert [line[:20] for line in lines[1:3]] == [names[0][:20], names[2][:20]]
    assert lines[3] == "1/5 done, 2 running, 2 waiting"


def _stages(reporter: Reporter, n: int) -> int:
    for stage in ("data", "SFT"):
        reporter.stage(stage, 3)
        reporter.advance(3)
    return n


def test_run_tasks_in_a_pipe_prints_the_title_one_line_per_task_and_one_summary():
    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=False)
    tasks = [Task(f"task{i}", _stages, {"n": i}) for i in range(4)]
    assert run_tasks(tasks, workers=1, console=console, title="Demo") == [0, 1, 2, 3]
    lines = out.getvalue().splitlines()
    assert "\x1b" not in out.getvalue()  # no cursor movement or colour in a log
    assert lines[0] == "Demo" and lines[-1] == "4/4 done, 0 running, 0 waiting"
    done = [re.sub(r"\(\d:\d\d:\d\d\)", "(T)", line) for line in lines[1:-1]]
    assert done == [f"done: task{i} (T)" for i in range(4)]
