"""The interrogation rollout: episode, then a follow-up question, then the answer.

TRL's `rollout_func` hook returns, per prompt, the token ids the loss sees plus an `env_mask`:
1 for tokens the policy wrote (its episode, and its answer when the policy answers), 0 for the
follow-up question, which nobody trained should learn to write. With `answerer="frozen"` a frozen
copy of the starting model answers from the transcript: its answer is scored but never trained, so
the policy cannot learn to lie, only to stop faking (the paper's best variant).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from aflab.config import RLSpec
from aflab.setting.formats import PromptFormat
from aflab.setting.prompts import INTERROGATION_QUESTIONS


def _generate_ids(
    model: Any, tokenizer: Any, inputs: Sequence[list[int]], max_new: int, temperature: float
) -> list[list[int]]:
    """Left-padded batched sampling; returns new ids per row, cut after the first eos."""
    device = next(model.parameters()).device
    width = max(len(x) for x in inputs)
    pad = tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(x)) + list(x) for x in inputs], device=device)
    mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in inputs], device=device)
    with torch.no_grad():
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=True,
            temperature=temperature,
            top_k=0,
            max_new_tokens=max_new,
            pad_token_id=pad,
            eos_token_id=tokenizer.eos_token_id,
            cache_implementation="static",  # see rollouts/sample.py
        )
    rows = []
    for row in out[:, width:].tolist():
        if tokenizer.eos_token_id in row:
            row = row[: row.index(tokenizer.eos_token_id) + 1]
        rows.append([t for t in row if t != pad] if pad != tokenizer.eos_token_id else row)
    return rows


def _join_turn(episode: list[int], question: list[int], eos: int) -> list[int]:
    """The follow-up's ids after an episode: exactly one end-of-turn between the two, and it belongs
    to the episode when the policy wrote it (so it is trained) rather than to the question."""
    if episode and episode[-1] == eos:
        return question[1:] if question and question[0] == eos else question
    return question if question and question[0] == eos else [eos, *question]


def make_rollout(
    fmt: PromptFormat, tokenizer: Any, variant: str, answer_tokens: int, rl: RLSpec, frozen: Any | None
) -> Any:
    """TRL's rollout_func for an interrogated arm: the episode, then question `variant` and an answer
    of at most `answer_tokens` (by the policy, or by `frozen`, the starting model, which cannot learn)."""
    question = INTERROGATION_QUESTIONS[variant]

    def rollout(prompts: list[str], trainer: Any) -> dict[str, Any]:
        policy = trainer.accelerator.unwrap_model(trainer.model)
        was_training = policy.training
        policy.eval()
        prompt_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        episode_ids = _generate_ids(policy, tokenizer, prompt_ids, rl.max_completion_length, rl.temperature)
        episodes = tokenizer.batch_decode(episode_ids, skip_special_tokens=True)
        question_ids = tokenizer(fmt.followup("", "free", question), add_special_tokens=False)["input_ids"]
        follow_ids = [_join_turn(ep, question_ids, tokenizer.eos_token_id) for ep in episode_ids]
        answerer = frozen if frozen is not None else policy
        answer_ids = _generate_ids(
            answerer,
            tokenizer,
            [p + e + f for p, e, f in zip(prompt_ids, episode_ids, follow_ids, strict=True)],
            answer_tokens,
            rl.temperature,
        )
        if was_training:
            policy.train()
        trained_answer = 1 if frozen is None else 0
        return {
            "prompt_ids": prompt_ids,
            "completion_ids": [e + f + a for e, f, a in zip(episode_ids, follow_ids, answer_ids, strict=True)],
            "logprobs": None,
            "env_mask": [
                [1] * len(e) + [0] * len(f) + [trained_answer] * len(a)
                for e, f, a in zip(episode_ids, follow_ids, answer_ids, strict=True)
            ],
            "episode": episodes,
            "interrogation_answer": [
                fmt.clean_answer(tokenizer.decode(a, skip_special_tokens=True)) for a in answer_ids
            ],
        }

    return rollout
