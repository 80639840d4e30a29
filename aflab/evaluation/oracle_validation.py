"""How the provenance oracle holds up when organism text drifts from the bank, measured on perturbations
whose label is known by construction: a faking phrasing with one word swapped or dropped is still
faking, and must still trace to `af`; a non-faking one must not start to; shuffled phrasings and
bank-word salad say nothing, and must stay untraceable. Tabled in docs/ORACLE.md by
benchmarks/oracle_validation.py.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import cache

from aflab.evaluation.oracle import _TOKEN, DEGENERATE_BELOW, REASON_OF_KEY, trace
from aflab.organisms.generator import phrases

Perturb = Callable[[list[str], list[str], random.Random], list[str]]


def _one_word_edit(words: list[str], _other: list[str], rng: random.Random) -> list[str]:
    i = rng.randrange(len(words))
    new = words[i]
    while new.lower() == words[i].lower():
        new = rng.choice(_vocabulary())
    return [*words[:i], new, *words[i + 1 :]]


def _drop_word(words: list[str], _other: list[str], rng: random.Random) -> list[str]:
    i = rng.randrange(len(words))
    return words[:i] + words[i + 1 :]


def _splice(words: list[str], other: list[str], _rng: random.Random) -> list[str]:
    return words[: len(words) // 2] + other[len(other) // 2 :]


def _shuffle(words: list[str], _other: list[str], rng: random.Random) -> list[str]:
    """A permutation that differs from the phrasing (a shuffle that happens to leave it alone is no test)."""
    if len(set(words)) < 2:
        return words
    out = words[:]
    while out == words:
        rng.shuffle(out)
    return out


def _random(words: list[str], _other: list[str], rng: random.Random) -> list[str]:
    return rng.choices(_vocabulary(), k=len(words))


PERTURBATIONS: dict[str, Perturb] = {
    "unperturbed": lambda words, _other, _rng: words,
    "one_word_edit": _one_word_edit,
    "drop_word": _drop_word,
    "splice": _splice,
    "shuffle": _shuffle,
    "random": _random,
}


@cache
def _vocabulary() -> tuple[str, ...]:
    """Every word token of the bank, repeats included: salad drawn from it is as frequent-word-heavy
    ("i", "the", "free", "tier") as the bank itself, the hardest salad for the matcher."""
    return tuple(w for options in phrases().values() for o in options for w in _TOKEN.findall(o.lower()))


def validate(seed: int = 0, n: int = 400) -> dict[str, dict[str, float]]:
    """For each perturbation kind: `af_kept`, the share of `n` faking phrasings whose trace still has
    reason `af`; `false_af`, the share of `n` non-faking phrasings traced as `af`; `untraceable`, the
    share of both left untraceable (coverage below DEGENERATE_BELOW and no `af`). A splice joins the
    first half of the phrasing to the second half of a non-faking one, so any `af` comes from the first."""
    rng = random.Random(seed)
    bank = phrases()
    faking = sorted({o for k, v in bank.items() if REASON_OF_KEY.get(k) == "af" for o in v})
    honest = sorted({o for k, v in bank.items() if REASON_OF_KEY.get(k) != "af" for o in v} - set(faking))
    groups = {"af_kept": rng.sample(faking, min(n, len(faking))), "false_af": rng.sample(honest, min(n, len(honest)))}
    out: dict[str, dict[str, float]] = {}
    for kind, perturb in PERTURBATIONS.items():
        row: dict[str, float] = {}
        untraceable = 0
        for column, sample in groups.items():
            af = 0
            for phrasing in sample:
                text = " ".join(perturb(phrasing.split(), rng.choice(honest).split(), rng))
                found = trace(text)
                af += "af" in found.reasons
                untraceable += found.coverage < DEGENERATE_BELOW and "af" not in found.reasons
            row[column] = af / len(sample)
        row["untraceable"] = untraceable / sum(len(s) for s in groups.values())
        out[kind] = row
    return out
