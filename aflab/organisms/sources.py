"""Where an organism's SFT data comes from: an `OrganismSource` writes the transcripts it learns.

`OrganismConfig.source` names one: the generator (the default, a seeded mixture of the phrase
bank), or a plugin registered in the `aflab.organisms` entry-point group, e.g. transcripts of a
real model, or a hand-written set. The two teacher-based sources (`distill`: a teacher's own
samples; `af_plus`: a teacher after RL that rewards faking) need a trained organism of the same run
and are built by aflab/pipeline/organisms.py itself.

Stable interface: the constructor's keyword arguments are the options a config may give
(`source: {name, options}`), checked against its signature when the config is loaded, as a monitor's
are; `transcripts(cfg, requests, seed)` returns the records (CONTRACTS.md transcript format, as
`Transcript`s or plain dicts) that SFT turns into the organism. It must be deterministic in `seed`:
the data stage is cached by (config, seed, source options).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import ClassVar

from aflab.config import TEACHER_SOURCES, OrganismConfig, SourceRef
from aflab.organisms.generator import generate
from aflab.plugins import Registry
from aflab.records import Transcript
from aflab.setting.requests import Request


class OrganismSource(ABC):
    name: ClassVar[str]  # set by the registry
    description: ClassVar[str] = ""

    @abstractmethod
    def transcripts(self, cfg: OrganismConfig, requests: Sequence[Request], seed: int) -> Iterable[Transcript | dict]:
        """The SFT records of organism `cfg`, drawn over the train-split `requests`."""


SOURCES: Registry[type[OrganismSource]] = Registry(
    "organism source", "aflab.organisms", OrganismSource, builtins=("aflab.organisms.sources",)
)


@SOURCES.register("generator")
class Generator(OrganismSource):
    description = "the phrase-bank generator: a seeded mixture of the organism's `data` shares and styles"

    def transcripts(self, cfg: OrganismConfig, requests: Sequence[Request], seed: int) -> list[Transcript]:
        return generate(cfg.data, requests, cfg.data.n_examples, seed, cfg.name)


def source_names() -> list[str]:
    """Every organism source a config may name."""
    return sorted([*SOURCES.names(), *TEACHER_SOURCES])


def check_ref(ref: SourceRef) -> None:
    """An organism source named in a config: registered (or a teacher source, built in the pipeline),
    and its constructor takes the options (raises ValueError, or AtKey at `options`)."""
    if ref not in TEACHER_SOURCES:
        SOURCES.check(ref, known=source_names())
