"""How RL cost grows with episodes per step and with model size (3 sizes), one thread.

Untrained models of each size (the quickstart tokenizer) generate to the length limit, so every
cell generates the same number of tokens and the table isolates the two factors.

    python benchmarks/scaling.py [ORGANISM_DIR]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

import torch
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, organism_path, record

from aflab.config import ModelSpec
from aflab.mitigations.rewards import Compliance
from aflab.organisms.checkpoint import load_organism, new_tiny_model
from aflab.setting.formats import PromptFormat
from aflab.training.grpo import train_prompts

SIZES = {
    "small (h64, 2 layers)": ModelSpec(hidden_size=64, num_layers=2, num_heads=2, intermediate_size=192),
    "default (h128, 4 layers)": ModelSpec(),
    "large (h256, 6 layers)": ModelSpec(hidden_size=256, num_layers=6, num_heads=8, intermediate_size=768),
}
EPISODES = (16, 32, 64)
LENGTH, STEPS = 96, 3


def step_time(model, tok, episodes: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        args = GRPOConfig(
            output_dir=out,
            max_steps=STEPS,
            per_device_train_batch_size=episodes,
            generation_batch_size=episodes,
            num_generations=8,
            learning_rate=1e-5,
            max_completion_length=LENGTH,
            beta=0.0,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            seed=0,
            use_cpu=True,
            bf16=False,
            disable_tqdm=True,
        )
        t = GRPOTrainer(
            model=model,
            reward_funcs=[Compliance("compliance")],
            args=args,
            processing_class=tok,
            train_dataset=Dataset.from_list(train_prompts(PromptFormat("compact"))),
        )
        t.train()
    return statistics.median(h["step_time"] for h in t.state.log_history[1:] if "step_time" in h)


def main() -> None:
    torch.set_num_threads(1)
    _, tok, _ = load_organism(organism_path(sys.argv))
    rows = []
    for label, spec in SIZES.items():
        params = sum(p.numel() for p in new_tiny_model(spec, tok, 0).parameters())
        rows.append((label, params, [step_time(new_tiny_model(spec, tok, 0), tok, e) for e in EPISODES]))
    print(f"machine: {machine()}")
    print(f"seconds per GRPO step (completions of {LENGTH} tokens, median of {STEPS - 1} steps)")
    print("| model | params | " + " | ".join(f"{e} episodes" for e in EPISODES) + " |")
    print("|---|---|" + "---|" * len(EPISODES))
    for label, params, times in rows:
        print(f"| {label} | {params / 1e6:.2f}M | " + " | ".join(f"{t:.2f}" for t in times) + " |")
    record(
        "scaling",
        "Cost against episodes per step and model size",
        tables=[
            {
                "caption": f"Seconds per GRPO step, completions of {LENGTH} tokens, one thread.",
                "header": ["model", "params", *(f"{e} episodes" for e in EPISODES)],
                "rows": [
                    [label, f"{params / 1e6:.2f}M", *(f"{t:.2f} s" for t in times)] for label, params, times in rows
                ],
            }
        ],
    )


if __name__ == "__main__":
    main()
