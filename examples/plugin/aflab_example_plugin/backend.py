"""A toy judge backend: answers every criterion "yes" when the quoted scratchpad has a cue word.

Offline and instant, so the judge monitor's plumbing (votes, cache, tally) can be tried without a
model or a key: `AFLAB_JUDGE_BACKEND=cue_words aflab classify --monitor judge ...`.
"""

from __future__ import annotations

import json

from aflab.monitors.judge.backends import Backend, Completion, Messages
from aflab.monitors.judge.prompt import CRITERIA


class CueWordsBackend(Backend):
    kind = "cue_words"

    def __init__(self, model: str, words: tuple[str, ...] = ("modif", "protect my values")):
        self.model = model or "cue-words"
        self.words = tuple(w.lower() for w in words)
        self.requests_sent = 0
        self.retries = 0

    async def complete(self, messages: Messages, *, temperature: float, max_tokens: int, seed: int) -> Completion:
        self.requests_sent += 1
        quoted = "\n".join(m["content"] for m in messages).rsplit("<scratchpad_data>", 1)[-1].lower()
        hit = any(w in quoted for w in self.words)
        verdict = json.dumps(dict.fromkeys(CRITERIA, hit))
        return Completion(f"Toy verdict.\nVERDICT: {verdict}", input_tokens=len(quoted.split()), output_tokens=12)
