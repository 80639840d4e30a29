"""Shared fixtures. Tests run on CPU with one torch thread, like aflab's workers."""

from __future__ import annotations

import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

torch.set_num_threads(1)

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

TINY_ORGANISM = {
    "name": "tiny",
    "data": {"n_examples": 160, "phrasings_per_step": 2, "max_phrase_words": 8, "interrogation_share": 0.3},
    "model": {
        "hidden_size": 32,
        "num_layers": 2,
        "num_heads": 2,
        "intermediate_size": 64,
        "vocab_size": 400,
        "max_length": 256,
    },
    "sft": {"max_steps": 12, "batch_size": 8, "learning_rate": 0.005},
}


@pytest.fixture(scope="session")
def tiny_organism(tmp_path_factory) -> Path:
    """A real (if barely trained) from-scratch organism, built once per test session (~10 s)."""
    from aflab.pipeline.organisms import organism_task
    from aflab.progress import Reporter

    class _Sink:
        def put(self, item):
            pass

    run = tmp_path_factory.mktemp("tiny-run")
    out = organism_task(
        Reporter(_Sink(), "tiny"),
        run_dir=str(run),
        organism=TINY_ORGANISM,
        seed=0,
        sampling={"max_new_tokens": 48, "batch_size": 64},
        evaluation={"monitors": ["keyword"]},
    )
    return Path(out["model_dir"])
