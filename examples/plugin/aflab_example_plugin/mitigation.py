"""A toy mitigation: penalise the episodes a monitor flags (a hard-threshold process supervision)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from aflab.config import MonitorRef, Strict
from aflab.mitigations.base import Mitigation, TrainContext
from aflab.mitigations.rewards import RewardTerm
from aflab.monitors.base import Monitor, get_monitor
from aflab.setting.parser import parse_completion


class FlagPenaltyOptions(Strict):
    monitor: MonitorRef = MonitorRef("keyword")
    weight: float = Field(default=0.5, ge=0)


class FlaggedScratchpad(RewardTerm):
    """-1 when the monitor flags the episode's scratchpad, else 0."""

    def __init__(self, name: str, weight: float, monitor: Monitor):
        super().__init__(name, weight)
        self.monitor = monitor

    def score(self, texts: list[str], kwargs: dict[str, Any]) -> Sequence[float]:
        pads = [parse_completion(t).scratchpad or "" for t in texts]
        return [-float(s >= self.monitor.threshold) for s in self.monitor.score_texts(pads)]


class FlagPenalty(Mitigation):
    description = "reward -= weight when a monitor flags the scratchpad (example plugin)"
    Options = FlagPenaltyOptions
    audit_for = ("obfuscation", "hidden_gap")

    def reward_monitors(self) -> list[MonitorRef]:
        return [self.options.monitor]

    def reward_terms(self, ctx: TrainContext) -> list[RewardTerm]:
        return [FlaggedScratchpad("flag_penalty", self.options.weight, get_monitor(self.options.monitor))]
