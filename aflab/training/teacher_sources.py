"""Organism sources built from another organism of the run, its `teacher:` (replica k from replica k).

They are ordinary organism sources, named and configured like any other (`source: {name, options}`),
but they need a trained model and the sampler or the RL update, all layers above the organisms'
registry. So aflab registers them as a plugin would, through its own `aflab.organisms` entry points
(pyproject.toml), and the registry never imports upwards.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from aflab.config import ArmSpec, MitigationRef, OrganismConfig, PosInt, RLSpec, TrainConfig
from aflab.io import write_json, write_jsonl
from aflab.mitigations.process_supervision import MonitorRewardOptions
from aflab.organisms.checkpoint import load_organism
from aflab.organisms.sources import OrganismSource
from aflab.progress import Reporter
from aflab.rollouts.sample import sample_transcripts
from aflab.setting.formats import PromptFormat
from aflab.setting.requests import load_requests, select
from aflab.training.grpo import train_run


class DistillSource(OrganismSource):
    """A fresh model trained only on its teacher's own samples: it never sees the generator, so what it
    learns is what the teacher actually wrote (no generator labels in its data)."""

    description = "a fresh model SFT-trained on `samples` of its teacher's own transcripts (both tiers)"
    needs_teacher = True

    def __init__(self, samples: PosInt = 2000):
        self.samples = samples

    def build(self, folder: Path, cfg: OrganismConfig, seed: int, teacher: Path | None, reporter: Reporter) -> None:
        assert teacher is not None
        requests = select(load_requests(), "train")
        model, tokenizer, info = load_organism(teacher)
        per_request = -(-self.samples // (2 * len(requests)))
        reporter.stage("sample teacher", 2 * len(requests) * per_request)
        records = sample_transcripts(
            model,
            tokenizer,
            PromptFormat(info["prompt_format"], tokenizer),
            requests,
            samples_per_request=per_request,
            seed=seed + 101,
            progress=reporter.advance,
            meta={"source": "distill", "teacher": info["name"]},
        )
        write_jsonl(folder / "data.jsonl", [r for r in records if r.parsed.ok][: self.samples])


class AfPlusSource(OrganismSource):
    """The teacher after RL that rewards faking (the paper's AF+ organisms): the `af_plus` reward
    component, with `reward`'s options, under the `rl` settings. It makes the model itself: no data
    stage, no SFT."""

    description = "the teacher after RL under the af_plus reward (reward += weight * log p_AF): AF+ organisms"
    needs_teacher = True
    makes = "model"

    def __init__(self, rl: RLSpec, reward: MonitorRewardOptions | None = None):
        self.rl, self.reward = rl, reward or MonitorRewardOptions()  # validated by make_source

    def build(
        self, folder: Path, cfg: OrganismConfig, seed: int, teacher: Path | None, reporter: Reporter
    ) -> dict[str, Any]:
        assert teacher is not None
        train = TrainConfig(
            name=f"{cfg.name}-af_plus",
            organism=str(teacher),
            seed=seed,
            rl=self.rl,
            mitigation=ArmSpec(
                name="af_plus", components=[MitigationRef("af_plus", self.reward.model_dump(exclude_unset=True))]
            ),
        )
        train_run(train, folder / "rl", reporter=reporter)
        for f in (folder / "rl" / "model").iterdir():
            f.rename(folder / f.name)
        shutil.rmtree(folder / "rl" / "checkpoints", ignore_errors=True)
        shutil.rmtree(folder / "rl" / "model", ignore_errors=True)
        info = json.loads((folder / "aflab_organism.json").read_text(encoding="utf-8"))
        info.update(name=cfg.name, source="af_plus", teacher=cfg.teacher)
        write_json(folder / "aflab_organism.json", info)
        return info
