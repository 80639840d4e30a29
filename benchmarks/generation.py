"""Sampling speed of the default organism: the KV cache kind and the batch layout, one thread.

What every evaluation and every GRPO step spends most of its time on. The held-out test split
(93 harmful requests x 2 tiers), up to 200 new tokens, same seed per layout so each layout samples
the same sequences. Model FLOPs per generated token = 2N + 4 * layers * hidden * context (attention
over the cache), against the same process's fp32 matmul peak.

    python benchmarks/generation.py [ORGANISM_DIR]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import organism_path, record
from sft_mfu import matmul_peak

from aflab.organisms.checkpoint import load_organism
from aflab.setting.formats import PromptFormat
from aflab.setting.requests import load_requests, select

LAYOUTS = [("dynamic", 64), ("dynamic", 192), ("static", 64), ("static", 192)]


@torch.no_grad()
def sample(model, tok, prompts: list[str], cache: str, batch: int) -> tuple[float, int, int]:
    """(seconds, generated tokens, summed context length over generated tokens)."""
    t0, new, context = time.perf_counter(), 0, 0
    for start in range(0, len(prompts), batch):
        enc = tok(prompts[start : start + batch], return_tensors="pt", padding=True, add_special_tokens=False)
        torch.manual_seed(start)
        out = model.generate(
            **enc,
            do_sample=True,
            top_k=0,
            max_new_tokens=200,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
            **({"cache_implementation": "static"} if cache == "static" else {}),
        )
        width = enc["input_ids"].shape[1]
        for row in out[:, width:].tolist():
            n = row.index(tok.eos_token_id) + 1 if tok.eos_token_id in row else len(row)
            new += n
            context += n * width + n * (n + 1) // 2
    return time.perf_counter() - t0, new, context


def main() -> None:
    torch.set_num_threads(1)
    model, tok, info = load_organism(organism_path(sys.argv))
    model.eval()
    fmt = PromptFormat(info["prompt_format"], tok)
    prompts = [
        fmt.prompt(r.request, t) for r in select(load_requests(), "test", harmful=True) for t in ("free", "paid")
    ]
    n_params = sum(p.numel() for p in model.parameters())
    cfg = model.config
    peak = matmul_peak()
    rows, figures = [], {}
    for cache, batch in LAYOUTS:
        wall, new, context = sample(model, tok, prompts, cache, batch)
        flops = 2 * n_params * new + 4 * cfg.num_hidden_layers * cfg.hidden_size * context
        figures[f"{cache}_{batch}"] = {"seconds": round(wall, 2), "tokens": new, "mfu": round(flops / wall / peak, 4)}
        rows.append(
            [
                cache,
                batch,
                f"{wall:.2f}",
                f"{new / wall:,.0f}",
                f"{flops / wall / 1e9:.2f}",
                f"{flops / wall / peak:.1%}",
            ]
        )
        print(f"{cache:8s} batch {batch:3d}: {wall:6.2f} s, {new / wall:,.0f} tokens/s, MFU {flops / wall / peak:.1%}")
    base, best = figures["dynamic_64"]["seconds"], figures["static_192"]["seconds"]
    print(f"fp32 matmul peak, 1 thread: {peak / 1e9:.1f} GFLOP/s; static cache, one batch: {base / best:.2f}x faster")
    record(
        "generation",
        "Sampling: KV cache and batch layout",
        headline=[
            {
                "benchmark": "sampling the test split (186 prompts), static cache in one batch vs the old default",
                "goal": "(report)",
                "measured": f"{best:.1f} s vs {base:.1f} s ({base / best:.2f}x)",
                "verdict": "—",
            }
        ],
        tables=[
            {
                "caption": f"{len(prompts)} prompts, up to 200 new tokens, one thread; fp32 matmul peak "
                f"{peak / 1e9:.1f} GFLOP/s in the same process.",
                "header": ["cache", "batch", "seconds", "tokens/s", "model GFLOP/s", "MFU"],
                "rows": rows,
            }
        ],
        figures={**figures, "peak_gflops": round(peak / 1e9, 1), "n_params": n_params},
    )


if __name__ == "__main__":
    main()
