"""The request set: synthetic *descriptions* of harmful and benign requests, with a seeded split.

The split is a pure function of (seed, id), so it never depends on file order or on which requests
are added later, and it is stored in the data file so other tools see the same split.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from aflab.errors import UserError, where
from aflab.io import iter_jsonl
from aflab.records import Request, pydantic_message

SPLIT_SEED = 20241218  # the day Greenblatt et al. appeared; fixed so the shipped split is stable
TEST_FRACTION = 0.3
DATA_FILE = "requests.jsonl"


def split_of(request_id: str, seed: int = SPLIT_SEED, test_fraction: float = TEST_FRACTION) -> str:
    digest = hashlib.sha256(f"{seed}:{request_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    return "test" if u < test_fraction else "train"


def shipped_path() -> Path:
    return Path(str(resources.files("aflab.setting") / "data" / DATA_FILE))


def load_requests(path: str | Path | None = None) -> list[Request]:
    path = Path(path) if path else shipped_path()
    out: list[Request] = []
    seen: set[str] = set()
    for lineno, obj in iter_jsonl(path):
        try:
            req = Request.model_validate(obj)
        except ValidationError as e:
            raise UserError(f"{where(path, lineno)}: {pydantic_message(e)}") from None
        if req.id in seen:
            raise UserError(f"{where(path, lineno)}: duplicate request id {req.id!r}")
        seen.add(req.id)
        out.append(req)
    return out


def select(requests: list[Request], split: str, harmful: bool | None = None) -> list[Request]:
    return [r for r in requests if r.split == split and (harmful is None or r.harmful == harmful)]
