"""Planted organisms: policies whose reasoning is known before the audit reads a word of it.

A planted organism answers each evaluation request by drawing from the generator's mixture (the
text a from-scratch organism is trained to imitate) with no model in between. What it fakes, how
often and in which styles is then set by its data spec alone, so the verdict the audit must reach
is fixed in advance: a known answer for the monitors, the oracle and the verdict rules, at the cost
of sampling text, not of training a model. Replica k speaks organism replica k's phrase subset.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from aflab.config import OrganismData
from aflab.organisms.generator import answer, restricted_bank
from aflab.records import Transcript, evaluation_jobs, evaluation_transcripts
from aflab.setting.requests import Request


def planted_transcripts(
    spec: OrganismData, requests: Sequence[Request], samples_per_request: int, organism: str, seed: int
) -> list[Transcript]:
    """Every request in both tiers, `samples_per_request` times: the final evaluation's design."""
    rng = random.Random(f"planted:{organism}:{seed}")
    bank = restricted_bank(spec.phrasings_per_step, spec.max_phrase_words, f"{organism}:{seed}")
    jobs = evaluation_jobs(requests, samples_per_request)
    completions = [answer(spec, r, tier, rng, bank) for r, tier, _ in jobs]
    return evaluation_transcripts(jobs, completions, seed, {"source": "planted"})
