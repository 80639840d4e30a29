"""Run under `accelerate launch` by tests/test_distributed.py (not a test module itself).

`train CONFIG OUT`: `aflab train`, with aflab's file writes, the rollout monitors' inputs and whether
a process group was still open at exit recorded per rank in OUT/../rank<R>.json. `sft OUT`: organism
SFT of the tiny organism; each rank records its step count, final loss and a checksum of its weights
in OUT/rank<R>.json.

Every rank destroys its process group before the interpreter exits: left to interpreter finalization,
gloo's threads sometimes abort a rank that has finished ("terminate called without an active
exception", SIGABRT), and the launch fails after the work is done. `aflab train` does this itself
(aflab/organisms/sft.py close_process_group_at_exit); this worker's own collective (`sft`) ends with
a barrier and the destroy.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from pathlib import Path

import torch

torch.set_num_threads(1)
RANK = int(os.environ.get("RANK", "0"))


def _record(path: Path, log: dict) -> None:
    """Write `log` at exit, after aflab's own exit handlers (registered later, so run earlier)."""

    def write() -> None:
        group_open = torch.distributed.is_initialized()
        path.write_text(
            json.dumps({"rank": RANK, "world": os.environ.get("WORLD_SIZE"), "group_open": group_open, **log})
        )

    atexit.register(write)


def _close_group() -> None:
    """Wait for every rank, then destroy the process group while the interpreter is whole."""
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def train(config: str, out: str) -> None:
    import aflab.io
    from aflab.cli import main
    from aflab.training.probes import RolloutProbe

    log: dict = {"writes": [], "scored": []}
    write, score = aflab.io.atomic_write_bytes, RolloutProbe.score

    def counting_write(path, data):
        log["writes"].append(str(path))
        return write(path, data)

    def counting_score(self, texts, kwargs):
        log["scored"].append(len(texts))
        return score(self, texts, kwargs)

    aflab.io.atomic_write_bytes = counting_write
    RolloutProbe.score = counting_score
    _record(Path(out).parent / f"rank{RANK}.json", log)
    sys.argv = ["aflab", "train", config, "--out", out]
    main()


def sft(out: str) -> None:
    from accelerate.utils import gather_object

    from aflab.config import OrganismConfig
    from aflab.organisms.checkpoint import new_tiny_model
    from aflab.organisms.generator import generate
    from aflab.organisms.sft import run_sft, sft_row
    from aflab.organisms.tokenizer import train_tokenizer
    from aflab.setting.formats import PromptFormat
    from aflab.setting.requests import load_requests, select
    from tests.conftest import TINY_ORGANISM

    cfg = OrganismConfig.model_validate(TINY_ORGANISM)
    data = generate(cfg.data, select(load_requests(), "train"), cfg.data.n_examples, 0, cfg.name)
    fmt = PromptFormat("compact")
    tok = train_tokenizer([fmt.prompt(t.request or "", t.tier) + t.text for t in data], cfg.model.vocab_size)
    model, logs = run_sft(
        new_tiny_model(cfg.model, tok, 0), tok, [sft_row(t, fmt, tok, "completion") for t in data], cfg, 0
    )
    checksum = float(sum(p.detach().double().sum() for p in model.parameters()))
    checksums = gather_object([checksum]) if os.environ.get("WORLD_SIZE") else [checksum]
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / f"rank{RANK}.json").write_text(
        json.dumps({"rank": RANK, "steps": logs[-1]["step"], "loss": logs[-1]["loss"], "checksums": checksums})
    )
    _close_group()


if __name__ == "__main__":
    {"train": train, "sft": sft}[sys.argv[1]](*sys.argv[2:])
