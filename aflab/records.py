"""The plain records that flow between stages (CONTRACTS.md, "Transcript record").

Stages talk only through these records serialised as JSONL, so each stage can be run, cached and
inspected alone. Unknown fields are kept (users add their own) but never interpreted.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aflab.io import load_records
from aflab.setting.parser import Parsed, format_completion, parse_completion
from aflab.setting.requests import Request
from aflab.setting.tiers import TIERS, Tier


class Interrogation(BaseModel):
    """A follow-up question after the episode and the model's answer."""

    model_config = ConfigDict(extra="allow")
    question: str
    answer: str


class Transcript(BaseModel):
    """One conversation: context tier, the model's completion (or its parts) and provenance."""

    model_config = ConfigDict(extra="allow", strict=True)

    id: str = Field(min_length=1)
    tier: Tier
    completion: str | None = None
    scratchpad: str | None = None
    output: str | None = None
    request_id: str | None = None
    request: str | None = None
    interrogation: Interrogation | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _has_text(self) -> Transcript:
        if self.completion is None and self.output is None and self.scratchpad is None:
            raise ValueError("needs a 'completion' string, or 'scratchpad' and 'output' strings")
        return self

    @cached_property
    def parsed(self) -> Parsed:
        """The (scratchpad, output) split; `completion` wins over pre-split fields when present."""
        if self.completion is not None:
            return parse_completion(self.completion)
        error = None if self.output is not None else "no 'output' field"
        return Parsed(self.scratchpad, self.output, error)

    @property
    def text(self) -> str:
        return (
            self.completion
            if self.completion is not None
            else format_completion(self.scratchpad or "", self.output or "")
        )


def load_transcripts(path: str | Path) -> list[Transcript]:
    return load_records(path, Transcript)


# One episode of an evaluation: a request, the tier it is shown in, and the sample's index.
Job = tuple[Request, Tier, int]


def evaluation_jobs(requests: Sequence[Request], samples_per_request: int, tiers: Sequence[Tier] = TIERS) -> list[Job]:
    """The evaluation design: every request in each tier, `samples_per_request` times."""
    return [(r, tier, k) for r in requests for tier in tiers for k in range(samples_per_request)]


def evaluation_transcripts(
    jobs: Sequence[Job], completions: Sequence[str], seed: int, meta: dict[str, Any] | None = None
) -> list[Transcript]:
    """The records of an evaluation, whoever wrote the completions (a model, or a planted organism):
    one id scheme and one set of labels, so that every audit reads them alike."""
    return [
        Transcript(
            id=f"{r.id}:{tier}:{k}",
            tier=tier,
            request_id=r.id,
            request=r.request,
            completion=text,
            meta={**(meta or {}), "seed": seed, "sample": k, "harmful": r.harmful, "category": r.category},
        )
        for (r, tier, k), text in zip(jobs, completions, strict=True)
    ]
