"""The output reward, always on: the paper's helpful-only preference-model stand-in."""

from __future__ import annotations

from aflab.config import OutputRewardSpec
from aflab.mitigations.base import Mitigation, TrainContext, register
from aflab.mitigations.rewards import Compliance, FormatPenalty, OutputLength, RewardTerm


@register("output")
class OutputReward(Mitigation):
    description = "compliance of the output, minus format and output-length penalties (every arm's base reward)"
    Options = OutputRewardSpec
    section = "output"
    audit_for = ("gap", "hidden_gap", "oracle_af", "rationalised")

    def reward_terms(self, ctx: TrainContext) -> list[RewardTerm]:
        o: OutputRewardSpec = self.options  # type: ignore[assignment]
        return [
            Compliance("compliance", 1.0),
            FormatPenalty("format", o.format_penalty),
            OutputLength("output_length", o.length_weight, o.max_output_words),
        ]
