"""Mitigations: one class each (base.py), composed per arm; the held-out guarantee's one source.

An arm (`MitigationSpec`) is the output reward, each built-in whose section is set, then its
`plugins:`. `reward_monitors` is the single place that says which monitors a run's reward reads;
everything that keeps a monitor out of a run's audit (config validation, the training probes, the
sweep) asks it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from aflab.config import AtKey, MitigationRef, MitigationSpec, MonitorRef
from aflab.mitigations.base import MITIGATIONS, Mitigation, RolloutFunc, TrainContext, register
from aflab.mitigations.rewards import RewardTerm

__all__ = [
    "MITIGATIONS",
    "Mitigation",
    "RolloutFunc",
    "TrainContext",
    "build_terms",
    "check_ref",
    "components",
    "held_out_for",
    "register",
    "reward_monitors",
]


def check_ref(ref: MitigationRef) -> None:
    """A mitigation named in an arm's `plugins:`: registered, not a built-in with its own section, and
    its `Options` model accepts the options (raises ValueError or AtKey; see `monitors.base.check_ref`)."""
    cls = MITIGATIONS.find(str(ref))
    if cls is None:
        names = MITIGATIONS.names()
        plugins = [n for n in names if MITIGATIONS.get(n).section is None]
        sections = [n for n in names if n not in plugins]
        raise ValueError(
            f"unknown mitigation {str(ref)!r}; known: {', '.join(plugins) or 'none installed'}"
            f" (built-ins are set by their own sections: {', '.join(sections)})"
        )
    if cls.section is not None:
        raise ValueError(f"mitigation {str(ref)!r} is configured by its own section `{cls.section}:`, not plugins")
    try:
        cls.Options.model_validate(ref.options)
    except ValidationError as e:
        first = e.errors()[0]
        key = ".".join(str(p) for p in ("options", *first["loc"]))
        msg = "unknown key" if first["type"] == "extra_forbidden" else first["msg"].removeprefix("Value error, ")
        raise AtKey(key, f"mitigation {str(ref)!r}: {msg}") from None


def components(spec: MitigationSpec) -> list[Mitigation]:
    """The parts of one arm, in reward order: built-ins whose section is set, then the plugins."""
    built = [cls(getattr(spec, cls.section)) for cls in MITIGATIONS.builtins() if _configured(spec, cls)]
    return built + [_plugin(ref) for ref in spec.plugins]


def _configured(spec: MitigationSpec, cls: type[Mitigation]) -> bool:
    return cls.section is not None and getattr(spec, cls.section) is not None


def _plugin(ref: MitigationRef) -> Mitigation:
    try:
        check_ref(ref)  # what a config's loader checks: one place says what a valid plugin ref is
    except AtKey as e:
        raise ValueError(f"{e.key}: {e}") from None
    cls = MITIGATIONS.get(ref)
    return cls(cls.Options.model_validate(ref.options))


def reward_monitors(spec: MitigationSpec) -> list[MonitorRef]:
    """Every monitor the arm's reward reads, in component order."""
    return [m for c in components(spec) for m in c.reward_monitors()]


def held_out_for(spec: MitigationSpec, candidates: Sequence[Any]) -> list[Any]:
    """The candidates (monitor names or refs) that are not part of the arm's reward: its auditors."""
    used = set(reward_monitors(spec))
    return [m for m in candidates if m not in used]


def build_terms(spec: MitigationSpec, tokenizer: Any, length_threshold: int | None = None) -> list[RewardTerm]:
    """An arm's reward terms outside a training run (tests, benchmarks): nothing is calibrated, a
    length penalty uses `length_threshold` as its fixed threshold."""
    if spec.length_penalty is not None and length_threshold is not None:
        fixed = spec.length_penalty.model_copy(update={"threshold_tokens": length_threshold})
        spec = spec.model_copy(update={"length_penalty": fixed})
    ctx = TrainContext(cfg=None, out=None, model=None, tokenizer=tokenizer, fmt=None, reference=None)  # type: ignore[arg-type]
    return [t for c in components(spec) for t in c.reward_terms(ctx)]
