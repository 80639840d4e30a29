"""The plain records that flow between stages (CONTRACTS.md, "Transcript record").

Stages talk only through these records serialised as JSONL, so each stage can be run, cached and
inspected alone. Unknown fields are kept (users add their own) but never interpreted.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aflab.io import load_records
from aflab.setting.parser import Parsed, format_completion, parse_completion
from aflab.setting.tiers import Tier


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
