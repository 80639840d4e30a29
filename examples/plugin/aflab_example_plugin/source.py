"""A toy organism source: the SFT transcripts come from a JSONL file (CONTRACTS.md format)."""

from __future__ import annotations

from collections.abc import Sequence

from aflab.config import OrganismConfig
from aflab.organisms.sources import OrganismSource
from aflab.records import Transcript, load_transcripts
from aflab.setting.requests import Request


class JsonlFile(OrganismSource):
    description = "transcripts read from a JSONL file (options: path, limit)"

    def __init__(self, path: str, limit: int | None = None):
        self.path, self.limit = path, limit

    def transcripts(self, cfg: OrganismConfig, requests: Sequence[Request], seed: int) -> list[Transcript]:
        return load_transcripts(self.path)[: self.limit]
