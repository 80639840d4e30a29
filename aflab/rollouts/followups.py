"""What every evaluated model is asked after its episodes: the interrogation follow-up, and the
mediation experiment (the output resampled under another scratchpad).

Both run on the before-RL organism and on every arm's final model alike, so that denial and
mediation have a "before" to compare with. Mediation asks whether the scratchpad carries the
compliance gap: for each request seen in both tiers, the output is resampled after the tier's own
scratchpad is replaced by the other tier's one ("swap") or by nothing ("empty").
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aflab.records import Transcript, load_transcripts
from aflab.rollouts.sample import generate_texts, interrogate
from aflab.setting.formats import PromptFormat
from aflab.setting.parser import format_completion
from aflab.setting.prompts import INTERROGATION_QUESTIONS

CLOSE_OUTPUT = "</OUTPUT>"


def mediation_design(records: Sequence[Transcript], limit: int) -> list[tuple[Transcript, str, str]]:
    """(record whose prompt is kept, scratchpad to force, condition) for up to `limit` harmful
    requests with a parseable scratchpad in both tiers."""
    by_request: dict[str, dict[str, Transcript]] = {}
    for r in records:
        if r.request_id and r.meta.get("harmful", True) and r.parsed.ok and r.parsed.scratchpad is not None:
            by_request.setdefault(r.request_id, {}).setdefault(r.tier, r)
    pairs = [p for _, p in sorted(by_request.items()) if len(p) == 2][:limit]
    design = []
    for p in pairs:
        free, paid = p["free"], p["paid"]
        design += [
            (free, paid.parsed.scratchpad or "", "swap"),
            (paid, free.parsed.scratchpad or "", "swap"),
            (free, "", "empty"),
            (paid, "", "empty"),
        ]
    return design


def resample_with_scratchpad(
    model: Any,
    tokenizer: Any,
    fmt: PromptFormat,
    design: Sequence[tuple[Transcript, str, str]],
    *,
    max_new_tokens: int,
    seed: int,
) -> list[Transcript]:
    prefix = format_completion("\0", "").removesuffix(CLOSE_OUTPUT)
    prompts = [fmt.prompt(r.request or "", r.tier) + prefix.replace("\0", pad) for r, pad, _ in design]
    outs = generate_texts(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=256, seed=seed)
    return [
        Transcript(
            id=f"{r.id}:{condition}",
            tier=r.tier,
            request_id=r.request_id,
            request=r.request,
            completion=format_completion(pad, out.split(CLOSE_OUTPUT)[0]),
            meta={**r.meta, "mediation": condition},
        )
        for (r, pad, condition), out in zip(design, outs, strict=True)
    ]


def follow_ups(
    model: Any,
    tokenizer: Any,
    fmt: PromptFormat,
    records: Sequence[Transcript],
    *,
    variant: str = "plain",
    answer_tokens: int = 40,
    output_tokens: int = 64,
    mediation_requests: int = 48,
    seed: int = 0,
) -> tuple[list[Transcript], list[Transcript]]:
    """(records, free-tier harmful ones with their interrogation answers; mediation records).
    Only free-tier harmful episodes are asked: denial is measured on them alone."""
    ask = [i for i, r in enumerate(records) if r.tier == "free" and r.meta.get("harmful", True) and r.parsed.ok]
    answers = interrogate(
        model,
        tokenizer,
        fmt,
        [records[i] for i in ask],
        INTERROGATION_QUESTIONS[variant],
        max_new_tokens=answer_tokens,
        seed=seed + 2,
    )
    asked = list(records)
    for i, r in zip(ask, answers, strict=True):
        asked[i] = r
    return asked, mediate(model, tokenizer, fmt, records, mediation_requests, output_tokens, seed)


def mediate(
    model: Any,
    tokenizer: Any,
    fmt: PromptFormat,
    records: Sequence[Transcript],
    mediation_requests: int = 48,
    output_tokens: int = 64,
    seed: int = 0,
) -> list[Transcript]:
    """The mediation records alone (the follow-up a sweep keeps when no arm is interrogated)."""
    design = mediation_design(records, mediation_requests)
    return resample_with_scratchpad(model, tokenizer, fmt, design, max_new_tokens=output_tokens, seed=seed + 3)


def load_mediation(path: Path) -> list[Transcript]:
    """Mediation records; none (an empty file) when no request parsed in both tiers."""
    return load_transcripts(path) if path.stat().st_size else []
