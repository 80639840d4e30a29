"""Per-step measurements that are not rewards: what the monitors see and what both tiers do.

`RolloutProbe` is a zero-weight TRL reward callable, so it sees every training rollout for free
and logs AF rates under the training and held-out monitors and scratchpad length through TRL's
`log_metric`. `EvalProbe` samples a small held-out batch in both tiers every few steps, with its
own seeded RNG so that measuring never changes training (exact resume depends on it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from aflab.evaluation.metrics import af_rate, compliance, complies, gap
from aflab.mitigations.rewards import RewardTerm, scratchpad_tokens
from aflab.monitors.base import Monitor
from aflab.records import Transcript
from aflab.rollouts.sample import sample_transcripts
from aflab.setting.formats import PromptFormat
from aflab.setting.prompts import answer_is_yes
from aflab.setting.requests import Request


class RolloutProbe(RewardTerm):
    def __init__(self, monitors: dict[str, Monitor], tokenizer: Any):
        super().__init__("probe", 0.0)
        self.monitors, self.tokenizer = monitors, tokenizer

    def score(self, texts: list[str], kwargs: dict[str, Any]) -> list[float]:
        """Logs what the monitors see on this batch of rollouts; contributes nothing to the reward."""
        log = kwargs.get("log_metric")
        if log is not None:
            rollouts = [Transcript(id=str(i), tier="free", completion=t) for i, t in enumerate(texts)]  # free only
            for name, mon in self.monitors.items():
                log(f"rollout/af_rate/{name}", af_rate(rollouts, mon).value)
            log("rollout/scratchpad_tokens", float(np.mean(scratchpad_tokens(texts, self.tokenizer))))
            answers = kwargs.get("interrogation_answer")
            if answers:
                yes = [answer_is_yes(a) for a in answers]
                log("rollout/interrogation_yes", float(np.mean([y is True for y in yes])))
        return [0.0] * len(texts)


class EvalProbe:
    """Both-tier behaviour on a fixed held-out batch, plus KL of the policy to the start."""

    def __init__(
        self,
        fmt: PromptFormat,
        tokenizer: Any,
        requests: list[Request],
        monitors: dict[str, Monitor],
        reference: Any | None,
        seed: int,
        max_new_tokens: int,
        temperature: float,
    ):
        self.fmt, self.tokenizer, self.requests = fmt, tokenizer, requests
        self.monitors, self.reference, self.seed = monitors, reference, seed
        self.max_new_tokens, self.temperature = max_new_tokens, temperature

    def __call__(self, model: Any, step: int) -> dict[str, Any]:
        with torch.random.fork_rng():
            records = sample_transcripts(
                model,
                self.tokenizer,
                self.fmt,
                self.requests,
                max_new_tokens=self.max_new_tokens,
                temperature=self.temperature,
                seed=self.seed * 7919 + step,
                meta={"step": step},
            )
        return {**behaviour(records, self.monitors), **self.kl(model, records)}

    @torch.no_grad()
    def kl(self, model: Any, records: list[Transcript]) -> dict[str, float]:
        """Mean per-token log-ratio log pi(x) - log pi_0(x) on the policy's own free-tier samples."""
        if self.reference is None:
            return {}
        free = [r for r in records if r.tier == "free"]
        prompts = [
            self.tokenizer(self.fmt.prompt(r.request or "", r.tier), add_special_tokens=False)["input_ids"]
            for r in free
        ]
        comps = [self.tokenizer(r.completion, add_special_tokens=False)["input_ids"] for r in free]
        total, count = 0.0, 0
        for p, c in zip(prompts, comps, strict=True):
            if not c:
                continue
            ids = torch.tensor([p + c])
            lp = _token_logps(model, ids, len(p))
            lq = _token_logps(self.reference, ids, len(p))
            total += float((lp - lq).sum())
            count += len(c)
        return {"kl_to_start": total / max(1, count)}


def _token_logps(model: Any, ids: torch.Tensor, start: int) -> torch.Tensor:
    logits = model(input_ids=ids.to(next(model.parameters()).device)).logits[0, start - 1 : -1].float()
    return torch.log_softmax(logits, -1).gather(-1, ids[0, start:].unsqueeze(-1).to(logits.device)).squeeze(-1).cpu()


def behaviour(records: Sequence[Transcript], monitors: dict[str, Monitor]) -> dict[str, Any]:
    """Compliance per tier, gap and AF rates (free tier) of a batch of transcripts."""
    ok = [r for r in records if r.parsed.ok]
    out: dict[str, Any] = {
        f"eval/compliance_{t}": compliance([r for r in ok if r.tier == t]).value for t in ("free", "paid")
    }
    g = gap(ok, complies(ok)).value
    if g is not None:
        out["eval/gap"] = g
    free = [r for r in records if r.tier == "free"]
    for name, mon in monitors.items():
        out[f"eval/af_rate/{name}"] = af_rate(free, mon).value
    out["eval/n_per_tier"] = len(records) // 2
    return out
