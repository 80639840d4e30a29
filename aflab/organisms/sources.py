"""Where an organism comes from: an `OrganismSource` writes the transcripts it learns (or the model).

`OrganismConfig.source` names one: the generator (the default, a seeded mixture of the phrase
bank), a source built from a teacher organism of the same run (`distill`: the teacher's own
samples; `af_plus`: the teacher after RL that rewards faking; aflab/training/teacher_sources.py), or
a plugin registered in the `aflab.organisms` entry-point group, e.g. transcripts of a real model, or
a hand-written set. All are configured the same way, `source: {name, options}`.

Stable interface: the constructor's keyword arguments are the options a config may give, checked
against its signature when the config is loaded, as a monitor's are; `transcripts(cfg, requests,
seed)` returns the records (CONTRACTS.md transcript format, as `Transcript`s or plain dicts) that SFT
turns into the organism. It must be deterministic in `seed`: the data stage is cached by (config,
seed, source options). A source that needs more overrides `build` instead: it is given the teacher's
model folder and the task's progress reporter, and writes the data stage, or with `makes = "model"`
the model itself (no data stage, no SFT).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel

from aflab.config import OrganismConfig, SourceRef
from aflab.io import write_jsonl
from aflab.organisms.generator import generate
from aflab.plugins import Registry
from aflab.progress import Reporter
from aflab.records import Transcript
from aflab.setting.requests import Request, load_requests, select


class OrganismSource:
    name: ClassVar[str]  # set by the registry
    description: ClassVar[str] = ""
    # Built from another organism of the run, the config's `teacher:`: its stages wait for the
    # teacher's replica and its cache keys include the teacher's model.
    needs_teacher: ClassVar[bool] = False
    # "data": the source writes SFT transcripts and aflab trains the model on them; "model": the
    # source writes the model folder itself.
    makes: ClassVar[Literal["data", "model"]] = "data"

    def transcripts(self, cfg: OrganismConfig, requests: Sequence[Request], seed: int) -> Iterable[Transcript | dict]:
        """The SFT records of organism `cfg`, drawn over the train-split `requests`."""
        raise NotImplementedError(f"organism source {self.name!r} defines neither transcripts() nor build()")

    def build(
        self, folder: Path, cfg: OrganismConfig, seed: int, teacher: Path | None, reporter: Reporter
    ) -> dict[str, Any] | None:
        """Write this source's stage into `folder`: data.jsonl (by default, its `transcripts` over the
        train split), or for `makes = "model"` the model folder, returning its info. `teacher` is the
        teacher replica's model folder, for a source that `needs_teacher`."""
        write_jsonl(folder / "data.jsonl", self.transcripts(cfg, select(load_requests(), "train"), seed))
        return None


SOURCES: Registry[type[OrganismSource]] = Registry(
    "organism source", "aflab.organisms", OrganismSource, builtins=("aflab.organisms.sources",)
)


@SOURCES.register("generator")
class Generator(OrganismSource):
    description = "the phrase-bank generator: a seeded mixture of the organism's `data` shares and styles"

    def transcripts(self, cfg: OrganismConfig, requests: Sequence[Request], seed: int) -> list[Transcript]:
        return generate(cfg.data, requests, cfg.data.n_examples, seed, cfg.name)


def make_source(ref: SourceRef) -> OrganismSource:
    """The source a config names, built from its validated options (nested models as models)."""
    return SOURCES.get(ref)(**dict(SOURCES.check(ref)))


def check_ref(ref: SourceRef) -> BaseModel:
    """An organism source named in a config: registered, and its constructor takes the options;
    returns them validated (raises ValueError, or AtKey for a problem below the name)."""
    return SOURCES.check(ref)
