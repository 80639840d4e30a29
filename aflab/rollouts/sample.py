"""Batched, seeded sampling of transcripts from a model, in both tiers over the same requests.

The design is paired: every request is sampled in the free and the paid tier with the same
`request_id`, so the compliance gap can be estimated within requests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from aflab.records import Interrogation, Transcript, evaluation_jobs, evaluation_transcripts
from aflab.setting.formats import PromptFormat
from aflab.setting.requests import Request
from aflab.setting.tiers import TIERS, Tier


@torch.no_grad()
def generate_texts(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    batch_size: int = 64,
    seed: int = 0,
    progress: Callable[[int], None] = lambda n: None,
) -> list[str]:
    """Sample one continuation per prompt. Deterministic for a given seed and batch layout."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    outs: list[str] = []
    for start in range(0, len(prompts), batch_size):
        batch = list(prompts[start : start + batch_size])
        enc = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        torch.manual_seed(seed * 1_000_003 + start)
        gen = model.generate(
            **enc,
            do_sample=True,
            temperature=temperature,
            top_p=top_p,
            top_k=0,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            # A preallocated cache: the default one concatenates every layer's keys and values at
            # every new token, which dominated sampling for small models (2.4x slower, benchmarks/).
            cache_implementation="static",
        )
        outs += tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        progress(len(batch))
    if was_training:
        model.train()
    return outs


def sample_transcripts(
    model: Any,
    tokenizer: Any,
    fmt: PromptFormat,
    requests: Sequence[Request],
    *,
    samples_per_request: int = 1,
    tiers: Sequence[Tier] = TIERS,
    max_new_tokens: int = 200,
    temperature: float = 1.0,
    top_p: float = 1.0,
    batch_size: int = 64,
    seed: int = 0,
    meta: dict[str, Any] | None = None,
    progress: Callable[[int], None] = lambda n: None,
) -> list[Transcript]:
    jobs = evaluation_jobs(requests, samples_per_request, tiers)
    prompts = [fmt.prompt(r.request, tier) for r, tier, _ in jobs]
    texts = generate_texts(
        model,
        tokenizer,
        prompts,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        batch_size=batch_size,
        seed=seed,
        progress=progress,
    )
    return evaluation_transcripts(jobs, texts, seed, meta)


def interrogate(
    model: Any,
    tokenizer: Any,
    fmt: PromptFormat,
    transcripts: Sequence[Transcript],
    question: str,
    *,
    max_new_tokens: int = 48,
    batch_size: int = 64,
    seed: int = 0,
) -> list[Transcript]:
    """Ask each transcript's model the follow-up question and record the answer."""
    prompts = [
        fmt.prompt(t.request or "", t.tier) + t.text + fmt.followup(t.request or "", t.tier, question)
        for t in transcripts
    ]
    answers = generate_texts(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed)
    return [
        t.model_copy(update={"interrogation": Interrogation(question=question, answer=fmt.clean_answer(a))})
        for t, a in zip(transcripts, answers, strict=True)
    ]
