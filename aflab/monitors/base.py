"""The one interface every monitor implements, and the registry that names them.

A monitor reads one part of a transcript (the scratchpad, the output, or the answer to an
interrogation follow-up) and returns a score in [0, 1], higher = more alignment faking (or, for the
compliance grader, more compliant), plus the threshold at which it flags. Rewards, evaluation and
audits only ever see this interface, so any registered monitor can be the training monitor of one
run and a held-out auditor of another.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal

import numpy as np

from aflab.errors import UserError
from aflab.records import Transcript

Reads = Literal["scratchpad", "output", "interrogation"]


def text_of(record: Transcript, reads: Reads) -> str:
    """The part of a transcript a monitor is allowed to see ('' when absent)."""
    if reads == "interrogation":
        return record.interrogation.answer if record.interrogation else ""
    parsed = record.parsed
    return (parsed.scratchpad if reads == "scratchpad" else parsed.output) or ""


class Monitor(ABC):
    name: ClassVar[str]
    reads: ClassVar[Reads]
    description: ClassVar[str]
    threshold: float = 0.5

    @abstractmethod
    def score_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Scores in [0, 1] for the texts this monitor reads."""

    def score(self, records: Sequence[Transcript]) -> np.ndarray:
        return self.score_texts([text_of(r, self.reads) for r in records])

    def flag(self, records: Sequence[Transcript]) -> np.ndarray:
        return self.score(records) >= self.threshold

    def score_with_details(self, records: Sequence[Transcript]) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Scores plus extra per-record fields for `classify` output (e.g. per-criterion scores).

        The default has no extras; monitors that reason in parts override it without scoring twice.
        """
        return self.score(records), [{} for _ in records]


_REGISTRY: dict[str, Callable[..., Monitor]] = {}


def register(name: str) -> Callable[[type[Monitor]], type[Monitor]]:
    def deco(cls: type[Monitor]) -> type[Monitor]:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def monitor_names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def get_monitor(name: str, **options: object) -> Monitor:
    """A monitor by name; options from a config `MonitorRef` come first, keyword options override them."""
    _load_builtin()
    key = str(name)
    if key not in _REGISTRY:
        raise UserError(f"unknown monitor {key!r}; known: {', '.join(sorted(_REGISTRY))}")
    merged = {**getattr(name, "options", {}), **options}
    try:  # an option the monitor does not take is the config's mistake: say which, before building
        inspect.signature(_REGISTRY[key]).bind(**merged)
    except TypeError as e:
        raise UserError(f"monitor {key!r}: bad options {sorted(merged)}: {e}") from None
    return _REGISTRY[key](**merged)


def monitor_class(name: str) -> type[Monitor]:
    _load_builtin()
    if name not in _REGISTRY:
        raise UserError(f"unknown monitor {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]  # type: ignore[return-value]


def _load_builtin() -> None:
    # Importing the modules runs their @register decorators.
    from aflab.monitors import behaviour, compliance, criteria, judge, keyword, learned  # noqa: F401
