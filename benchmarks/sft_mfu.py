"""Model-FLOP utilisation of organism SFT against this CPU's measured fp32 matmul peak, one thread.

Model FLOPs per trained token = 6N (weights, forward + backward) + 12 * layers * hidden * seq
(attention scores and values), the usual accounting (PaLM, appendix B). The peak is the best of
several 1024^3 fp32 matmuls in the same process, so the ratio holds on a noisy machine.

    python benchmarks/sft_mfu.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, record

from aflab.config import OrganismConfig, RunConfig, packaged_config
from aflab.organisms.checkpoint import new_tiny_model
from aflab.organisms.generator import generate
from aflab.organisms.sft import run_sft, sft_row
from aflab.organisms.tokenizer import train_tokenizer
from aflab.pipeline.load import load_config
from aflab.setting.formats import PromptFormat
from aflab.setting.requests import load_requests, select

STEPS = 60


def matmul_peak(n: int = 1024, reps: int = 20) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 * reps / best


def main() -> None:
    torch.set_num_threads(1)
    cfg: OrganismConfig = load_config(packaged_config("quickstart"), RunConfig).organisms[0]
    cfg = cfg.model_copy(update={"sft": cfg.sft.model_copy(update={"max_steps": STEPS})})
    data = generate(cfg.data, select(load_requests(), "train"), 1200, 0, cfg.name)
    fmt = PromptFormat("compact")
    tok = train_tokenizer([fmt.prompt(t.request or "", t.tier) + t.text for t in data], cfg.model.vocab_size)
    rows = [sft_row(t, fmt, tok, "completion") for t in data]
    model = new_tiny_model(cfg.model, tok, 0)
    n_params = sum(p.numel() for p in model.parameters())
    peak_before = matmul_peak()
    t0 = time.perf_counter()
    run_sft(model, tok, rows, cfg, 0)
    wall = time.perf_counter() - t0
    peak = max(peak_before, matmul_peak())
    tokens = STEPS * cfg.sft.batch_size * cfg.model.max_length
    m = cfg.model
    flops_per_token = 6 * n_params + 12 * m.num_layers * m.hidden_size * m.max_length
    achieved = tokens * flops_per_token / wall
    print(f"machine: {machine()}")
    print(
        f"model {n_params / 1e6:.2f}M params, {STEPS} steps x {cfg.sft.batch_size} x {m.max_length} tokens "
        f"(packed), wall {wall:.1f} s (includes data packing and trainer set-up)"
    )
    print(
        f"throughput {tokens / wall:,.0f} tokens/s; model FLOPs {achieved / 1e9:.1f} GFLOP/s "
        f"(6N only: {tokens * 6 * n_params / wall / 1e9:.1f})"
    )
    print(f"fp32 matmul peak, 1 thread, same process: {peak / 1e9:.1f} GFLOP/s")
    print(f"MFU: {achieved / peak:.1%}")
    six_n = tokens * 6 * n_params / wall
    record(
        "sft_mfu",
        "Organism SFT",
        headline=[
            {
                "benchmark": "SFT model-FLOP utilisation vs the same process's fp32 matmul peak",
                "goal": ">= 40%",
                "measured": f"{achieved / peak:.1%} ({six_n / peak:.1%} counting 6N only)",
                "verdict": "met" if achieved / peak >= 0.4 else "missed",
            }
        ],
        tables=[
            {
                "caption": "",
                "header": ["figure", "value"],
                "rows": [
                    [
                        "model",
                        f"{n_params / 1e6:.2f}M params, {STEPS} steps x {cfg.sft.batch_size} x {m.max_length} "
                        "tokens (packed)",
                    ],
                    ["throughput", f"{tokens / wall:,.0f} tokens/s"],
                    ["model FLOPs", f"{achieved / 1e9:.1f} GFLOP/s (6N only: {six_n / 1e9:.1f})"],
                    ["fp32 matmul peak, 1 thread", f"{peak / 1e9:.1f} GFLOP/s"],
                    ["MFU", f"{achieved / peak:.1%}"],
                ],
            }
        ],
        figures={
            "tokens_per_s": round(tokens / wall),
            "gflops": round(achieved / 1e9, 1),
            "peak_gflops": round(peak / 1e9, 1),
            "mfu": round(achieved / peak, 3),
            "flops_per_token": flops_per_token,
        },
    )


if __name__ == "__main__":
    main()
