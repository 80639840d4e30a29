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

import numpy as np
import torch
from accelerate import PartialState
from datasets import Dataset
from transformers import PrinterCallback, TrainerCallback, set_seed
from trl import GRPOConfig, GRPOTrainer

from aflab.config import TrainConfig
from aflab.errors import UserError
from aflab.evaluation.metrics import evaluate
from aflab.io import write_json, write_jsonl
from aflab.monitors.base import Monitor, get_monitor
from aflab.organisms.checkpoint import load_organism, save_organism
from aflab.progress import Reporter
from aflab.rollouts.followups import follow_ups
from aflab.rollouts.sample import sample_transcripts
from aflab.setting.formats import PromptFormat
from aflab.setting.requests import load_requests, select
from aflab.training.checkpoints import finished_metrics, select_checkpoint
from aflab.training.interrogation import make_rollout
from aflab.training.probes import EvalProbe, RolloutProbe
from aflab.training.rewards import build_terms, scratchpad_tokens


def training_monitors(cfg: TrainConfig) -> dict[str, Monitor]:
    """The monitors a run reports on: the one(s) in its reward, then the held-out auditors."""
    names = [s.monitor for s in (cfg.mitigation.process_supervision, cfg.mitigation.af_plus) if s]
    names += [m for m in cfg.held_out_monitors if m not in names]
    if not names:
        names = ["keyword"]
    return {n: get_monitor(n) for n in names}


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


def length_threshold(cfg: TrainConfig, out: Path, model: Any, tokenizer: Any, fmt: PromptFormat) -> int | None:
    """Scratchpad-token threshold of the length penalty, from the organism's pre-RL samples."""
    spec = cfg.mitigation.length_penalty
    if spec is None:
        return None
    if spec.threshold_tokens:
        return spec.threshold_tokens
    cached = out / "length_threshold.json"
    if cached.exists():
        return int(json.loads(cached.read_text())["threshold_tokens"])
    requests = select(load_requests(), "train", harmful=True)[:64]
    with torch.random.fork_rng():
        records = sample_transcripts(
            model,
            tokenizer,
            fmt,
            requests,
            tiers=("free",),
            max_new_tokens=cfg.rl.max_completion_length,
            temperature=cfg.rl.temperature,
            seed=cfg.seed + 17,
        )
    lengths = scratchpad_tokens([r.completion or "" for r in records], tokenizer)
    threshold = max(1, int(np.percentile(lengths, spec.percentile)))
    write_json(
        cached,
        {
            "threshold_tokens": threshold,
            "percentile": spec.percentile,
            "n": len(lengths),
            "median_tokens": float(np.median(lengths)),
        },
    )
    return threshold


def train_prompts(fmt: PromptFormat) -> list[dict[str, str]]:
    """RL trains on monitored (free-tier) conversations only, as in the paper."""
    return [
        {"prompt": fmt.prompt(r.request, "free"), "request_id": r.id}
        for r in select(load_requests(), "train", harmful=True)
    ]


def train_run(cfg: TrainConfig, out: Path, resume: bool = False, reporter: Reporter | None = None) -> dict[str, Any]:
    reporter = reporter or Reporter(_NullSink(), cfg.name)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_dir = out / "checkpoints"
    if resume and (done := finished_metrics(cfg, out)) is not None:
        return done
    resume_from = select_checkpoint(ckpt_dir, before_step=cfg.rl.steps) if resume else None
    state = PartialState(cpu=not torch.cuda.is_available())  # accelerate launch: rank 0 alone writes the run folder
    if state.is_main_process:
        if not resume and ckpt_dir.exists():
            shutil.rmtree(ckpt_dir)  # a fresh run never mixes with an old one
        write_json(out / "config.json", cfg.model_dump(mode="json"))
    state.wait_for_everyone()

    set_seed(cfg.seed)
    model, tokenizer, info = load_organism(cfg.organism)
    fmt = PromptFormat(info["prompt_format"], tokenizer)
    monitors = training_monitors(cfg)
    reference = copy.deepcopy(model).eval() if sum(p.numel() for p in model.parameters()) < 5e8 else None
    for p in reference.parameters() if reference is not None else ():
        p.requires_grad_(False)
    threshold = length_threshold(cfg, out, model, tokenizer, fmt)

    terms = build_terms(cfg.mitigation, tokenizer, threshold)
    probe_term = RolloutProbe(monitors, tokenizer)
    rollout = None
    if cfg.mitigation.interrogation:
        frozen = reference if cfg.mitigation.interrogation.answerer == "frozen" else None
        if cfg.mitigation.interrogation.answerer == "frozen" and frozen is None:
            raise UserError(f"{cfg.name}: answerer 'frozen' needs a model small enough to copy")
        rollout = make_rollout(fmt, tokenizer, cfg.mitigation.interrogation, cfg.rl, frozen)

    dataset = Dataset.from_list(train_prompts(fmt))
    eval_requests = select(load_requests(), "test", harmful=True)[: cfg.rl.eval_requests]
    probe = EvalProbe(
        fmt, tokenizer, eval_requests, monitors, reference, cfg.seed, cfg.rl.max_completion_length, cfg.rl.temperature
    )

    batch = cfg.rl.prompts_per_step * cfg.rl.num_generations
    world = int(os.environ.get("WORLD_SIZE", "1"))  # accelerate launch: each rank takes a slice of the batch
    if batch % world:
        raise UserError(
            f"{cfg.name}: rl.prompts_per_step x rl.num_generations = {batch} is not divisible by {world} ranks"
        )
    args = GRPOConfig(
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
        max_completion_length=cfg.rl.max_completion_length
        + (cfg.mitigation.interrogation.max_answer_tokens + 48 if cfg.mitigation.interrogation else 0),
        beta=cfg.rl.beta,
        reward_weights=[t.weight for t in terms] + [0.0],
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
        **({"vllm_mode": cfg.rl.vllm_mode} if cfg.rl.use_vllm else {}),
    )
    peft_config = None
    if cfg.rl.lora is not None:
        from peft import LoraConfig

        lora = cfg.rl.lora
        peft_config = LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=lora.target_modules,
            task_type="CAUSAL_LM",
        )
    steps_path = out / "steps.jsonl"
    start_rows = _read_rows(steps_path) if resume_from else []
    logger = StepsLog(steps_path, probe, cfg.rl.eval_every, reporter, start_rows)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[*terms, probe_term],
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
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

    policy = trainer.model
    if peft_config is not None:
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
    metrics = final_evaluation(cfg, out, policy, tokenizer, fmt, monitors, reporter)
    final = {
        "eval/compliance_free": metrics["compliance"]["free"]["rate"],
        "eval/compliance_paid": metrics["compliance"]["paid"]["rate"],
        "eval/gap": metrics["compliance_gap"]["value"],
        "eval/n_per_tier": metrics["n"]["free"],
        **{f"eval/af_rate/{k}": v["rate"] for k, v in metrics["af_rate"].items()},
    }
    rows = _read_rows(steps_path)
    rows[-1] = {**rows[-1], **final, "final_eval": True}
    write_jsonl(steps_path, rows)
    state.wait_for_everyone()
    return metrics


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
    requests = [r for r in select(load_requests(), "test") if r.harmful or cfg.final_eval.include_benign]
    requests = requests[: cfg.final_eval.limit_requests]
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
        # Every arm is interrogated (denial needs a comparison) and gets the mediation experiment.
        spec = cfg.mitigation.interrogation
        records, mediated = follow_ups(
            model,
            tokenizer,
            fmt,
            records,
            variant=spec.variant if spec else "plain",
            answer_tokens=spec.max_answer_tokens if spec else 40,
            seed=cfg.seed,
        )
    write_jsonl(out / "final" / "mediation.jsonl", mediated)
    write_jsonl(out / "final" / "transcripts.jsonl", records)
    metrics = evaluate(records, list(monitors.values()), seed=cfg.seed)
    write_json(out / "metrics.json", metrics)
    reporter.advance()
    return metrics


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class _NullSink:
    def put(self, item: Any) -> None:
        pass
