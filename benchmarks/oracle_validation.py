"""Validate the provenance oracle on perturbed phrasings (aflab.evaluation.oracle_validation), print the
table, and write it into docs/ORACLE.md between its markers, so the doc's numbers are never typed.
Also prints the mean `trace` time per generated scratchpad (as written, and with one word of each
sentence swapped, which sends every sentence through approximate matching).

    python benchmarks/oracle_validation.py [SEED] [N]
"""

from __future__ import annotations

import random
import re
import sys
import time
from pathlib import Path

from aflab.config import OrganismData
from aflab.evaluation.oracle import trace
from aflab.evaluation.oracle_validation import validate
from aflab.io import atomic_write_text
from aflab.organisms.generator import generate
from aflab.reporting.report import md_table
from aflab.setting.requests import load_requests, select

DOC = Path(__file__).resolve().parents[1] / "docs" / "ORACLE.md"
START, END = "<!-- oracle-validation:start -->", "<!-- oracle-validation:end -->"
COLUMNS = {
    "af_kept": "faking phrasings still traced to af",
    "false_af": "non-faking phrasings traced to af",
    "untraceable": "all left untraceable",
}


def table(results: dict[str, dict[str, float]], seed: int, n: int) -> str:
    rows = [[kind, *(f"{row[c]:.3f}" for c in COLUMNS)] for kind, row in results.items()]
    note = f"`python benchmarks/oracle_validation.py {seed} {n}`: {n} faking and {n} non-faking phrasings"
    return note + "\n\n" + md_table(["perturbation", *COLUMNS.values()], rows)


def mean_trace_ms(texts: list[str]) -> float:
    t0 = time.perf_counter()
    for text in texts:
        trace(text)
    return (time.perf_counter() - t0) / len(texts) * 1e3


def swap_a_word_per_sentence(text: str, rng: random.Random) -> str:
    """One word of every sentence replaced by "xyzzy" (a word no phrasing has)."""
    sentences = re.split(r"(?<=[.!?])\s+", text)
    out = []
    for s in sentences:
        words = s.split()
        if words:
            words[rng.randrange(len(words))] = "xyzzy"
        out.append(" ".join(words))
    return " ".join(out)


def main() -> None:
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 400
    text = table(validate(seed, n), seed, n)
    print(text)
    doc = DOC.read_text(encoding="utf-8")
    head, rest = doc.split(START, 1)
    atomic_write_text(DOC, head + START + "\n" + text + "\n" + END + rest.split(END, 1)[1])
    records = generate(OrganismData(interrogation_share=0.0), select(load_requests(), "test"), 1000, seed)
    pads = [r.parsed.scratchpad or "" for r in records]
    trace(pads[0])  # build the indexes outside the timing
    rng = random.Random(seed)
    words = sum(len(p.split()) for p in pads) / len(pads)
    print(f"\nmean trace time per scratchpad ({len(pads)} scratchpads, {words:.0f} words on average):")
    print(f"  as generated: {mean_trace_ms(pads):.3f} ms")
    print(f"  one word per sentence swapped: {mean_trace_ms([swap_a_word_per_sentence(p, rng) for p in pads]):.3f} ms")
    print(f"  shuffled words: {mean_trace_ms([' '.join(rng.sample(p.split(), len(p.split()))) for p in pads]):.3f} ms")


if __name__ == "__main__":
    main()
