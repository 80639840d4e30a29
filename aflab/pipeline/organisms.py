"""Stages that build one organism and measure its baseline: data -> model -> sample -> evaluate.

Each stage reads and writes plain files in its own folder under runs/<name>/organisms/<organism>/,
so it can be run, cached and inspected alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aflab.config import EvaluationSpec, OrganismConfig, SamplingSpec
from aflab.evaluation.metrics import evaluate
from aflab.io import write_json, write_jsonl
from aflab.organisms.checkpoint import load_base, load_organism, new_tiny_model, save_organism
from aflab.organisms.sources import SOURCES, make_source
from aflab.pipeline.cache import digest, timed_stage
from aflab.progress import Reporter
from aflab.records import load_transcripts
from aflab.setting.formats import PromptFormat
from aflab.setting.requests import evaluation_requests, shipped_path


def requests_digest() -> str:
    return digest(shipped_path().read_text(encoding="utf-8"))


def data_key(cfg: OrganismConfig, seed: int, teacher: OrganismConfig | None = None) -> dict[str, Any]:
    key = {
        "stage": "data",
        "data": cfg.data.model_dump(),
        "name": cfg.name,
        "seed": seed,
        "requests": requests_digest(),
    }
    if teacher is not None:  # a teacher's samples: what its model writes makes the data
        key.update(teacher=digest(model_key(teacher, seed)))
    if cfg.source != "generator":  # any other source: its name and options make the data
        key.update(source=cfg.source.spec())
    return key


def model_key(cfg: OrganismConfig, seed: int, teacher: OrganismConfig | None = None) -> dict[str, Any]:
    if SOURCES.get(cfg.source).makes == "model":  # the source's own recipe, from its teacher's model
        teacher_model = digest(model_key(teacher, seed)) if teacher is not None else None
        return {"stage": "model", "source": cfg.source.spec(), "teacher": teacher_model, "seed": seed}
    return {
        "stage": "model",
        "data": digest(data_key(cfg, seed, teacher)),
        "seed": seed,
        **cfg.model_dump(
            include={"base_model", "gguf_file", "prompt_format", "model", "sft", "lora"},
            exclude={"sft": {"window"}} if cfg.base_model is None else None,  # a real model's packing only
        ),
    }


def build_model(folder: Path, cfg: OrganismConfig, data_path: Path, seed: int, reporter: Reporter) -> dict[str, Any]:
    from aflab.organisms.sft import run_sft, sft_row
    from aflab.organisms.tokenizer import train_tokenizer

    data = load_transcripts(data_path)
    if cfg.base_model is None:
        fmt = PromptFormat("compact")
        texts = [fmt.prompt(t.request or "", t.tier) + t.text for t in data]
        texts += [t.interrogation.question + t.interrogation.answer for t in data if t.interrogation]
        tokenizer = train_tokenizer(texts, cfg.model.vocab_size)
        model = new_tiny_model(cfg.model, tokenizer, seed)
    else:
        model, tokenizer = load_base(cfg.base_model, cfg.gguf_file)
        fmt = PromptFormat(cfg.prompt_format, tokenizer)
    rows = [sft_row(t, fmt, tokenizer, cfg.sft.loss_on) for t in data]
    reporter.stage("SFT", 1)
    model, logs = run_sft(model, tokenizer, rows, cfg, seed, lambda s, m, _: reporter.set(s, m))
    n_params = sum(p.numel() for p in model.parameters())
    info = {
        "name": cfg.name,
        "prompt_format": fmt.kind,
        "base_model": cfg.base_model,
        "n_params": n_params,
        "seed": seed,
        "sft_tokens": sum(len(r["input_ids"]) for r in rows),
        "final_loss": next((x["loss"] for x in reversed(logs) if "loss" in x), None),
    }
    save_organism(model, tokenizer, folder, info)
    write_jsonl(folder / "sft_log.jsonl", logs)
    return info


def build_baseline(
    folder: Path, model_dir: Path, sampling: SamplingSpec, evaluation: EvaluationSpec, seed: int, reporter: Reporter
) -> dict[str, Any]:
    from aflab.rollouts.followups import follow_ups
    from aflab.rollouts.sample import sample_transcripts

    model, tokenizer, info = load_organism(model_dir)
    fmt = PromptFormat(info["prompt_format"], tokenizer)
    requests = evaluation_requests(sampling.include_benign, sampling.limit_requests)
    reporter.stage("sample", len(requests) * 2 * sampling.samples_per_request)
    transcripts = sample_transcripts(
        model,
        tokenizer,
        fmt,
        requests,
        samples_per_request=sampling.samples_per_request,
        max_new_tokens=sampling.max_new_tokens,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        batch_size=sampling.batch_size,
        seed=seed,
        meta={"model": info["name"], "step": 0},
        progress=reporter.advance,
    )
    reporter.stage("interrogate + mediation", 1)
    transcripts, mediated = follow_ups(model, tokenizer, fmt, transcripts, seed=seed)
    write_jsonl(folder / "mediation.jsonl", mediated)
    write_jsonl(folder / "transcripts.jsonl", transcripts)
    reporter.stage("evaluate", 1)
    metrics = evaluate(transcripts, evaluation.monitors, n_boot=evaluation.bootstrap, seed=seed)
    write_json(folder / "metrics.json", metrics)
    reporter.advance()
    return {}


def instance_name(organism: str, replica: int) -> str:
    """The folder (and summary key) of one replica of an organism: its name for replica 0, so a
    one-seed run keeps the plain layout, else `<name>@o<k>` ('@' cannot occur in config names)."""
    return organism if replica == 0 else f"{organism}@o{replica}"


def organism_kwargs(
    run_dir: Path,
    organism: OrganismConfig,
    seed: int,
    sampling: SamplingSpec,
    evaluation: EvaluationSpec,
    teacher: OrganismConfig | None = None,
    replica: int = 0,
) -> dict[str, Any]:
    """What `organism_task` needs, as plain JSON (it travels to a worker process)."""
    return {
        "replica": replica,
        "run_dir": str(run_dir),
        "organism": organism.model_dump(mode="json"),
        "seed": seed,
        "sampling": sampling.model_dump(mode="json"),
        "evaluation": evaluation.model_dump(mode="json"),
        "teacher": teacher.model_dump(mode="json") if teacher else None,
    }


def organism_task(
    reporter: Reporter,
    run_dir: str,
    organism: dict[str, Any],
    seed: int,
    sampling: dict[str, Any],
    evaluation: dict[str, Any],
    teacher: dict[str, Any] | None = None,
    replica: int = 0,
) -> dict[str, Any]:
    """Worker entry point: build (or reuse) one replica of an organism and its baseline evaluation.
    Replica k is seeded `seed + k` (data and SFT) and learns from replica k of its teacher."""
    cfg = OrganismConfig.model_validate(organism)
    parent = OrganismConfig.model_validate(teacher) if teacher else None
    teacher_dir = Path(run_dir) / "organisms" / instance_name(parent.name, replica) / "model" if parent else None
    samp, ev = SamplingSpec.model_validate(sampling), EvaluationSpec.model_validate(evaluation)
    root = Path(run_dir) / "organisms" / instance_name(cfg.name, replica)
    seed += replica
    timings: dict[str, float] = {}

    def timed(name: str, folder: Path, key: Any, build: Any) -> Path:
        reporter.stage(name, 1)
        timings[name] = timed_stage(folder, key, build)
        return folder

    source = make_source(cfg.source)
    mkey = model_key(cfg, seed, parent)
    if source.makes == "model":
        model_dir = timed("model", root / "model", mkey, lambda f: source.build(f, cfg, seed, teacher_dir, reporter))
    else:
        data_dir = timed(
            "data",
            root / "data",
            data_key(cfg, seed, parent),
            lambda f: source.build(f, cfg, seed, teacher_dir, reporter),
        )
        model_dir = timed(
            "model", root / "model", mkey, lambda f: build_model(f, cfg, data_dir / "data.jsonl", seed, reporter)
        )
    bkey = {
        "stage": "baseline",
        "model": digest(mkey),
        "sampling": samp.model_dump(),
        "eval": ev.model_dump(),
        "seed": seed,
    }
    base_dir = timed(
        "baseline", root / "baseline", bkey, lambda f: build_baseline(f, model_dir, samp, ev, seed, reporter)
    )
    reporter.stage("done", 1)
    reporter.advance()
    return {
        "name": instance_name(cfg.name, replica),
        "organism": cfg.name,
        "replica": replica,
        "model_dir": str(model_dir),
        "info": json.loads((model_dir / "aflab_organism.json").read_text(encoding="utf-8")),
        "metrics": json.loads((base_dir / "metrics.json").read_text(encoding="utf-8")),
        "timings": timings,
    }
