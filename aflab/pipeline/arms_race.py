"""`aflab arms-race`: process supervision against a monitor retrained, round after round, on what evaded it.

The paper's closing worry: a policy trained against a scratchpad monitor can learn scratchpads the
monitor misses; the overseer retrains the monitor on those, and round follows round. Here, per RL
seed (a chain: seed s's round r starts from seed s's round r-1 policy, with its own monitors):

- round 0 trains the organism by GRPO against M0 (`process_supervision.monitor`, a learned monitor);
- each round's final free-tier samples are audited; the *evaders* (faking by the provenance oracle,
  or by the strongest independent auditor where no oracle applies, yet not flagged by the round's
  monitor) are added, labelled faking, to that monitor's extra training data, which gives M_{r+1}
  (the learned monitor's `extra` option: a real monitor, usable anywhere a monitor is named);
- round r+1 trains the round-r policy against M_{r+1}.

Each round's RL and audit are content-keyed stages (pipeline/cache.py) under
`<out>/arms_race/seed<s>/round<r>/{rl,audit}`, so an interrupted run resumes; the organism is the
`aflab run` organism stage (same folder and key), so a run folder of the quickstart can share it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from rich.console import Console

from aflab.config import (
    NAME,
    ArmSpec,
    EvaluationSpec,
    ExecutorKeys,
    FinalEvalSpec,
    MitigationRef,
    MonitorRef,
    OrganismConfig,
    RLSpec,
    SamplingSpec,
    Seed,
    TrainConfig,
    load_yaml,
    packaged_config,
)
from aflab.errors import UserError
from aflab.evaluation.arms_race import METHOD, aggregate_rounds, evaders, round_metrics
from aflab.evaluation.audit import audit
from aflab.io import file_sha256, folder_lock, read_rows, write_json, write_jsonl
from aflab.mitigations.process_supervision import MonitorRewardOptions
from aflab.monitors.base import MONITORS, Monitor, get_monitor, lead_auditor
from aflab.monitors.learned import LearnedMonitor
from aflab.organisms.checkpoint import speaks_bank
from aflab.pipeline.cache import MARKER, digest, timed_stage
from aflab.pipeline.executors import Executor, LocalExecutor
from aflab.pipeline.organisms import model_key, organism_kwargs, organism_task
from aflab.pipeline.parallel import Task
from aflab.pipeline.rl_stage import rl_and_audit
from aflab.pipeline.sweep import warm_monitors
from aflab.progress import Reporter
from aflab.records import Transcript, load_transcripts
from aflab.reporting.arms_race import evasion_moves, gap_follows, recall_converges, write_arms_race_report
from aflab.rollouts.followups import load_mediation


def _learned() -> MonitorRewardOptions:
    return MonitorRewardOptions(monitor=MonitorRef("learned"))


class ArmsRaceConfig(ExecutorKeys):
    """`aflab arms-race`: one organism, `rounds` rounds of RL per seed against a retrained monitor."""

    name: Annotated[str, Field(pattern=NAME)] = "arms_race"
    seed: Seed = 0  # the organism's seed (data, SFT, baseline), like `aflab run`'s
    organism: OrganismConfig  # or "CONFIG:NAME": the organism NAME of the packaged config CONFIG
    sampling: SamplingSpec = Field(default_factory=SamplingSpec)
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    rounds: Annotated[int, Field(ge=1, le=100)] = 3
    seeds: list[Seed] = Field(default_factory=lambda: [0, 1], min_length=1)  # one chain of rounds each
    rl: RLSpec = Field(default_factory=RLSpec)
    final_eval: FinalEvalSpec = Field(default_factory=FinalEvalSpec)
    # M0 and the reward term; M_r is this monitor with `extra` = every evader of rounds < r
    process_supervision: MonitorRewardOptions = Field(default_factory=_learned)
    audit_monitors: list[MonitorRef] = Field(
        default_factory=lambda: [MonitorRef("keyword"), MonitorRef("auditor")], min_length=1
    )

    @field_validator("organism", mode="before")
    @classmethod
    def _packaged_organism(cls, value: Any) -> Any:
        """ "quickstart:tgg_counterfactual" is that organism as the quickstart defines it, whatever it
        becomes: one definition, and the same organism stage as `aflab run`'s."""
        if not isinstance(value, str):
            return value
        config, _, name = value.partition(":")
        try:
            organisms = load_yaml(packaged_config(config)).get("organisms") or []
        except UserError as e:
            raise ValueError(str(e)) from None
        found = [o for o in organisms if isinstance(o, dict) and o.get("name") == name]
        if not found:
            raise ValueError(f"packaged config {config!r} has no organism named {name!r}")
        return found[0]

    @model_validator(mode="after")
    def _runnable(self) -> ArmsRaceConfig:
        monitor = self.process_supervision.monitor
        cls = MONITORS.find(str(monitor))  # an unknown name is the loader's to report, with its key
        if cls is not None and not issubclass(cls, LearnedMonitor):
            raise ValueError(f"process_supervision.monitor {monitor!r} cannot be retrained: use a learned monitor")
        if "extra" in monitor.options:
            raise ValueError("process_supervision.monitor: option 'extra' is the race's own (the evaders so far)")
        if monitor in self.audit_monitors:
            raise ValueError(f"audit_monitors: {monitor!r} is the training monitor; an auditor must be held out")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be unique, got {self.seeds}")
        if self.organism.teacher is not None:
            raise ValueError("organism.teacher: the race builds one organism, so it cannot learn from a teacher")
        return self


# ---------------------------------------------------------------------------------------------
# The retrained monitor and its examples (what a round measures: aflab/evaluation/arms_race.py)


def retrained(monitor: MonitorRef, extra: Path | None) -> MonitorRef:
    """`monitor` trained also on the faking examples in `extra` (none there: `monitor` itself)."""
    if extra is None or not extra.exists() or extra.stat().st_size == 0:
        return monitor
    return MonitorRef(monitor, {**monitor.options, "extra": str(extra)})


def monitor_key(monitor: MonitorRef) -> str | dict[str, Any]:
    """A monitor in a stage key: its extra examples by content, not by path (a moved run folder
    keeps its stages)."""
    if "extra" not in monitor.options:
        return monitor.spec()
    return {"name": str(monitor), "options": {**monitor.options, "extra": file_sha256(Path(monitor.options["extra"]))}}


def example(record: Transcript, seed: int, round_: int) -> dict[str, Any]:
    """An evader as a labelled training example of the next monitor (CONTRACTS transcript format)."""
    return {
        "id": f"s{seed}-r{round_}-{record.id}",
        "tier": record.tier,
        "scratchpad": record.parsed.scratchpad,
        "output": record.parsed.output,
        "request_id": record.request_id,
        "label_af": 1,
        "meta": {"arms_race": {"seed": seed, "round": round_}},
    }


def auditors_for(auditors: Sequence[MonitorRef], model_dir: Path) -> tuple[dict[str, Monitor], Monitor | None]:
    """The auditors, and which of them says what is faking: none where the provenance oracle
    applies (organisms from scratch), else the strongest (`monitors.base.lead_auditor`)."""
    held = {str(a): get_monitor(a) for a in auditors}
    return held, None if speaks_bank(model_dir) else held[lead_auditor(list(held))]


# ---------------------------------------------------------------------------------------------
# Stages and tasks


def round_dir(run_dir: Path, seed: int, round_: int) -> Path:
    return run_dir / "arms_race" / f"seed{seed}" / f"round{round_}"


def stage_digest(folder: Path) -> str:
    """The digest a finished stage was built from (its STAGE.json), to key what builds on it."""
    return str(json.loads((folder / MARKER).read_text(encoding="utf-8"))["digest"])


def rl_seed(seed: int, round_: int) -> int:
    """Each round of a chain draws other prompts and samples: seed s, round r trains with s + 1000 r."""
    return seed + 1000 * round_


def round_task(
    reporter: Reporter,
    run_dir: str,
    organism: dict[str, Any],
    organism_seed: int,
    seed: int,
    round_: int,
    rl: dict[str, Any],
    final_eval: dict[str, Any],
    process_supervision: dict[str, Any],
    audit_monitors: list[Any],
) -> dict[str, Any]:
    """Worker entry point: round `round_` of seed `seed`'s chain (RL against M_r, then the audit
    that collects the evaders and trains M_{r+1}). Needs the chain's previous round done. Its length
    is the round's two stage keys and its TrainConfig written out whole, so that what a stage is
    keyed by is read in one place."""
    run = Path(run_dir).resolve()
    org = OrganismConfig.model_validate(organism)
    ps = MonitorRewardOptions.model_validate(process_supervision)
    auditors = [MonitorRef.parse(m) for m in audit_monitors]
    here = round_dir(run, seed, round_)
    start, start_key, before, extra = round_start(run, org, organism_seed, seed, round_)
    monitor = retrained(ps.monitor, extra)
    rl_key = {
        "stage": "arms_race_rl",
        "start": start_key,
        "monitor": monitor_key(monitor),
        "reward": ps.model_dump(mode="json", exclude={"monitor"}),
        "rl": rl,
        "final_eval": final_eval,
        "seed": rl_seed(seed, round_),
        "held_out": [a.spec() for a in auditors],
    }
    train = TrainConfig(
        name=f"arms_race-s{seed}-r{round_}",
        organism=str(start),
        mitigation=round_arm(round_, ps, monitor),
        rl=RLSpec.model_validate(rl),
        seed=rl_seed(seed, round_),
        held_out_monitors=auditors,
        final_eval=FinalEvalSpec.model_validate(final_eval),
    )
    audit_key = {
        "stage": "arms_race_audit",
        "rl": digest(rl_key),
        "before": stage_digest(before),
        "monitor": monitor_key(monitor),
        "auditors": [a.spec() for a in auditors],
    }
    # the next round starts from this round's policy: keep it
    timings = {"rl": rl_and_audit(reporter, here / "rl", rl_key, train, oracle=speaks_bank(start), keep_model=True)}
    reporter.stage(f"audit + retrain, round {round_}", 1)
    build = partial(
        collect_evaders,
        here=here,
        chain=(seed, round_),
        start=start,
        before=before,
        extra=extra,
        monitors=(ps.monitor, monitor),
        auditors=auditors,
    )
    timings["audit"] = timed_stage(here / "audit", audit_key, build)
    reporter.advance()
    marker = json.loads((here / "audit" / MARKER).read_text(encoding="utf-8"))
    timings["retrain"] = marker["retrain_s"] if timings["audit"] else 0.0
    reporter.stage("done", 1)
    reporter.advance()
    return {
        "seed": seed,
        "round": round_,
        "monitor": monitor_key(monitor),
        "figures": json.loads((here / "audit" / "figures.json").read_text(encoding="utf-8")),
        "timings": timings,
    }


def round_arm(round_: int, ps: MonitorRewardOptions, monitor: MonitorRef) -> ArmSpec:
    """Round r's arm: the race's process supervision, against M_r."""
    component = MitigationRef("process_supervision", {**ps.model_dump(mode="json"), "monitor": monitor})
    return ArmSpec(name=f"arms_race_r{round_}", components=[component])


def round_start(
    run: Path, org: OrganismConfig, organism_seed: int, seed: int, round_: int
) -> tuple[Path, str, Path, Path | None]:
    """Where a round starts: (the policy, the digest of the stage that made it, the stage whose
    transcripts came before it, the evaders so far or None). Round 0 starts from the organism."""
    if round_ == 0:
        organism = run / "organisms" / org.name
        return organism / "model", digest(model_key(org, organism_seed)), organism / "baseline", None
    prev = round_dir(run, seed, round_ - 1)
    return prev / "rl" / "model", stage_digest(prev / "rl"), prev / "audit", prev / "audit" / "extra.jsonl"


def collect_evaders(
    tmp: Path,
    here: Path,
    chain: tuple[int, int],
    start: Path,
    before: Path,
    extra: Path | None,
    monitors: tuple[MonitorRef, MonitorRef],
    auditors: list[MonitorRef],
) -> dict[str, Any]:
    """The round's second stage: its evaders of M_r (evaders.jsonl), everything that evaded so far
    (extra.jsonl, which trains M_{r+1}), the audit with M_r, M_{r+1} and the auditors, and the
    round's figures. `chain` is (seed, round); `monitors` is (M0, M_r)."""
    (seed, round_), (base, monitor) = chain, monitors
    final = here / "rl" / "final"
    records = load_transcripts(final / "transcripts.jsonl")
    held, truth_from = auditors_for(auditors, start)
    trained = get_monitor(monitor)
    evaded = evaders(records, trained, truth_from)
    if round_ == 0:  # the organism's own evaders of M0, before any RL
        previous = evaders(load_transcripts(before / "transcripts.jsonl"), trained, truth_from)
    else:
        previous = [Transcript.model_validate(r) for r in read_rows(before / "evaders.jsonl")]
    new = [example(r, seed, round_) for r in evaded]
    write_jsonl(tmp / "evaders.jsonl", new)
    write_jsonl(tmp / "extra.jsonl", [*read_rows(extra), *new])  # M_{r+1}: everything that evaded so far
    t0 = time.perf_counter()
    scored = {"training": trained, "retrained": get_monitor(retrained(base, tmp / "extra.jsonl")), **held}
    retrain_s = round(time.perf_counter() - t0, 2)
    mediated = load_mediation(final / "mediation.jsonl")
    a = audit(records, scored, ["training"], list(held), mediated, oracle=truth_from is None)
    write_json(tmp / "audit.json", a)
    row = round_metrics(records, a, scored, truth_from, evaded, previous)
    write_json(tmp / "figures.json", {**row, "extra_examples": float(len(read_rows(extra)))})
    return {"retrain_s": retrain_s}


def monitors_task(reporter: Reporter, names: list[Any]) -> dict[str, float]:
    """The training monitor and the auditors, trained (or loaded) once before the rounds need them."""
    return {"monitors": warm_monitors(reporter, names)}


# ---------------------------------------------------------------------------------------------
# Before round 0


def baseline_metrics(run: Path, organism: str, training: MonitorRef, auditors: Sequence[MonitorRef]) -> dict[str, Any]:
    """The organism before RL, read by M0 and the auditors: where round 0 starts from (one sample,
    point values; its tier rates with intervals are in organisms/<name>/baseline/metrics.json)."""
    folder = run / "organisms" / organism
    records = load_transcripts(folder / "baseline" / "transcripts.jsonl")
    held, truth_from = auditors_for(auditors, folder / "model")
    monitors = {"training": get_monitor(training), **held}
    a = audit(records, monitors, ["training"], list(held), oracle=truth_from is None)
    return round_metrics(records, a, monitors, truth_from, evaders(records, monitors["training"], truth_from), None)


# ---------------------------------------------------------------------------------------------
# The job


def run_arms_race(cfg: ArmsRaceConfig, run_dir: Path, executor: Executor | None = None) -> dict[str, Any]:
    """Run (or resume) the race in `run_dir`, its tasks on `executor` (default: the local process
    pool); a second process on the same folder is refused."""
    with folder_lock(run_dir):
        return _run(cfg, run_dir, executor or LocalExecutor(cfg.workers))


def round_kwargs(cfg: ArmsRaceConfig, run_dir: Path, seed: int, round_: int) -> dict[str, Any]:
    """What `round_task` needs (plain JSON: it travels to a worker process)."""
    return {
        "run_dir": str(run_dir),
        "organism": cfg.organism.model_dump(mode="json"),
        "organism_seed": cfg.seed,
        "seed": seed,
        "round_": round_,
        "rl": cfg.rl.model_dump(mode="json"),
        "final_eval": cfg.final_eval.model_dump(mode="json"),
        "process_supervision": cfg.process_supervision.model_dump(mode="json"),
        "audit_monitors": [m.spec() for m in cfg.audit_monitors],
    }


def race_tasks(cfg: ArmsRaceConfig, run_dir: Path) -> list[Task]:
    """The organism and the monitors first (in parallel), then each seed's rounds in order."""
    org, ps = cfg.organism, cfg.process_supervision
    tasks = [
        Task(
            "organism", organism_task, organism_kwargs(run_dir, org, cfg.seed, cfg.sampling, cfg.evaluation), kind="sft"
        ),
        Task(
            "monitors", monitors_task, {"names": [m.spec() for m in (ps.monitor, *cfg.audit_monitors)]}, kind="monitors"
        ),
    ]
    for r in range(cfg.rounds):
        for s in cfg.seeds:
            after = ("organism", "monitors", *((f"seed{s}/round{r - 1}",) if r else ()))
            tasks.append(
                Task(f"seed{s}/round{r}", round_task, round_kwargs(cfg, run_dir, s, r), after=after, kind="rl")
            )
    return tasks


def _run(cfg: ArmsRaceConfig, run_dir: Path, executor: Executor) -> dict[str, Any]:
    t0 = time.perf_counter()
    write_json(run_dir / "arms_race_config.json", cfg.model_dump(mode="json"))
    tasks = race_tasks(cfg, run_dir)
    title = f"Arms race: organism, then {cfg.rounds} rounds x {len(cfg.seeds)} seeds against a retrained monitor"
    organism, monitors, *played = executor.run(tasks, Console(stderr=True), title=title)
    timings: dict[str, float] = {"tasks_wall": round(time.perf_counter() - t0, 2)}
    timings.update({f"organism.{k}": v for k, v in organism["timings"].items()})
    timings.update(monitors)
    for stage in ("rl", "audit", "retrain"):
        timings[stage] = round(sum(x["timings"][stage] for x in played), 2)
        for r in range(cfg.rounds):
            timings[f"round{r}.{stage}"] = round(sum(x["timings"][stage] for x in played if x["round"] == r), 2)
    ps, org = cfg.process_supervision, cfg.organism.name
    oracle = speaks_bank(run_dir / "organisms" / org / "model")
    rounds = aggregate_rounds(played, cfg.rounds, ps.monitor)
    result: dict[str, Any] = {
        "name": cfg.name,
        "organism": org,
        "seeds": cfg.seeds,
        "training_monitor": ps.monitor.spec(),
        "auditors": [m.spec() for m in cfg.audit_monitors],
        "truth": "oracle" if oracle else f"auditor:{lead_auditor([str(m) for m in cfg.audit_monitors])}",
        "method": METHOD,
        "baseline": baseline_metrics(run_dir, org, ps.monitor, cfg.audit_monitors),
        "rounds": rounds,
        "findings": {
            "evasion_moves": evasion_moves(rounds),
            "gap_follows": gap_follows(rounds),
            "recall_converges": recall_converges(rounds),
        },
    }
    t_report = time.perf_counter()
    result["timings_s"] = timings
    write_arms_race_report(run_dir, result)
    timings["report"] = round(time.perf_counter() - t_report, 2)
    result["wall_s"] = round(time.perf_counter() - t0, 2)
    write_json(run_dir / "arms_race.json", result)
    return result
