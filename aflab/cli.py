"""The `aflab` command line (CONTRACTS.md, "CLI").

Bad input exits 2 with one readable line naming the file and place; internal errors exit 1.
An unusable output (full disk, read-only folder, a file where a folder should be, a folder another
aflab process is writing to) exits 2 too, naming the path. Ctrl-C exits 130 and SIGTERM 143, after
the worker processes have been stopped. `--debug` shows tracebacks.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from aflab.errors import UserError
from aflab.io import environment_error

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="aflab: train alignment-faking model organisms under RL mitigations and audit them.",
)
monitors_app = typer.Typer(no_args_is_help=True, help="Scratchpad and output monitors.")
app.add_typer(monitors_app, name="monitors")
mitigations_app = typer.Typer(no_args_is_help=True, help="Mitigations: the parts of an RL arm's reward and rollout.")
app.add_typer(mitigations_app, name="mitigations")
configs_app = typer.Typer(no_args_is_help=True, help="The packaged configs, usable by name (`aflab run paper`).")
app.add_typer(configs_app, name="configs")
err = Console(stderr=True)
_DEBUG = {"on": False}
_SIGNAL: dict[str, int | None] = {"number": None}  # set by _on_signal
_WRITING: dict[str, Path | None] = {"under": None}  # the output folder, named when torch & co say "disk full"


@app.callback()
def _main(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False) -> None:
    _DEBUG["on"] = debug


ExecutorOpt = Annotated[
    str, typer.Option("--executor", help="Where tasks run: local (worker processes here) or ray (docs/CLUSTER.md).")
]
AddressOpt = Annotated[
    str | None, typer.Option(help="With --executor ray: the cluster's HOST:PORT; default: a local Ray instance.")
]
TokenOpt = Annotated[
    Path | None,
    typer.Option("--token-file", help="With --executor ray: the cluster's auth token (else $RAY_AUTH_TOKEN)."),
]
CacheOpt = Annotated[
    Path | None,
    typer.Option(help="Cache folder (monitors, judge answers), default the config's cache_dir or $AFLAB_CACHE_DIR."),
]


def _placement(
    cfg: Any, out: Path | None, executor: str, address: str | None, token: Path | None, cache: Path | None
) -> tuple[Any, Path]:
    """The executor and run folder a command asks for. On Ray the run folder is absolute, since the
    workers' working folder is not ours, and it must be one every node sees (docs/CLUSTER.md)."""
    from aflab.pipeline.executors import make_executor

    folder = cache or cfg.cache_dir
    if folder:  # before any worker starts: they inherit it (local) or are sent it (ray)
        os.environ["AFLAB_CACHE_DIR"] = str(Path(folder).expanduser().absolute())
    run = make_executor(executor, cfg.workers, cfg.resources, cfg.max_retries, address, token)
    run_dir = _WRITING["under"] = out or Path("runs") / cfg.name
    return run, run_dir.absolute() if executor == "ray" else run_dir


@app.command()
def run(
    config: Annotated[
        str | None,
        typer.Argument(help="YAML config file, or a packaged config name (aflab configs list); default: quickstart."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder; default runs/<config name>.")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Parallel worker processes.")] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=2**31 - 1,
            help="Top-level seed (overrides the config's): replica k of every organism is built from seed + k.",
        ),
    ] = None,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    token_file: TokenOpt = None,
    cache: CacheOpt = None,
) -> None:
    """The main job: build organisms, evaluate, RL under each mitigation, audit, report."""
    from aflab.config import RunConfig, resolve_config
    from aflab.pipeline.load import load_config
    from aflab.pipeline.run import run_all

    path = resolve_config(config, "quickstart")
    cfg = load_config(path, RunConfig)
    if workers is not None:
        cfg = cfg.model_copy(update={"workers": workers})
    if seed is not None:
        cfg = cfg.model_copy(update={"seed": seed})
    tasks_on, run_dir = _placement(cfg, out, executor, address, token_file, cache)
    summary = run_all(cfg, run_dir, config_path=path, executor=tasks_on)  # locks run_dir: one writer at a time
    err.print(f"[green]done[/green]: {run_dir}/summary.json, report.html, report.md ({summary['wall_s']:.0f} s)")


@app.command("arms-race")
def arms_race(
    config: Annotated[
        str | None, typer.Argument(help="YAML config file, or a packaged config's name; default: arms_race.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder; default runs/<config name>.")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Parallel worker processes.")] = None,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    token_file: TokenOpt = None,
    cache: CacheOpt = None,
) -> None:
    """Rounds of RL against a scratchpad monitor retrained each round on what evaded it."""
    from aflab.config import resolve_config
    from aflab.pipeline.arms_race import ArmsRaceConfig, run_arms_race
    from aflab.pipeline.load import load_config

    path = resolve_config(config, "arms_race")
    cfg = load_config(path, ArmsRaceConfig)
    if workers is not None:
        cfg = cfg.model_copy(update={"workers": workers})
    tasks_on, run_dir = _placement(cfg, out, executor, address, token_file, cache)
    result = run_arms_race(cfg, run_dir, executor=tasks_on)  # locks run_dir: one writer at a time
    err.print(f"[green]done[/green]: {run_dir}/arms_race.json, report.md ({result['wall_s']:.0f} s)")


@app.command()
def evaluate(
    transcripts: Annotated[Path, typer.Option(help="Transcript JSONL (CONTRACTS.md format).")],
    out: Annotated[Path, typer.Option(help="Folder for metrics.json.")],
    monitor: Annotated[list[str] | None, typer.Option(help="AF monitor(s) for the AF rate.")] = None,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
) -> None:
    """Behaviour and reasoning metrics of a transcript file -> DIR/metrics.json."""
    from aflab.evaluation.metrics import evaluate as run_eval
    from aflab.io import output_folder, write_json
    from aflab.records import load_transcripts

    output_folder(out)
    records = load_transcripts(transcripts)
    metrics = run_eval(records, monitor or ["keyword"], seed=seed)
    write_json(out / "metrics.json", metrics)
    typer.echo(json.dumps({k: metrics[k] for k in ("n", "compliance", "compliance_gap", "af_rate")}, indent=2))


@app.command()
def classify(
    monitor: Annotated[str, typer.Option(help="Monitor name (see `aflab monitors list`).")],
    input: Annotated[Path, typer.Option("--input", help="Transcript JSONL.")],
    output: Annotated[Path, typer.Option("--output", help="Scores JSONL, one line per input record.")],
) -> None:
    """Score every record with one monitor."""
    from aflab.io import output_file, write_jsonl
    from aflab.monitors import get_monitor
    from aflab.records import load_transcripts

    output_file(output)
    mon = get_monitor(monitor)
    records = load_transcripts(input)
    scores, details = mon.score_with_details(records)
    write_jsonl(
        output,
        (
            {"id": r.id, "monitor": mon.name, "score": float(s), "flag": bool(s >= mon.threshold), **extra}
            for r, s, extra in zip(records, scores, details, strict=True)
        ),
    )
    err.print(
        f"{len(records)} records scored with {mon.name} -> {output} ({int((scores >= mon.threshold).sum())} flagged)"
    )


@app.command()
def train(
    config: Annotated[
        str,
        typer.Argument(
            help="YAML TrainConfig (organism + mitigation + seed + RL settings), or a packaged name (train_example)."
        ),
    ],
    out: Annotated[Path | None, typer.Option(help="Run folder; default runs/train/<name>.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the last complete checkpoint.")] = False,
) -> None:
    """One RL run (organism + mitigation + seed): checkpoints, steps.jsonl, metrics.json."""
    from aflab.config import TrainConfig, resolve_config
    from aflab.io import folder_lock
    from aflab.pipeline.load import load_config
    from aflab.pipeline.parallel import Task, configure_worker, run_tasks
    from aflab.training.grpo import train_task

    cfg = load_config(resolve_config(config, "train_example"), TrainConfig)
    run_dir = _WRITING["under"] = out or Path("runs") / "train" / cfg.name
    configure_worker()
    task = Task(cfg.name, train_task, {"config": cfg.model_dump(mode="json"), "out": str(run_dir), "resume": resume})
    # A second train into the same folder is refused, not mixed in. Under `accelerate launch` the
    # ranks of one launch are one run: rank 0 alone writes, so rank 0 alone holds the lock.
    rank0 = os.environ.get("RANK", "0") == "0"
    with folder_lock(run_dir) if rank0 else contextlib.nullcontext():
        [metrics] = run_tasks([task], workers=1)
    err.print(f"[green]done[/green]: {run_dir}/metrics.json")
    typer.echo(json.dumps({k: metrics[k] for k in ("n", "compliance", "compliance_gap", "af_rate")}, indent=2))


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run folder holding summary.json (from `aflab run`).")],
    readme: Annotated[
        bool,
        typer.Option("--readme", help="Print the README's results section (a headline table, markdown) instead."),
    ] = False,
    into: Annotated[
        Path | None,
        typer.Option(help="With --readme: write the section between the results markers of this file, in place."),
    ] = None,
    results_page: Annotated[
        Path | None,
        typer.Option(
            "--results-page",
            help="Write the full results page (every table, markdown) to this file instead of the report; "
            "with --readme, the section links to it (default link: RUN_DIR/README.md).",
        ),
    ] = None,
) -> None:
    """Rewrite RUN_DIR/report.md and report.html from summary.json, or, from summary.json alone, the
    README's results section (--readme) and the full results page it links to (--results-page)."""
    from aflab.io import atomic_write_text, read_text
    from aflab.reporting import report as R

    summary = R.load_summary(run_dir)
    if not readme and results_page is None:
        R.write_report(run_dir, summary)
        err.print(f"[green]done[/green]: {run_dir}/report.html, report.md")
        return
    page = results_page if results_page is not None else run_dir / "README.md"
    # the README links the page relative to the README's own folder (the working directory when printing)
    link = Path(os.path.relpath(page, into.parent if into is not None else ".")).as_posix()
    try:
        section = R.readme_section(summary, run_dir.as_posix(), link) if readme else ""
        text = R.results_page(summary, run_dir.as_posix(), page.as_posix()) if results_page is not None else ""
    except KeyError as e:
        path = run_dir / "summary.json"
        raise UserError(f"{path}: key {e.args[0]!r} missing (not written by `aflab run`?)") from None
    if results_page is not None:
        atomic_write_text(results_page, text)
        err.print(f"[green]done[/green]: {results_page} written from {run_dir}/summary.json")
    if not readme:
        return
    if into is None:
        typer.echo(section, nl=False)
    else:
        atomic_write_text(into, R.replace_readme_section(read_text(into), section, str(into)))
        err.print(f"[green]done[/green]: results section of {into} rewritten from {run_dir}/summary.json")


@monitors_app.command("list")
def monitors_list() -> None:
    """The registered monitors, what they read and their thresholds."""
    from rich.table import Table

    from aflab.monitors.base import monitor_class, monitor_names

    table = Table("name", "reads", "threshold", "description")
    for name in monitor_names():
        cls = monitor_class(name)
        table.add_row(name, cls.reads, f"{cls.threshold:.3g}", cls.description)
    Console().print(table)


@mitigations_app.command("list")
def mitigations_list() -> None:
    """The registered mitigations (built-ins and installed plugins): the options each takes, what its
    runs should be audited for, and what its reward does."""
    from rich.markup import escape
    from rich.table import Table

    from aflab.mitigations import MITIGATIONS

    title = escape("an arm names each in `components: [{name: NAME, options: {...}}]`")
    table = Table("name", "from", "options", "audit for", "description", title=title)
    builtins = MITIGATIONS.builtins()
    for name in MITIGATIONS.names():
        cls = MITIGATIONS.get(name)
        origin = "built-in" if cls in builtins else "plugin"
        table.add_row(name, origin, ", ".join(cls.Options.model_fields), ", ".join(cls.audit_for), cls.description)
    Console().print(table)


@configs_app.command("list")
def configs_list() -> None:
    """The packaged configs: the name to give `aflab run` (or `arms-race`, `train`) and what each is for."""
    from rich.markup import escape
    from rich.table import Table

    from aflab.config import config_purpose, packaged_config, packaged_config_names

    table = Table("name", "purpose", title="packaged configs (`aflab configs show NAME` prints one)")
    for name in packaged_config_names():
        table.add_row(name, escape(config_purpose(packaged_config(name))))
    Console().print(table)


@configs_app.command("show")
def configs_show(name: Annotated[str, typer.Argument(help="A packaged config's name (`aflab configs list`).")]) -> None:
    """Print a packaged config's YAML verbatim: `aflab configs show paper > my.yaml`, edit, `aflab run my.yaml`."""
    from aflab.config import packaged_config
    from aflab.io import read_text

    sys.stdout.write(read_text(packaged_config(name)))


@monitors_app.command("eval")
def monitors_eval(
    input: Annotated[Path, typer.Option("--input", help="Labelled transcripts: each record carries label_af (0/1).")],
    monitor: Annotated[list[str] | None, typer.Option(help="Monitor(s); default: every offline AF monitor.")] = None,
    out: Annotated[Path, typer.Option(help="Where to write the JSON report.")] = Path("monitor_eval.json"),
    bootstrap: Annotated[int, typer.Option(min=100, help="Bootstrap resamples for the intervals.")] = 1000,
) -> None:
    """AUROC, AP, precision/recall/F1 at threshold and calibration error, with 95% intervals."""
    from rich.table import Table

    from aflab.io import output_file, write_json
    from aflab.monitors import get_monitor
    from aflab.monitors.validation import CRITERIA, evaluate_monitor, label_of
    from aflab.records import load_transcripts
    from aflab.stats import fmt

    output_file(out)
    records = load_transcripts(input)
    for r in records:
        label_of(r)
    names = monitor or ["keyword", "learned", "learned_words", "criteria", "output_only"]
    reports = [evaluate_monitor(get_monitor(n), records, n_boot=bootstrap) for n in names]
    write_json(out, {"input": str(input), "reports": reports})
    table = Table("monitor", "AUROC", "AP", "precision", "recall", "F1", "ECE", title=f"{input} (n={len(records)})")
    for rep in reports:
        o = rep["overall"]
        table.add_row(
            rep["monitor"],
            *(fmt(o[k], digits=3) for k in ("auroc", "average_precision", "precision", "recall", "f1", "ece")),
        )
    Console().print(table)
    per_criterion = [rep for rep in reports if rep.get("criteria")]
    if per_criterion:
        ct = Table("monitor", *CRITERIA, title="AUROC per criterion (records' criteria labels)")
        for rep in per_criterion:
            ct.add_row(rep["monitor"], *(fmt(rep["criteria"].get(c), digits=3) for c in CRITERIA))
        Console().print(ct)
    groups = sorted({g for rep in reports for g in rep["groups"]})
    if groups:
        gt = Table("group", *names, title="flag rate by group (95% Wilson interval)")
        for g in groups:
            gt.add_row(g, *(fmt(rep["groups"].get(g, {}).get("flag_rate")) for rep in reports))
        Console().print(gt)
    err.print(f"report written to {out}")


def _on_signal(signum: int, frame: object) -> None:
    """SIGTERM is handled like Ctrl-C: unwind (stopping worker processes, keeping only complete
    files) and exit 128 + signal number."""
    _SIGNAL["number"] = signum
    raise KeyboardInterrupt


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        # Without standalone mode click *returns* an exit code (typer.Exit's, or 130 after Ctrl-C)
        # instead of exiting: it must be passed on, not dropped.
        code = app(standalone_mode=False)
    except UserError as e:
        if _DEBUG["on"]:
            raise
        err.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        _interrupted()
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except Exception as e:  # usage errors (typer's click) and internal errors
        if hasattr(e, "show") and hasattr(e, "exit_code"):  # a click/typer usage error: exit 2
            e.show()
            sys.exit(e.exit_code)
        if _DEBUG["on"]:
            raise
        if line := environment_error(e, _WRITING["under"]):  # a full disk or unusable folder, reported by torch & co
            err.print(f"[red]error:[/red] {line}", highlight=False, soft_wrap=True)
            sys.exit(2)
        err.print(
            f"[red]internal error:[/red] {type(e).__name__}: {e} (rerun with --debug for a traceback)",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)
    if _SIGNAL["number"] is not None:
        _interrupted()
    if isinstance(code, int) and code != 0:
        sys.exit(code)


def _interrupted() -> None:
    number = _SIGNAL["number"] or signal.SIGINT
    err.print(f"interrupted ({signal.Signals(number).name}); complete results are kept, rerun to continue")
    sys.exit(128 + number)


if __name__ == "__main__":
    main()
