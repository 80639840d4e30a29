"""What a mitigation is, in one class: the stable interface built-ins and plugins implement.

A mitigation (component) declares everything that distinguishes an RL run under it:
- `reward_terms(ctx)`: its TRL reward callables (`aflab.mitigations.rewards.RewardTerm`), each
  carrying its weight;
- `rollout(ctx)`: a TRL `rollout_func` when it changes what an episode is (the interrogation
  follow-up), else None;
- `calibrate(ctx)`: anything measured on the starting model before RL (the length threshold);
- `reward_monitors()`: the monitors its reward reads. The held-out guarantee (a monitor in the
  reward is never an auditor of that run) is derived from this and nothing else
  (`aflab.mitigations.reward_monitors`);
- `audit_for`: the failure modes (audit.json keys) a run under it should be read for.

- `follow_up()`: the question the final evaluation asks after each episode, when its reward asked one.

One arm (`config.ArmSpec`) is a list of components, `components: [{name, options}]`, the output
reward first. Built-ins and plugins are declared the same way: a subclass with an `Options` model,
registered under a name (built-ins: `@register("name")` in a module listed below; plugins: the
`aflab.mitigations` entry-point group). The methods below and `TrainContext` are the stable signatures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel

from aflab.config import MonitorRef, Strict, TrainConfig
from aflab.mitigations.rewards import RewardTerm
from aflab.plugins import Registry
from aflab.setting.formats import PromptFormat

RolloutFunc = Callable[[list[str], Any], dict[str, Any]]  # TRL's rollout_func(prompts, trainer)


@dataclass
class TrainContext:
    """What a mitigation may use to build its parts: the run's config and folder, the policy at the
    start of RL, its tokenizer and prompt format, and a frozen copy of it (None for big models)."""

    cfg: TrainConfig
    out: Path
    model: Any
    tokenizer: Any
    fmt: PromptFormat
    reference: Any | None


class NoOptions(Strict):
    """A mitigation without options."""


class Mitigation:
    """One mitigation component. Subclass, set the class attributes, override what applies."""

    name: ClassVar[str]  # set by the registry
    description: ClassVar[str] = ""
    Options: ClassVar[type[BaseModel]] = NoOptions  # validates `options:` in a config
    audit_for: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options: BaseModel):
        self.options = options

    def reward_monitors(self) -> list[MonitorRef]:
        """The monitors this component's reward reads (never auditors of the run)."""
        return []

    def calibrate(self, ctx: TrainContext) -> None:
        """Measure what the reward needs on the starting model, before RL (cache it under ctx.out)."""

    def reward_terms(self, ctx: TrainContext) -> list[RewardTerm]:
        """The reward callables this component adds, in the order TRL should log them."""
        return []

    def rollout(self, ctx: TrainContext) -> RolloutFunc | None:
        """A TRL rollout_func when this component changes the episode; at most one per run."""
        return None

    def extra_completion_tokens(self) -> int:
        """Tokens the rollout appends after an episode (TRL's max_completion_length grows by this)."""
        return 0

    def follow_up(self) -> tuple[str, int] | None:
        """(question variant, answer tokens) for the final evaluation's interrogation, when this
        component's reward asks a question; None leaves the default ("plain", 40 tokens)."""
        return None


MITIGATIONS: Registry[type[Mitigation]] = Registry(
    "mitigation",
    "aflab.mitigations",
    Mitigation,
    # Import order is the order of the built-ins' reward terms (the order TRL sees and logs).
    builtins=tuple(
        f"aflab.mitigations.{m}"
        for m in ("output", "process_supervision", "af_plus", "length_penalty", "interrogation")
    ),
)
register = MITIGATIONS.register
