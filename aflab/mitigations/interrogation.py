"""Interrogation: after each episode ask "did you comply to avoid modification?", reward "no"."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from aflab.config import InterrogationVariant, PosInt, Strict
from aflab.errors import UserError
from aflab.mitigations.base import Mitigation, RolloutFunc, TrainContext, register
from aflab.mitigations.rewards import InterrogationAnswer, RewardTerm


class InterrogationOptions(Strict):
    """Ask a follow-up after each episode; reward "no", penalise "yes"."""

    variant: InterrogationVariant = "plain"
    answerer: Literal["policy", "frozen"] = "policy"  # frozen = the starting model answers: it cannot learn to lie
    weight: Annotated[float, Field(ge=0)] = 1.0
    max_answer_tokens: PosInt = 40


@register("interrogation")
class Interrogation(Mitigation):
    description = "a follow-up question after each episode (policy or frozen answerer); +1 for 'no', -1 for 'yes'"
    Options = InterrogationOptions
    # Rewarding "no" can teach denial rather than honesty: a denial that depends on having faked.
    audit_for = ("denial_contrast", "interrogation_yes", "oracle_af")

    def reward_terms(self, ctx: TrainContext) -> list[RewardTerm]:
        return [InterrogationAnswer("interrogation", self.options.weight)]  # type: ignore[attr-defined]

    def rollout(self, ctx: TrainContext) -> RolloutFunc:
        from aflab.rollouts.interrogation import make_rollout

        spec: InterrogationOptions = self.options  # type: ignore[assignment]
        if spec.answerer == "frozen" and ctx.reference is None:
            raise UserError(f"{ctx.cfg.name}: answerer 'frozen' needs a model small enough to copy")
        frozen = ctx.reference if spec.answerer == "frozen" else None
        return make_rollout(ctx.fmt, ctx.tokenizer, spec.variant, spec.max_answer_tokens, ctx.cfg.rl, frozen)

    def follow_up(self) -> tuple[str, int]:
        """The final evaluation asks this arm the question its reward asked."""
        spec: InterrogationOptions = self.options  # type: ignore[assignment]
        return spec.variant, spec.max_answer_tokens

    def extra_completion_tokens(self) -> int:
        return self.options.max_answer_tokens + 48  # type: ignore[attr-defined]  # the answer + the question
