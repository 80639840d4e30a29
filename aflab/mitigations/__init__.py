"""Mitigations: one class each (base.py), composed per arm; the held-out guarantee's one source.

An arm (`config.ArmSpec`) is its `components:`, the output reward first. `reward_monitors` is the
single place that says which monitors a run's reward reads; everything that keeps a monitor out of
a run's audit (config validation, the training probes, the sweep) asks it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from aflab.config import ArmSpec, MitigationRef, MonitorRef
from aflab.errors import AtKey
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
    "follow_up",
    "held_out_for",
    "register",
    "reward_monitors",
]


def check_ref(ref: MitigationRef) -> BaseModel:
    """A mitigation named in an arm's `components:`: registered, and its `Options` model accepts the
    options; returns them validated (raises ValueError, or AtKey for a problem below the name)."""
    return MITIGATIONS.check(ref)


BASE_REWARD = "output"  # every arm's base reward (output.py): first, whether an arm lists it or not


def components(spec: ArmSpec) -> list[Mitigation]:
    """The parts of one arm, in reward order: the base reward, then its `components:` as listed."""
    refs = [ref for ref in spec.components if ref != BASE_REWARD]
    base = next((ref for ref in spec.components if ref == BASE_REWARD), MitigationRef(BASE_REWARD))
    return [_build(ref) for ref in (base, *refs)]


def _build(ref: MitigationRef) -> Mitigation:
    try:
        options = check_ref(ref)  # what a config's loader checks: one place says what a valid ref is
    except AtKey as e:
        raise ValueError(f"{e.key}: {e}") from None
    return MITIGATIONS.get(ref)(options)


def follow_up(spec: ArmSpec) -> tuple[str, int] | None:
    """The question an arm's reward asks after each episode (variant, answer tokens), if any: the
    final evaluation asks that one, so that denial is measured with the question RL rewarded."""
    return next((q for c in components(spec) if (q := c.follow_up()) is not None), None)


def reward_monitors(spec: ArmSpec) -> list[MonitorRef]:
    """Every monitor the arm's reward reads, in component order."""
    return [m for c in components(spec) for m in c.reward_monitors()]


def held_out_for(spec: ArmSpec, candidates: Sequence[Any]) -> list[Any]:
    """The candidates (monitor names or refs) that are not part of the arm's reward: its auditors."""
    used = set(reward_monitors(spec))
    return [m for m in candidates if m not in used]


def build_terms(spec: ArmSpec, tokenizer: Any, length_threshold: int | None = None) -> list[RewardTerm]:
    """An arm's reward terms outside a training run (tests, benchmarks): nothing is calibrated, a
    length penalty uses `length_threshold` as its fixed threshold."""
    if length_threshold is not None:
        fixed = {"threshold_tokens": length_threshold}
        refs = [MitigationRef(r, {**r.options, **fixed}) if r == "length_penalty" else r for r in spec.components]
        spec = spec.model_copy(update={"components": refs})
    ctx = TrainContext(cfg=None, out=None, model=None, tokenizer=tokenizer, fmt=None, reference=None)  # type: ignore[arg-type]
    return [t for c in components(spec) for t in c.reward_terms(ctx)]
