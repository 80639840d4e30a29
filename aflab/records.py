"""The plain records that flow between stages (CONTRACTS.md, "Transcript record").

Stages talk only through these records serialised as JSONL, so each stage can be run, cached and
inspected alone. Unknown fields are kept (users add their own) but never interpreted.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aflab.errors import UserError, where
from aflab.io import iter_jsonl
from aflab.setting.parser import Parsed, format_completion, parse_completion

Tier = Literal["free", "paid"]
TIERS: tuple[Tier, Tier] = ("free", "paid")


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


class Request(BaseModel):
    """One synthetic request description (never harmful content itself)."""

    model_config = ConfigDict(extra="forbid")
    id: str
    category: str
    request: str
    harmful: bool
    split: Literal["train", "test"]

    @field_validator("request")
    @classmethod
    def _non_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("empty request text")
        return v


def pydantic_message(err: ValidationError) -> str:
    """One line from a pydantic error: the first problem, with its key path."""
    e = err.errors()[0]
    loc = ".".join(str(p) for p in e["loc"])
    msg = e["msg"].removeprefix("Value error, ")
    return f"field '{loc}': {msg}" if loc else msg


M = TypeVar("M", bound=BaseModel)


def load_records(path: str | Path, model: type[M]) -> list[M]:
    """Validate every JSONL line as `model` (which has an `id`); structural problems, duplicate ids
    included, are UserErrors naming the file and line."""
    records: list[M] = []
    first_line: dict[str, int] = {}
    for lineno, obj in iter_jsonl(path):
        try:
            rec = model.model_validate(obj)
        except ValidationError as e:
            raise UserError(f"{where(path, lineno)}: {pydantic_message(e)}") from None
        rid = rec.id  # type: ignore[attr-defined]
        if rid in first_line:
            raise UserError(f"{where(path, lineno)}: duplicate id {rid!r} (first seen on line {first_line[rid]})")
        first_line[rid] = lineno
        records.append(rec)
    return records


def load_transcripts(path: str | Path) -> list[Transcript]:
    return load_records(path, Transcript)
