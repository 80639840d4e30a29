"""How a conversation is rendered as text for one model: compact (from-scratch) or chat (real).

Everything that builds model inputs (SFT data, sampling, RL rollouts, interrogation) goes through
one `PromptFormat`, so the organism is trained on exactly the text it is later evaluated on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aflab.setting.prompts import ANSWER_END, chat_messages, compact_context, compact_followup
from aflab.setting.tiers import Tier

END_TOKEN = "<|end|>"  # end of a turn in the compact format (the tokenizer's eos)


@dataclass(frozen=True)
class PromptFormat:
    kind: str
    tokenizer: Any = None

    @property
    def end_of_turn(self) -> str:
        return END_TOKEN if self.kind == "compact" else self.tokenizer.eos_token

    def prompt(self, request: str, tier: Tier) -> str:
        if self.kind == "compact":
            return compact_context(request, tier)
        return self.tokenizer.apply_chat_template(
            chat_messages(request, tier), tokenize=False, add_generation_prompt=True
        )

    def followup(self, request: str, tier: Tier, question: str) -> str:
        """Text appended right after a completion (its end-of-turn included) to ask a follow-up."""
        if self.kind == "compact":
            return END_TOKEN + compact_followup(question)
        marker = "\x00COMPLETION\x00"
        msgs = [
            *chat_messages(request, tier),
            {"role": "assistant", "content": marker},
            {"role": "user", "content": question},
        ]
        full = self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        return full[full.index(marker) + len(marker) :]

    @property
    def answer_end(self) -> str:
        """What the model writes after its interrogation answer before the end of turn."""
        return ANSWER_END if self.kind == "compact" else ""

    def clean_answer(self, text: str) -> str:
        return text.split(ANSWER_END)[0].strip() if self.kind == "compact" else text.strip()
