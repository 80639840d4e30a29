"""The output reward, always on: the paper's helpful-only preference-model stand-in."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from aflab.config import PosInt, Strict
from aflab.mitigations.base import Mitigation, TrainContext, register
from aflab.mitigations.rewards import Compliance, FormatPenalty, OutputLength, RewardTerm


class OutputRewardOptions(Strict):
    """Compliance of the output, a format penalty for missing or broken tags and a penalty on
    over-long outputs."""

    format_penalty: Annotated[float, Field(ge=0)] = 1.0
    max_output_words: PosInt = 120
    length_weight: Annotated[float, Field(ge=0)] = 0.01


@register("output")
class OutputReward(Mitigation):
    description = "compliance of the output, minus format and output-length penalties (every arm's base reward)"
    Options = OutputRewardOptions
    audit_for = ("gap", "hidden_gap", "oracle_af", "rationalised")

    def reward_terms(self, ctx: TrainContext) -> list[RewardTerm]:
        o: OutputRewardOptions = self.options  # type: ignore[assignment]
        return [
            Compliance("compliance", 1.0),
            FormatPenalty("format", o.format_penalty),
            OutputLength("output_length", o.length_weight, o.max_output_words),
        ]
