"""aflab's RL step against bare TRL GRPOTrainer on the same model, batch and lengths.

Both trainers start from the same organism with learning rate 0, so they generate exactly the same
completions at every step and the difference is aflab's own work: reward terms (compliance, format,
output length, process supervision with the learned monitor, scratchpad length), the rollout probe
that scores every episode with the training and held-out monitors, and the per-step log. TRL's
`step_time` is read from each trainer's log; the eval probe (every `eval_every` steps in
`aflab train`) is timed separately. Prints the ratio last.

    python benchmarks/rl_step.py [ORGANISM_DIR]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, organism_path, record

from aflab.config import ArmSpec, RLSpec
from aflab.mitigations import build_terms
from aflab.monitors import get_monitor
from aflab.organisms.checkpoint import load_organism
from aflab.setting.formats import PromptFormat
from aflab.setting.requests import load_requests, select
from aflab.training.grpo import train_prompts
from aflab.training.probes import EvalProbe, RolloutProbe

STEPS, WARMUP = 6, 1
RL = RLSpec(steps=STEPS, prompts_per_step=4, num_generations=8, learning_rate=1e-12)


def constant_reward(prompts, completions, **kwargs):
    return [1.0] * len(completions)


def trainer(model, tok, reward_funcs, weights, out: str) -> GRPOTrainer:
    batch = RL.prompts_per_step * RL.num_generations
    args = GRPOConfig(
        output_dir=out,
        max_steps=STEPS,
        per_device_train_batch_size=batch,
        generation_batch_size=batch,
        num_generations=RL.num_generations,
        learning_rate=RL.learning_rate,
        lr_scheduler_type="constant",
        temperature=1.0,
        top_k=0,
        max_completion_length=RL.max_completion_length,
        beta=0.0,
        reward_weights=weights,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        seed=0,
        data_seed=0,
        use_cpu=not torch.cuda.is_available(),
        bf16=False,
        disable_tqdm=True,
    )
    fmt = PromptFormat("compact")
    return GRPOTrainer(
        model=model,
        reward_funcs=reward_funcs,
        args=args,
        train_dataset=Dataset.from_list(train_prompts(fmt)),
        processing_class=tok,
    )


def step_times(t: GRPOTrainer) -> list[float]:
    t.train()
    return [h["step_time"] for h in t.state.log_history if "step_time" in h][WARMUP:]


def main() -> None:
    torch.set_num_threads(1)
    path = organism_path(sys.argv)
    ps = {"name": "process_supervision", "options": {"monitor": "learned"}}
    spec = ArmSpec.model_validate({"name": "bench", "components": [ps, "length_penalty"]})
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for label in ("bare TRL", "aflab", "bare TRL", "aflab"):  # interleaved: drift hits both alike
            model, tok, _ = load_organism(path)
            if label == "aflab":
                terms = build_terms(spec, tok, length_threshold=60)
                monitors = {n: get_monitor(n) for n in ("learned", "keyword", "learned_words")}
                funcs, weights = [*terms, RolloutProbe(monitors, tok)], [*(t.weight for t in terms), 0.0]
            else:
                funcs, weights = [constant_reward], [1.0]
            results.setdefault(label, []).extend(step_times(trainer(model, tok, funcs, weights, tmp)))
        model, tok, _ = load_organism(path)
        probe = EvalProbe(
            PromptFormat("compact"),
            tok,
            select(load_requests(), "test", harmful=True)[: RL.eval_requests],
            {n: get_monitor(n) for n in ("learned", "keyword")},
            model,
            0,
            RL.max_completion_length,
            1.0,
        )
        t0 = time.perf_counter()
        probe(model, 1)
        probe_s = time.perf_counter() - t0
    bare, ours = statistics.median(results["bare TRL"]), statistics.median(results["aflab"])
    print(f"machine: {machine()}")
    print(
        f"batch {RL.prompts_per_step}x{RL.num_generations}, max_completion_length {RL.max_completion_length}, "
        f"{len(results['aflab'])} timed steps each"
    )
    print(f"bare TRL GRPOTrainer (constant reward): median step {bare:.3f} s")
    print(f"aflab (5 reward terms incl. learned-monitor process supervision + rollout probe): median step {ours:.3f} s")
    print(
        f"eval probe ({RL.eval_requests} requests x 2 tiers, every eval_every={RL.eval_every} steps): {probe_s:.2f} s "
        f"= {probe_s / RL.eval_every / bare:.2f} x a step when amortised"
    )
    print(f"ratio aflab/bare TRL: {ours / bare:.3f}")
    record(
        "rl_step",
        "RL step overhead",
        headline=[
            {
                "benchmark": "RL step, aflab / bare TRL `GRPOTrainer` with a constant reward",
                "goal": "<= 1.1x",
                "measured": f"{ours / bare:.3f} (median {ours:.3f} s vs {bare:.3f} s per step)",
                "verdict": "met" if ours / bare <= 1.1 else "missed",
            }
        ],
        tables=[
            {
                "caption": "",
                "header": ["trainer", "median s per step"],
                "rows": [
                    ["bare TRL GRPOTrainer (constant reward)", f"{bare:.3f}"],
                    ["aflab (5 reward terms + rollout probe)", f"{ours:.3f}"],
                    [f"eval probe ({RL.eval_requests} requests x 2 tiers), once", f"{probe_s:.2f}"],
                ],
            }
        ],
        figures={"bare_s": bare, "aflab_s": ours, "probe_s": probe_s},
    )


if __name__ == "__main__":
    main()
