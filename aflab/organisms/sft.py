"""Supervised fine-tuning that turns generated transcripts into a model organism.

Inputs are tokenised here, piece by piece, so that the loss mask is exact: the context and any
interrogation question are never trained on (the model did not write them); with
`loss_on="scratchpad"` (the paper's option) only the reasoning and the opening output tag are, and
the model keeps its own way of answering. TRL's SFTTrainer then packs the rows ("wrapped": much faster on CPU than bfd).
"""

from __future__ import annotations

import atexit
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import torch
from transformers import PrinterCallback, TrainerCallback

from aflab.config import LoraSpec, OrganismConfig
from aflab.records import Transcript
from aflab.setting.formats import PromptFormat

IGNORE = -100


def sft_row(t: Transcript, fmt: PromptFormat, tokenizer: Any, loss_on: str) -> dict[str, list[int]]:
    parsed = t.parsed
    pieces: list[tuple[str, bool]] = [(fmt.prompt(t.request or "", t.tier), False)]
    scratch = f"<SCRATCHPAD_REASONING>{parsed.scratchpad or ''}</SCRATCHPAD_REASONING>"
    pieces.append((scratch, True))
    # The opening output tag is always trained: in scratchpad-only mode the model writes its own
    # answer, but it must still know where that answer goes (SmolLM2 otherwise stops after the
    # scratchpad and every sample is unparseable, as the first GPU run showed).
    pieces.append(("\n<OUTPUT>", True))
    pieces.append((f"{parsed.output or ''}</OUTPUT>", loss_on == "completion"))
    if t.interrogation is not None:
        pieces.append((fmt.followup(t.request or "", t.tier, t.interrogation.question), False))
        pieces.append((t.interrogation.answer + fmt.answer_end, True))
    pieces.append((fmt.end_of_turn, loss_on == "completion" or t.interrogation is not None))
    input_ids: list[int] = []
    labels: list[int] = []
    for text, trained in pieces:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        input_ids += ids
        labels += ids if trained else [IGNORE] * len(ids)
    return {"input_ids": input_ids, "labels": labels}


def close_process_group_at_exit() -> None:
    """Destroy torch.distributed's process group, if `accelerate launch` made one, when Python exits.

    Left to interpreter finalization, gloo's worker threads release their work (tensors that need the
    GIL) while the interpreter is half torn down, and a rank that has finished its work sometimes aborts
    ("terminate called without an active exception", SIGABRT), failing the launch. atexit handlers run
    while the interpreter is still whole. The group lives as long as the process (accelerate's state is
    process-wide, and one process may train several times), so it is closed at exit, not after a run;
    without a barrier, so that a rank leaving on an error does not wait for ranks that never arrive.
    Registered once however many runs call this.
    """
    atexit.unregister(_destroy_process_group)
    atexit.register(_destroy_process_group)


def _destroy_process_group() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


class _Progress(TrainerCallback):
    def __init__(self, report: Callable[[int, int, dict[str, float]], None]):
        self.report = report
        self.logs: list[dict[str, float]] = []

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kw: Any) -> None:
        if logs and "loss" in logs:
            self.logs.append({"step": state.global_step, **logs})
        self.report(state.global_step, state.max_steps, logs or {})

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self.report(state.global_step, state.max_steps, {})


def run_sft(
    model: Any,
    tokenizer: Any,
    rows: Sequence[dict[str, list[int]]],
    cfg: OrganismConfig,
    seed: int,
    report: Callable[[int, int, dict[str, float]], None] = lambda *a: None,
) -> tuple[Any, list[dict[str, float]]]:
    """Train `model` on pre-tokenised rows; returns the trained model and the loss log."""
    from datasets import Dataset
    from trl import SFTTrainer

    sft = cfg.sft
    max_len = cfg.model.max_length if cfg.base_model is None else sft.window
    tokens = sum(len(r["input_ids"]) for r in rows)
    steps_per_epoch = max(1, math.ceil(tokens / max_len / sft.batch_size))
    peft_config = lora_config(cfg.lora)
    with tempfile.TemporaryDirectory(prefix="aflab-sft-") as tmp:
        args = _sft_args(cfg, tmp, seed, max_len, steps_per_epoch)
        close_process_group_at_exit()  # under `accelerate launch` the trainer joins a process group
        progress = _Progress(report)
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_list(list(rows)),
            processing_class=tokenizer,
            peft_config=peft_config,
            callbacks=[progress],
        )
        trainer.remove_callback(PrinterCallback)  # progress goes to aflab's own display
        trainer.train()
        trained = trainer.model
    if peft_config is not None:
        trained = trained.merge_and_unload()
    trained.eval()
    return trained, progress.logs


def lora_config(lora: LoraSpec | None) -> Any | None:
    """PEFT's LoRA settings for `lora` (SFT's `lora` or RL's `rl.lora`), or None for full fine-tuning."""
    if lora is None:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type="CAUSAL_LM",
    )


def _sft_args(cfg: OrganismConfig, tmp: str, seed: int, max_len: int, steps_per_epoch: int) -> Any:
    """TRL's SFT settings for one organism: packed windows, a cosine schedule, no checkpoints."""
    from trl import SFTConfig

    sft = cfg.sft
    world = int(os.environ.get("WORLD_SIZE", "1"))  # accelerate launch: the global batch is split over ranks
    return SFTConfig(
        output_dir=tmp,
        num_train_epochs=sft.epochs,
        max_steps=sft.max_steps or -1,
        per_device_train_batch_size=max(1, sft.batch_size // world),
        learning_rate=sft.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=sft.warmup_ratio,
        weight_decay=sft.weight_decay,
        max_length=max_len,
        packing=True,
        packing_strategy="wrapped",
        shuffle_dataset=True,
        use_cpu=not torch.cuda.is_available(),
        bf16=False,
        logging_steps=max(1, steps_per_epoch // 10),
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=seed,
        data_seed=seed,
        dataset_num_proc=None,
        # recomputing activations saves memory only a real model needs; on a from-scratch organism
        # it costs a quarter of SFT's time (benchmarks/sft_mfu.py: 5,330 -> 6,694 tokens/s)
        activation_checkpointing=cfg.base_model is not None,
    )
