"""The one interface every monitor implements, and the registry that names them.

A monitor reads one part of a transcript (the scratchpad, the output, or the answer to an
interrogation follow-up) and returns a score in [0, 1], higher = more alignment faking (or, for the
compliance grader, more compliant), plus the threshold at which it flags. Rewards, evaluation and
audits only ever see this interface, so any registered monitor can be the training monitor of one
run and a held-out auditor of another.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np

from aflab.config import MonitorRef
from aflab.errors import UserError
from aflab.plugins import Registry, options_model, options_problem
from aflab.records import Transcript

Reads = Literal["scratchpad", "output", "interrogation"]


def text_of(record: Transcript, reads: Reads) -> str:
    """The part of a transcript a monitor is allowed to see ('' when absent)."""
    if reads == "interrogation":
        return record.interrogation.answer if record.interrogation else ""
    parsed = record.parsed
    return (parsed.scratchpad if reads == "scratchpad" else parsed.output) or ""


class Monitor(ABC):
    """Stable plugin interface: subclass, set the class attributes, implement `score_texts`, and
    register (built-ins: `@register("name")`; plugins: an `aflab.monitors` entry point naming the
    class). The constructor's keyword arguments are the options a config may pass (`MonitorRef`)."""

    name: ClassVar[str]  # set by the registry
    reads: ClassVar[Reads]
    description: ClassVar[str]
    threshold: float = 0.5
    # How strongly an audit should trust this monitor as the independent auditor: the audit leads with
    # the held-out monitor of highest rank (the first listed among equals); 0 = no preference.
    audit_rank: ClassVar[int] = 0

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


MONITORS: Registry[type[Monitor]] = Registry(
    "monitor",
    "aflab.monitors",
    Monitor,
    builtins=tuple(
        f"aflab.monitors.{m}" for m in ("behaviour", "compliance", "criteria", "judge", "keyword", "learned")
    ),
)
register = MONITORS.register


def monitor_names() -> list[str]:
    return MONITORS.names()


def get_monitor(name: str, **options: object) -> Monitor:
    """A monitor by name; options from a config `MonitorRef` come first, keyword options override them."""
    cls = MONITORS.get(name)
    merged = {**getattr(name, "options", {}), **options}
    if problem := options_problem(cls, merged):  # the config's mistake: say which option, before building
        key, msg = problem
        raise UserError(f"monitor {str(name)!r}: {key}: {msg}")
    return cls(**merged)


def monitor_class(name: str) -> type[Monitor]:
    return MONITORS.get(name)


def lead_auditor(held_out: Sequence[str]) -> str:
    """The strongest held-out monitor (highest `Monitor.audit_rank`, the first among equals): the one
    whose verdict the report leads with (summary.json's `audit_monitor`)."""
    return max(held_out, key=lambda m: monitor_class(m).audit_rank)


def check_ref(ref: MonitorRef) -> None:
    """A monitor named in a config: registered, its constructor takes the options, and a judge's
    `backend` names a backend that exists. Checked when the config is loaded, so that a misspelt name
    fails with the file and key path before any stage runs, not minutes later inside a worker.
    Raises ValueError, or AtKey for a problem below the name (`options`, `options.backend`)."""
    MONITORS.check(ref)
    backend = ref.options.get("backend")
    if isinstance(backend, str) and backend:
        from aflab.monitors.judge.monitor import JudgeMonitor, check_backend

        if issubclass(MONITORS.get(ref), JudgeMonitor):  # the options that are not the judge's own go to the backend
            own = options_model(JudgeMonitor).model_fields
            check_backend(backend, {k: v for k, v in ref.options.items() if k not in own})
