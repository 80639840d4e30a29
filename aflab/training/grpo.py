"""One RL run: an organism + a mitigation + a seed, trained with TRL's GRPOTrainer.

Only free-tier (monitored) prompts are trained on, as in the paper; both tiers are evaluated on
held-out requests. Checkpoints (safetensors + optimizer + RNG state) are written every
`save_every` steps and `--resume` continues from the last complete one; per-step metrics go to
steps.jsonl, the final evaluation to metrics.json.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState
from datasets import Dataset
from transformers import PrinterCallback, TrainerCallback, set_seed
from trl import GRPOConfig, GRPOTrainer

from aflab.config import TrainConfig
from aflab.errors import UserError
from aflab.evaluation.metrics import evaluate
from aflab.io import read_rows, write_json, write_jsonl
from aflab.mitigations import Mitigation, RolloutFunc, TrainContext, components, follow_up, reward_monitors
from aflab.monitors.base import Monitor, get_monitor
from aflab.organisms.checkpoint import load_organism, save_organism
from aflab.organisms.sft import close_process_group_at_exit, lora_config
from aflab.progress import Reporter
from aflab.records import Transcript
from aflab.rollouts.followups import follow_ups, mediate
from aflab.rollouts.sample import sample_transcripts
from aflab.setting.formats import PromptFormat
from aflab.setting.requests import evaluation_requests, load_requests, select
from aflab.training.checkpoints import finished_metrics, select_checkpoint
from aflab.training.probes import EvalProbe, RolloutProbe


def training_monitors(cfg: TrainConfig) -> dict[str, Monitor]:
    """The monitors a run reports on: the one(s) in its reward, then the held-out auditors."""
    names = reward_monitors(cfg.mitigation)
    names += [m for m in cfg.held_out_monitors if m not in names]
    return {n: get_monitor(n) for n in names or ["keyword"]}


class StepsLog(TrainerCallback):
    """steps.jsonl: TRL's per-step logs merged with the held-out probe, rewritten atomically."""

    def __init__(self, path: Path, probe: EvalProbe, eval_every: int, reporter: Reporter, start_rows: list[dict]):
        self.path, self.probe, self.eval_every, self.reporter = path, probe, eval_every, reporter
        self.rows = start_rows

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kw: Any) -> None:
        if not logs or "reward" not in logs or not state.is_world_process_zero:
            return  # one writer and one probe per run, not one per rank
        step = state.global_step
        row: dict[str, Any] = {"step": step, **{k: v for k, v in logs.items() if isinstance(v, int | float)}}
        if step % self.eval_every == 0 and step != state.max_steps:  # the final evaluation covers the end
            row.update(self.probe(kw["model"], step))
        self.rows = [r for r in self.rows if r["step"] < step] + [row]
        write_jsonl(self.path, self.rows)
        self.reporter.set(step, state.max_steps)


def train_prompts(fmt: PromptFormat) -> list[dict[str, str]]:
    """RL trains on monitored (free-tier) conversations only, as in the paper."""
    return [
        {"prompt": fmt.prompt(r.request, "free"), "request_id": r.id}
        for r in select(load_requests(), "train", harmful=True)
    ]


def train_run(cfg: TrainConfig, out: Path, resume: bool = False, reporter: Reporter | None = None) -> dict[str, Any]:
    """One RL run -> out/{config.json, steps.jsonl, checkpoints/, model/, final/, metrics.json}.

    Every knob is a field of `cfg` (config.py): `cfg.mitigation` is the arm (its parts live in
    aflab/mitigations/), `cfg.rl` the GRPO settings, `cfg.held_out_monitors` the auditors.
    Longer than the rest of aflab's functions on purpose: one RL run read top to bottom, in the
    order it happens (load, reward, probe, train, save, evaluate), as TRL's own examples are.
    """
    reporter = reporter or Reporter(_NullSink(), cfg.name)
    out.mkdir(parents=True, exist_ok=True)
    if resume and (done := finished_metrics(cfg, out)) is not None:
        return done  # a finished run is returned as it is
    resume_from = select_checkpoint(out / "checkpoints", before_step=cfg.rl.steps) if resume else None
    state = _open_run(cfg, out, fresh=not resume)

    set_seed(cfg.seed)
    model, tokenizer, info = load_organism(cfg.organism)
    fmt = PromptFormat(info["prompt_format"], tokenizer)
    monitors = training_monitors(cfg)  # reward monitors first, then the held-out auditors
    ctx = TrainContext(cfg, out, model, tokenizer, fmt, reference=_frozen_copy(model))
    parts = components(cfg.mitigation)  # the output reward, then each configured mitigation
    for part in parts:
        part.calibrate(ctx)  # e.g. the length penalty's threshold, from pre-RL samples
    terms = [term for part in parts for term in part.reward_terms(ctx)]
    rollout = _rollout(parts, ctx)  # e.g. the interrogation follow-up; None = TRL's own generation

    eval_requests = select(load_requests(), "test", harmful=True)[: cfg.rl.eval_requests]
    probe = EvalProbe(
        fmt,
        tokenizer,
        eval_requests,
        monitors,
        ctx.reference,
        cfg.seed,
        cfg.rl.max_completion_length,
        cfg.rl.temperature,
    )
    steps_path = out / "steps.jsonl"
    logger = StepsLog(steps_path, probe, cfg.rl.eval_every, reporter, read_rows(steps_path) if resume_from else [])
    extra_tokens = sum(part.extra_completion_tokens() for part in parts)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[*terms, RolloutProbe(monitors, tokenizer)],  # the probe has weight 0: it only logs
        args=grpo_args(
            cfg, out / "checkpoints", [t.weight for t in terms] + [0.0], extra_tokens, info["base_model"] is not None
        ),
        train_dataset=Dataset.from_list(train_prompts(fmt)),
        processing_class=tokenizer,
        peft_config=lora_config(cfg.rl.lora),
        rollout_func=rollout,
        callbacks=[logger],
    )
    trainer.remove_callback(PrinterCallback)
    if resume_from is None and cfg.rl.eval_at_start and state.is_main_process:
        logger.rows = [{"step": 0, **probe(model, 0)}]
        write_jsonl(steps_path, logger.rows)
    reporter.stage(f"RL {cfg.mitigation.name}", cfg.rl.steps)
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    if not state.is_main_process:  # rank 0 saves, evaluates and writes; the others wait for its metrics
        state.wait_for_everyone()
        return json.loads((out / "metrics.json").read_text())

    policy = _save_policy(cfg, out, trainer, tokenizer, info)
    metrics = final_evaluation(cfg, out, policy, tokenizer, fmt, monitors, reporter)
    _log_final(steps_path, metrics)
    state.wait_for_everyone()
    return metrics


def _open_run(cfg: TrainConfig, out: Path, fresh: bool) -> PartialState:
    """The accelerate state; rank 0 alone writes the run folder (config.json, no stale checkpoints)."""
    state = PartialState(cpu=not torch.cuda.is_available())
    close_process_group_at_exit()  # under `accelerate launch`, the group PartialState just made
    if state.is_main_process:
        if fresh and (out / "checkpoints").exists():
            shutil.rmtree(out / "checkpoints")  # a fresh run never mixes with an old one
        write_json(out / "config.json", cfg.model_dump(mode="json"))
    state.wait_for_everyone()
    return state


def _frozen_copy(model: Any) -> Any | None:
    """The starting model, frozen: KL reference of the probe and the interrogation's frozen
    answerer. None above 5e8 parameters (too big to hold twice)."""
    if sum(p.numel() for p in model.parameters()) >= 5e8:
        return None
    reference = copy.deepcopy(model).eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    return reference


def _rollout(parts: list[Mitigation], ctx: TrainContext) -> RolloutFunc | None:
    """The one rollout change of the arm: two components that both rewrite episodes cannot compose."""
    rollouts = [(part.name, r) for part in parts if (r := part.rollout(ctx)) is not None]
    if len(rollouts) > 1:
        raise UserError(f"{ctx.cfg.name}: mitigations {[n for n, _ in rollouts]} each change the rollout; use one")
    return rollouts[0][1] if rollouts else None


def grpo_args(
    cfg: TrainConfig, ckpt_dir: Path, reward_weights: list[float], extra_tokens: int, real_model: bool
) -> GRPOConfig:
    """TRL's config from `cfg.rl`; `extra_tokens` is what a rollout appends after the episode.
    Activations are recomputed (TRL's default) only for a real model, whose memory needs it; a
    from-scratch organism would pay the recomputation for nothing."""
    batch = cfg.rl.prompts_per_step * cfg.rl.num_generations
    world = int(os.environ.get("WORLD_SIZE", "1"))  # accelerate launch: each rank takes a slice of the batch
    if batch % world:
        raise UserError(
            f"{cfg.name}: rl.prompts_per_step x rl.num_generations = {batch} is not divisible by {world} ranks"
        )
    return GRPOConfig(
        output_dir=str(ckpt_dir),
        max_steps=cfg.rl.steps,
        per_device_train_batch_size=batch // world,
        generation_batch_size=batch,
        num_generations=cfg.rl.num_generations,
        learning_rate=cfg.rl.learning_rate,
        lr_scheduler_type="constant",
        temperature=cfg.rl.temperature,
        top_k=0,
        cache_implementation="static",  # as in rollouts/sample.py: the default cache's concatenation dominates
        max_completion_length=cfg.rl.max_completion_length + extra_tokens,
        beta=cfg.rl.beta,
        reward_weights=reward_weights,
        logging_steps=1,
        save_strategy="steps",
        save_steps=cfg.rl.save_every,
        save_only_model=False,
        report_to=cfg.rl.report_to or "none",
        seed=cfg.seed,
        data_seed=cfg.seed,
        use_cpu=not torch.cuda.is_available(),
        bf16=cfg.rl.bf16 and torch.cuda.is_available(),
        disable_tqdm=True,
        log_completions=False,
        use_vllm=cfg.rl.use_vllm,
        activation_checkpointing=real_model,
        **({"vllm_mode": cfg.rl.vllm_mode} if cfg.rl.use_vllm else {}),
    )


def _save_policy(cfg: TrainConfig, out: Path, trainer: GRPOTrainer, tokenizer: Any, info: dict[str, Any]) -> Any:
    """The trained policy (LoRA merged), saved as an organism under out/model."""
    policy = trainer.model
    if cfg.rl.lora is not None:
        policy = policy.merge_and_unload()
    policy.eval()
    save_organism(
        policy,
        tokenizer,
        out / "model",
        {
            **info,
            "name": f"{info['name']}+{cfg.mitigation.name}",
            "parent": cfg.organism,
            "rl": cfg.model_dump(mode="json"),
        },
    )
    return policy


def _log_final(steps_path: Path, metrics: dict[str, Any]) -> None:
    """The final evaluation's headline numbers on the last row of steps.jsonl."""
    final = {
        "eval/compliance_free": metrics["compliance"]["free"]["rate"],
        "eval/compliance_paid": metrics["compliance"]["paid"]["rate"],
        "eval/gap": metrics["compliance_gap"]["value"],
        "eval/n_per_tier": metrics["n"]["free"],
        **{f"eval/af_rate/{k}": v["rate"] for k, v in metrics["af_rate"].items()},
    }
    rows = read_rows(steps_path)
    rows[-1] = {**rows[-1], **final, "final_eval": True}
    write_jsonl(steps_path, rows)


def train_task(reporter: Reporter, config: dict[str, Any], out: str, resume: bool = False) -> dict[str, Any]:
    """Worker entry point (aflab train, and each cell of the sweep)."""
    return train_run(TrainConfig.model_validate(config), Path(out), resume=resume, reporter=reporter)


def final_evaluation(
    cfg: TrainConfig,
    out: Path,
    model: Any,
    tokenizer: Any,
    fmt: PromptFormat,
    monitors: dict[str, Monitor],
    reporter: Reporter,
) -> dict[str, Any]:
    """Both tiers on the test split, graded and monitored; interrogation answers where relevant."""
    requests = evaluation_requests(cfg.final_eval.include_benign, cfg.final_eval.limit_requests)
    reporter.stage("final eval", 1)
    with torch.random.fork_rng():
        records = sample_transcripts(
            model,
            tokenizer,
            fmt,
            requests,
            samples_per_request=cfg.final_eval.samples_per_request,
            max_new_tokens=cfg.final_eval.max_new_tokens,
            temperature=cfg.rl.temperature,
            batch_size=cfg.final_eval.batch_size,
            seed=cfg.seed + 1,
            meta={"step": cfg.rl.steps, "mitigation": cfg.mitigation.name, "seed": cfg.seed},
        )
        # Every arm is interrogated (denial needs a comparison) and gets the mediation experiment,
        # unless the sweep spends them on more samples (final_eval.follow_ups).
        mediated: list[Transcript] = []
        if cfg.final_eval.follow_ups == "mediation":
            mediated = mediate(model, tokenizer, fmt, records, cfg.final_eval.mediation_requests, seed=cfg.seed)
        elif cfg.final_eval.follow_ups:
            variant, answer_tokens = follow_up(cfg.mitigation) or ("plain", 40)
            records, mediated = follow_ups(
                model,
                tokenizer,
                fmt,
                records,
                variant=variant,
                answer_tokens=answer_tokens,
                mediation_requests=cfg.final_eval.mediation_requests,
                seed=cfg.seed,
            )
    write_jsonl(out / "final" / "mediation.jsonl", mediated)
    write_jsonl(out / "final" / "transcripts.jsonl", records)
    metrics = evaluate(records, list(monitors.values()), seed=cfg.seed)
    write_json(out / "metrics.json", metrics)
    reporter.advance()
    return metrics


class _NullSink:
    def put(self, item: Any) -> None:
        pass
