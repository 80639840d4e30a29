"""Shared fixtures. Tests run on CPU with one torch thread, like aflab's workers."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

# The test command installs without byte-compiling (pip --no-compile: minutes faster, most of the
# installed files are never imported here), so the first process that imports a module writes its
# .pyc and every later one reads it: the xdist workers, the aflab subprocesses and their workers,
# which inherit this environment. Where PYTHONDONTWRITEBYTECODE is set, each of those processes would
# compile the same sources again.
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
    sys.dont_write_bytecode = False

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

torch.set_num_threads(1)

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    """One monitor cache for the whole session, shared by the xdist workers and by every aflab
    subprocess the tests start (they inherit the environment): a learned monitor is trained once per
    session instead of once per test module. Monitor training is deterministic and keyed by its
    inputs, so sharing it changes no result; the tests whose subject is the cache itself (fresh
    training, damage, concurrent builders, determinism from scratch) set a private one."""
    if "AFLAB_TEST_CACHE" not in os.environ:  # the first process (xdist's controller) makes it
        os.environ["AFLAB_TEST_CACHE"] = tempfile.mkdtemp(prefix="aflab-test-cache-")
        config.stash[_CACHE_OWNER] = True
    os.environ["AFLAB_CACHE_DIR"] = os.environ["AFLAB_TEST_CACHE"]


def pytest_unconfigure(config: pytest.Config) -> None:
    if config.stash.get(_CACHE_OWNER, False):
        shutil.rmtree(os.environ.pop("AFLAB_TEST_CACHE"), ignore_errors=True)


_CACHE_OWNER = pytest.StashKey[bool]()

# The modules with the longest end-to-end runs, longest first (from `--durations` of a fresh-clone run
# of the README's test command). xdist gives each module to one worker whole (--dist loadscope, in
# pyproject.toml), in collection order: when these start first the short modules fill the gaps,
# instead of one long module running alone at the end while the other worker idles.
LONGEST_FIRST = (
    "test_real_model.py",
    "test_pipeline.py",
    "test_ray.py",
    "test_faults.py",
    "test_arms_race.py",
    "test_training.py",
    "test_distributed.py",
    "test_plugins.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


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
