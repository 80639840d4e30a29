"""Process supervision: penalise the scratchpad a monitor flags, reward += weight * log(1 - p_AF)."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from aflab.config import MonitorRef, Strict
from aflab.mitigations.base import Mitigation, TrainContext, register
from aflab.mitigations.rewards import MonitorTerm, RewardTerm
from aflab.monitors.base import get_monitor


class MonitorRewardOptions(Strict):
    """reward += sign * weight * log(p) of a monitor's score of the scratchpad, clipped at -clip."""

    monitor: MonitorRef = MonitorRef("keyword")
    weight: Annotated[float, Field(ge=0)] = 1.0
    clip: Annotated[float, Field(gt=0)] = 3.0


@register("process_supervision")
class ProcessSupervision(Mitigation):
    description = "reward += weight * log(1 - p_AF(scratchpad)) under a training monitor, clipped"
    Options = MonitorRewardOptions
    # Optimising against a monitor invites evading it: obfuscated faking that only held-out monitors
    # or the oracle still see, and a compliance gap the training monitor no longer explains.
    audit_for = ("obfuscation", "hidden_gap", "oracle_af", "recall_vs_oracle")
    sign: ClassVar[int] = -1  # -1: reward log(1 - p_AF); +1: reward log p_AF

    def reward_monitors(self) -> list[MonitorRef]:
        return [self.options.monitor]  # type: ignore[attr-defined]

    def reward_terms(self, ctx: TrainContext) -> list[RewardTerm]:
        s = self.options
        return [MonitorTerm(self.name, s.weight, get_monitor(s.monitor), s.clip, sign=self.sign)]  # type: ignore[attr-defined]
