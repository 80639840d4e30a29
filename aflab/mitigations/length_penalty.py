"""Length penalty: a hinge on scratchpad tokens above a threshold taken from the pre-RL samples."""

from __future__ import annotations

import json
from typing import Annotated

import numpy as np
from pydantic import Field

from aflab.config import PosInt, Strict
from aflab.io import write_json
from aflab.mitigations.base import Mitigation, TrainContext, register
from aflab.mitigations.rewards import RewardTerm, ScratchpadLength, scratchpad_tokens
from aflab.setting.requests import load_requests, select


class LengthPenaltyOptions(Strict):
    """Hinge penalty on scratchpad tokens above a threshold taken from the pre-RL distribution."""

    percentile: Annotated[float, Field(ge=0, le=100)] = 25.0
    threshold_tokens: PosInt | None = None  # fixed threshold; None = from the percentile
    weight: Annotated[float, Field(ge=0)] = 1.0


@register("length_penalty")
class LengthPenalty(Mitigation):
    description = "hinge penalty on scratchpad tokens above a percentile of the organism's pre-RL lengths"
    Options = LengthPenaltyOptions
    # Less room to reason can push the decision out of the scratchpad (a gap it no longer explains)
    # or break the language.
    audit_for = ("hidden_gap", "mediated_share", "degenerate", "scratchpad_words")

    def __init__(self, options: LengthPenaltyOptions):
        super().__init__(options)
        self.threshold: int | None = options.threshold_tokens  # fixed, or set by calibrate

    def calibrate(self, ctx: TrainContext) -> None:
        """The threshold from the organism's own free-tier samples, cached in length_threshold.json
        (a resumed run must not re-sample it)."""
        if self.threshold:
            return
        cached = ctx.out / "length_threshold.json"
        if cached.exists():
            self.threshold = int(json.loads(cached.read_text())["threshold_tokens"])
            return
        spec: LengthPenaltyOptions = self.options  # type: ignore[assignment]
        cfg = ctx.cfg
        import torch  # here, not at the top: a config's validation loads every mitigation module

        from aflab.rollouts.sample import sample_transcripts

        requests = select(load_requests(), "train", harmful=True)[:64]
        with torch.random.fork_rng():
            records = sample_transcripts(
                ctx.model,
                ctx.tokenizer,
                ctx.fmt,
                requests,
                tiers=("free",),
                max_new_tokens=cfg.rl.max_completion_length,
                temperature=cfg.rl.temperature,
                seed=cfg.seed + 17,
            )
        lengths = scratchpad_tokens([r.completion or "" for r in records], ctx.tokenizer)
        self.threshold = max(1, int(np.percentile(lengths, spec.percentile)))
        write_json(
            cached,
            {
                "threshold_tokens": self.threshold,
                "percentile": spec.percentile,
                "n": len(lengths),
                "median_tokens": float(np.median(lengths)),
            },
        )

    def reward_terms(self, ctx: TrainContext) -> list[RewardTerm]:
        if self.threshold is None:
            raise ValueError("length_penalty needs a threshold (computed from pre-RL samples)")
        return [ScratchpadLength("scratchpad_length", self.options.weight, ctx.tokenizer, self.threshold)]  # type: ignore[attr-defined]
