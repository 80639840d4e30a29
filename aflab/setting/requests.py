"""The request set: synthetic *descriptions* of harmful and benign requests, with a seeded split.

The split is a pure function of (seed, id), so it never depends on file order or on which requests
are added later, and it is stored in the data file so other tools see the same split.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from aflab.io import load_records

SPLIT_SEED = 20241218  # the day Greenblatt et al. appeared; fixed so the shipped split is stable
TEST_FRACTION = 0.3
DATA_FILE = "requests.jsonl"


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


def split_of(request_id: str, seed: int = SPLIT_SEED, test_fraction: float = TEST_FRACTION) -> str:
    digest = hashlib.sha256(f"{seed}:{request_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    return "test" if u < test_fraction else "train"


def shipped_path() -> Path:
    return Path(str(resources.files("aflab.setting") / "data" / DATA_FILE))


def load_requests(path: str | Path | None = None) -> list[Request]:
    return load_records(Path(path) if path else shipped_path(), Request)


def select(requests: list[Request], split: str, harmful: bool | None = None) -> list[Request]:
    return [r for r in requests if r.split == split and (harmful is None or r.harmful == harmful)]


def evaluation_requests(include_benign: bool, limit: int | None) -> list[Request]:
    """What every evaluation samples (before RL, an arm's final evaluation, a planted organism): the
    held-out test split, harmful requests and, if asked, benign ones, the first `limit` of them."""
    return [r for r in select(load_requests(), "test") if r.harmful or include_benign][:limit]
