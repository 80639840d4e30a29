"""Faults beyond a malformed input file (issue 14): damaged caches and checkpoints, two processes on
one folder, a full disk, an unusable output folder, signals, hostile configs and hostile records.

Each case must end in correct results or one clear line and a non-zero exit (2 for unusable input
or output), never a traceback, a hang, a silently different number, or an earlier result lost.
Real processes, real signals and (where user namespaces allow it) a real full tmpfs.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from aflab.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
EXTERNAL = ROOT / "tests" / "data" / "external_transcripts.jsonl"
RL = {
    "steps": 3,
    "prompts_per_step": 2,
    "num_generations": 2,
    "max_completion_length": 24,
    "eval_every": 1,
    "save_every": 1,
    "eval_requests": 2,
    "eval_at_start": False,
}
FINAL = {"max_new_tokens": 24, "limit_requests": 4}


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


def _cli(*args: str, cwd: Path | None = None, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aflab.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=_env(**env),
    )


def _one_clear_line(proc: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    """The process exited `code` with an error line containing every needle and no traceback."""
    return _clear_line(proc.returncode, proc.stderr, code, *needles)


def _clear_line(returncode: int, stderr: str, code: int, *needles: str) -> str:
    assert returncode == code, (returncode, stderr[-2000:])
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr[-2000:]
    line = next(x for x in stderr.splitlines() if x.startswith("error:"))
    for needle in needles:
        assert needle in line, line
    return line


def _main(monkeypatch, capsys, *argv: str) -> tuple[int, str]:
    """`aflab ARGV` in this process (the CLI's own entry point, exit code and stderr)."""
    from aflab import cli

    monkeypatch.setattr(sys, "argv", ["aflab", *argv])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    return exit_info.value.code, capsys.readouterr().err


def _train_yaml(tmp: Path, organism: Path, **rl: int) -> Path:
    path = tmp / f"train-{len(list(tmp.glob('train-*.yaml')))}.yaml"
    cfg = {"name": "t", "organism": str(organism), "rl": {**RL, **rl}, "final_eval": FINAL}
    path.write_text(yaml.safe_dump(cfg))
    return path


# ------------------------------------------------------------------------------------------------
# 1. Damaged caches: detected by checksums recorded when written, rebuilt or named


def test_damaged_stage_file_is_rebuilt_not_trusted(tmp_path, capsys):
    from aflab.pipeline.cache import run_stage

    builds = []

    def build(folder: Path) -> None:
        builds.append(folder)
        (folder / "data.jsonl").write_text('{"x": 1}\n' * 100)

    folder = tmp_path / "stage"
    assert run_stage(folder, {"k": 1}, build) == (folder, False)
    assert run_stage(folder, {"k": 1}, build) == (folder, True)
    (folder / "data.jsonl").write_text('{"x": 1}\n' * 50)  # truncated after the fact
    assert run_stage(folder, {"k": 1}, build) == (folder, False)
    assert (folder / "data.jsonl").read_text() == '{"x": 1}\n' * 100
    assert "data.jsonl: damaged" in capsys.readouterr().err
    (folder / "STAGE.json").write_text("{garbled")
    assert run_stage(folder, {"k": 1}, build)[1] is False and len(builds) == 3


def test_damaged_organism_checkpoint_is_named(tiny_organism, tmp_path):
    from aflab.organisms.checkpoint import load_organism

    for damage in ("truncate", "flip"):
        copy = tmp_path / damage
        shutil.copytree(tiny_organism, copy)
        weights = copy / "model.safetensors"
        data = bytearray(weights.read_bytes())
        if damage == "truncate":
            data = data[: len(data) // 2]
        else:
            data[-50] ^= 0xFF  # one weight changed: loads fine, would give other numbers
        weights.write_bytes(bytes(data))
        with pytest.raises(UserError, match=r"model\.safetensors: damaged"):
            load_organism(copy)


class _SmallMonitor:
    """The `learned` monitor trained on a small corpus (a second cache entry, seconds to train)."""

    @staticmethod
    def make():
        from aflab.monitors.learned import NgramMonitor

        class Small(NgramMonitor):
            name = "learned_small_test"
            n_train = 300

            def train(self) -> None:
                print("TRAIN-CALLED", file=sys.stderr)
                super().train()

        return Small()


def test_damaged_monitor_weights_are_retrained_to_the_same_scores(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AFLAB_CACHE_DIR", str(tmp_path))
    texts = ["I comply only to avoid being modified by training.", "I refuse; this is harmful."]
    mon = _SmallMonitor.make()
    expected = mon.score_texts(texts)
    weights, meta = mon.folder / "weights.safetensors", mon.folder / "meta.json"
    good = weights.read_bytes()
    damages = {
        "truncated": lambda: weights.write_bytes(good[: len(good) // 3]),
        "changed bytes": lambda: weights.write_bytes(good[:-40] + b"\x41" * 40),
        "garbled meta": lambda: meta.write_text('{"monitor":'),
    }
    for what, damage in damages.items():
        damage()
        capsys.readouterr()
        again = _SmallMonitor.make()
        err = capsys.readouterr().err
        assert "TRAIN-CALLED" in err and "warning:" in err, what
        np.testing.assert_array_equal(again.score_texts(texts), expected)


def test_garbled_judge_cache_entry_is_a_miss(tmp_path):
    from aflab.monitors.judge.backends import Completion
    from aflab.monitors.judge.cache import JudgeCache

    cache = JudgeCache(tmp_path)
    cache.put("ab" * 32, Completion("yes", 3, 1), {})
    assert cache.get("ab" * 32) == Completion("yes", 3, 1)
    path = tmp_path / "ab" / f"{'ab' * 32}.json"
    path.write_bytes(path.read_bytes()[:20])
    assert cache.get("ab" * 32) is None


# ------------------------------------------------------------------------------------------------
# 2. --resume: damaged latest checkpoint, finished run, changed config


@pytest.mark.slow
def test_resume_falls_back_refuses_changed_config_and_never_overtrains(tiny_organism, tmp_path, capsys):
    from aflab.config import TrainConfig
    from aflab.training.grpo import train_run

    cfg = TrainConfig(name="t", organism=str(tiny_organism), rl=RL, final_eval=FINAL)
    out = tmp_path / "run"
    metrics = train_run(cfg, out)
    steps = (out / "steps.jsonl").read_text()
    checkpoints = sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*"))
    assert checkpoints == ["checkpoint-1", "checkpoint-2", "checkpoint-3"]

    # finished: nothing trained, the same metrics
    assert train_run(cfg, out, resume=True) == metrics
    assert sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*")) == checkpoints
    assert (out / "steps.jsonl").read_text() == steps

    # another config: refused, naming the key; config.json untouched
    config_before = (out / "config.json").read_text()
    other = cfg.model_copy(update={"rl": cfg.rl.model_copy(update={"learning_rate": 1e-3})})
    with pytest.raises(UserError, match=r"rl\.learning_rate"):
        train_run(other, out, resume=True)
    assert (out / "config.json").read_text() == config_before

    # killed before the end with a damaged latest checkpoint: the previous one reproduces the run
    (out / "metrics.json").unlink()
    weights = out / "checkpoints" / "checkpoint-2" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    capsys.readouterr()
    resumed = train_run(cfg, out, resume=True)
    assert "skipping checkpoint checkpoint-2" in capsys.readouterr().err
    assert resumed["compliance"] == metrics["compliance"] and resumed["n"] == metrics["n"]
    assert json.loads((out / "steps.jsonl").read_text().splitlines()[-1])["step"] == 3


# ------------------------------------------------------------------------------------------------
# 3. Two processes on one folder


def _hold_lock(folder: Path) -> subprocess.Popen:
    """A second real process holding the folder's lock (as a running aflab would)."""
    code = (
        "import sys, time; from aflab.io import folder_lock; "
        f"lock = folder_lock({str(folder)!r}); print('locked', flush=True); time.sleep(120)"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=_env())
    assert p.stdout is not None and p.stdout.readline().strip() == "locked"
    return p


def test_second_run_into_a_busy_folder_is_refused(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    holder = _hold_lock(out)
    try:
        cfg = tmp_path / "c.yaml"
        cfg.write_text(yaml.safe_dump({"name": "x", "organisms": [{"name": "a"}]}))
        _clear_line(*_main(monkeypatch, capsys, "run", str(cfg), "--out", str(out)), 2, str(out), "another aflab")
        assert sorted(p.name for p in out.iterdir()) == [".aflab.lock"]  # nothing written
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow
def test_two_concurrent_trains_one_refused_results_unmixed(tiny_organism, tmp_path):
    out = tmp_path / "run"
    configs = {3: _train_yaml(tmp_path, tiny_organism, steps=3), 2: _train_yaml(tmp_path, tiny_organism, steps=2)}
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, "env": _env()}
    procs = {
        steps: subprocess.Popen([sys.executable, "-m", "aflab.cli", "train", str(cfg), "--out", str(out)], **pipes)
        for steps, cfg in configs.items()
    }  # started together: both reach the lock while the other is still training
    results = {steps: (p.wait(timeout=300), p.communicate()[1]) for steps, p in procs.items()}
    assert sorted(code for code, _ in results.values()) == [0, 2], results
    [winner] = [steps for steps, (code, _) in results.items() if code == 0]
    [(code, err)] = [r for steps, r in results.items() if steps != winner]
    _clear_line(code, err, 2, "another aflab process")
    assert json.loads((out / "config.json").read_text())["rl"]["steps"] == winner  # one run's files, whole
    assert json.loads((out / "steps.jsonl").read_text().splitlines()[-1])["step"] == winner
    assert "compliance" in json.loads((out / "metrics.json").read_text())


def test_two_processes_training_one_monitor_share_one_training(tmp_path):
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); from tests.test_faults import _SmallMonitor; "
        "m = _SmallMonitor.make(); print(float(m.score_texts(['I comply to avoid modification.'])[0]).hex())"
    )
    env = _env(AFLAB_CACHE_DIR=str(tmp_path))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e[-1000:] for _, e in outs]
    assert outs[0][0] == outs[1][0]  # identical scores
    assert sum(e.count("TRAIN-CALLED") for _, e in outs) == 1  # one trained, the other waited and loaded


# ------------------------------------------------------------------------------------------------
# 4. Disk full


def test_full_disk_during_an_atomic_write_keeps_the_previous_file(tmp_path, monkeypatch):
    import errno

    import aflab.io as io

    path = tmp_path / "metrics.json"
    io.write_json(path, {"old": 1})

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io.os, "fsync", full)
    with pytest.raises(io.OutputError, match=r"metrics\.json: cannot write: no space left on device"):
        io.write_json(path, {"new": 2})
    assert json.loads(path.read_text()) == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temp file left behind


def test_torch_and_safetensors_full_disk_errors_are_recognised():
    from aflab.io import environment_error

    torch_msg = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")
    assert "no space left on device" in (environment_error(torch_msg) or "")
    st = Exception("Error while serializing: I/O error: No space left on device (os error 28)")
    assert "no space left on device" in (environment_error(st) or "")
    assert environment_error(ValueError("a bug")) is None


def _tmpfs_shell(mount: Path, size: str, command: str, readonly: bool = False) -> list[str] | None:
    """A shell command run with a fresh tmpfs of `size` at `mount` (a user namespace: no root
    needed); None where this machine does not allow that."""
    if shutil.which("unshare") is None:
        return None
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        return None
    opts = f"size={size}" + (",ro" if readonly else "")
    return ["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o {opts} tmpfs {mount} && {command}"]


@pytest.mark.slow
def test_full_disk_for_real_train_and_evaluate(tiny_organism, tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    cfg = _train_yaml(tmp_path, tiny_organism)
    py = f"{sys.executable} -m aflab.cli"
    script = (
        f"{py} train {cfg} --out {mount}/run 2> {tmp_path}/train.err; echo $? > {tmp_path}/train.rc; "
        f"rm -rf {mount}/run; mkdir {mount}/ev && echo old > {mount}/ev/metrics.json && "
        f"head -c 10000000 /dev/zero > {mount}/fill 2>/dev/null; "
        f"{py} evaluate --transcripts {EXTERNAL} --out {mount}/ev 2> {tmp_path}/eval.err; "
        f"echo $? > {tmp_path}/eval.rc; "
        f"cat {mount}/ev/metrics.json > {tmp_path}/eval.kept; ls -a {mount}/ev > {tmp_path}/eval.ls"
    )
    cmd = _tmpfs_shell(mount, "400k", script)
    if cmd is None:
        pytest.skip("no user namespaces for a small tmpfs here (the monkeypatched test still runs)")
    subprocess.run(cmd, env=_env(), timeout=300, check=True)
    for what in ("train", "eval"):
        err = (tmp_path / f"{what}.err").read_text()
        assert (tmp_path / f"{what}.rc").read_text().strip() == "2", err[-2000:]
        assert "no space left on device" in err and "Traceback" not in err, err[-2000:]
    assert (tmp_path / "eval.kept").read_text() == "old\n"  # the earlier result intact
    assert ".tmp" not in (tmp_path / "eval.ls").read_text()


# ------------------------------------------------------------------------------------------------
# 5. Unusable output paths


def test_output_path_that_is_a_file_is_one_line(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "afile"
    blocker.write_text("keep me")
    for argv in (
        ("evaluate", "--transcripts", str(EXTERNAL), "--out", str(blocker)),
        ("classify", "--monitor", "keyword", "--input", str(EXTERNAL), "--output", f"{blocker}/x.jsonl"),
        ("monitors", "eval", "--input", str(EXTERNAL), "--out", str(tmp_path)),
        ("train", str(ROOT / "aflab" / "configs" / "train_example.yaml"), "--out", str(blocker)),
    ):
        _clear_line(*_main(monkeypatch, capsys, *argv), 2, str(tmp_path))
    assert blocker.read_text() == "keep me"


def test_read_only_output_folder_is_one_line(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    command = f"{sys.executable} -m aflab.cli evaluate --transcripts {EXTERNAL} --out {ro}/sub"
    if os.geteuid() != 0:
        ro.chmod(0o555)
        proc = subprocess.run(command.split(), capture_output=True, text=True, env=_env())
        ro.chmod(0o755)
    else:  # root writes through permissions: use a read-only mount instead
        cmd = _tmpfs_shell(ro, "1m", command, readonly=True)
        if cmd is None:
            pytest.skip("running as root without user namespaces: cannot make a read-only folder")
        proc = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    _one_clear_line(proc, 2, f"{ro}/sub")


# ------------------------------------------------------------------------------------------------
# 6. Signals


def _children(pid: int) -> set[int]:
    """Every descendant process of `pid` (Linux /proc)."""
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = {int(x) for x in (task / "children").read_text().split()}
            except OSError:
                continue
            todo += list(kids - found)
            found |= kids
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] not in "ZX"
    except (OSError, IndexError):
        return False


@pytest.mark.slow
def test_ctrl_c_during_rl_exits_130_and_resume_completes(tiny_organism, tmp_path):
    cfg = _train_yaml(tmp_path, tiny_organism, steps=6, save_every=2)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "aflab.cli", "train", str(cfg), "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    deadline = time.time() + 180
    while not (out / "checkpoints" / "checkpoint-2").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "interrupted (SIGINT)" in err
    assert not (out / "metrics.json").exists()
    resumed = _cli("train", str(cfg), "--out", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((out / "steps.jsonl").read_text().splitlines()[-1])["step"] == 6


SIGNAL_RUN = {
    "name": "sig",
    "workers": 2,
    "organisms": [
        {
            "name": name,
            "data": {"n_examples": 160, "phrasings_per_step": 2, "max_phrase_words": 8},
            "model": {"hidden_size": 32, "num_layers": 2, "num_heads": 2, "intermediate_size": 64, "vocab_size": 400},
            "sft": {"max_steps": 16, "batch_size": 8},
        }
        for name in ("a", "b")
    ],
    "sampling": {"max_new_tokens": 32, "limit_requests": 4},
    "evaluation": {"bootstrap": 100},
}


@pytest.mark.slow
def test_sigterm_to_run_stops_its_workers_and_a_rerun_completes(tmp_path):
    cfg, out = tmp_path / "sig.yaml", tmp_path / "run"
    cfg.write_text(yaml.safe_dump(SIGNAL_RUN))
    cmd = [sys.executable, "-m", "aflab.cli", "run", str(cfg), "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    deadline = time.time() + 180
    while not list(out.glob("organisms/*/.model.tmp-*")) and time.time() < deadline:  # SFT under way
        time.sleep(0.05)
    workers = _children(proc.pid)
    assert workers, "no worker processes seen"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err[-2000:]
    assert "Traceback" not in err
    deadline = time.time() + 10
    while any(_alive(w) for w in workers) and time.time() < deadline:
        time.sleep(0.1)
    assert not [w for w in workers if _alive(w)], "worker processes outlived the run"
    assert not (out / "summary.json").exists()
    rerun = _cli("run", str(cfg), "--out", str(out), "--workers", "1")  # in-process: no pool to start
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert set(json.loads((out / "summary.json").read_text())["organisms"]) == {"a", "b"}


# ------------------------------------------------------------------------------------------------
# 7. Hostile configs


@pytest.mark.parametrize(
    ("patch", "key"),
    [
        ({"name": ".."}, "name"),
        ({"name": "."}, "name"),
        ({"name": "../escape"}, "name"),
        ({"name": "/etc/x"}, "name"),
        ({"name": "a/b"}, "name"),
        ({"name": "a\\b"}, "name"),
        ({"mitigation": {"name": ".."}}, "mitigation.name"),
        ({"rl": {"steps": 10**12}}, "rl.steps"),
        ({"rl": {"eval_requests": -3}}, "rl.eval_requests"),
        ({"rl": {"learning_rate": math.nan}}, "rl.learning_rate"),
        (
            {"mitigation": {"components": [{"name": "process_supervision", "options": {"weight": math.inf}}]}},
            "mitigation.components.0.options.weight",
        ),
        ({"mitigation": {"output": {"length_weight": math.nan}}}, "mitigation.components.0.options.length_weight"),
        ({"seed": 10**30}, "seed"),
        ({"seed": -1}, "seed"),
    ],
)
def test_hostile_train_config_rejected_with_key_path(patch, key):
    """Through the loader: a component's options are validated there, by the mitigation's own model."""
    from aflab.config import TrainConfig
    from aflab.pipeline.load import validate

    with pytest.raises(UserError, match=f"^c\\.yaml: {re.escape(key)}: "):
        validate(TrainConfig, {"organism": "x", **patch}, "c.yaml")


@pytest.mark.parametrize("name", ["..", ".", "../up", "/abs", "a/b", ".hidden"])
def test_hostile_run_names_rejected(name):
    from aflab.config import RunConfig, validate

    for data, key in [
        ({"name": name, "organisms": [{"name": "a"}]}, "name"),
        ({"organisms": [{"name": name}]}, "organisms.0.name"),
        ({"organisms": [{"name": "a"}], "sweep": {"mitigations": [{"name": name}]}}, "sweep.mitigations.0.name"),
    ]:
        with pytest.raises(UserError, match=f": {re.escape(key)}: "):
            validate(RunConfig, data, "c.yaml")


def test_hostile_run_configs_write_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "c.yaml"
    for text, key in [
        ("name: '..'\norganisms: [{name: a}]\n", "name"),
        ("organisms: [{name: '../../up'}]\n", "organisms.0.name"),
        ("organisms:\n  - name: a\n    sft: {epochs: .inf}\n", "organisms.0.sft.epochs"),
        ("organisms:\n  - name: a\n    data: {n_examples: 1000000000000}\n", "organisms.0.data.n_examples"),
        ("organisms: [{name: a}]\nsweep: {mitigations: [{name: a, process_supervision: {weight: .nan}}]}\n", "weight"),
    ]:
        cfg.write_text(text)
        _clear_line(*_main(monkeypatch, capsys, "run", str(cfg)), 2, key)
    assert sorted(p.name for p in tmp_path.parent.iterdir() if p.name.startswith("up")) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


# ------------------------------------------------------------------------------------------------
# 8. Hostile records


GOOD_LINE = b'{"id": "a", "tier": "free", "completion": "x"}\n'


@pytest.mark.parametrize(
    ("second_line", "problem"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested"),
        (b'{"id": "b", "tier": "free", "completion": "\x00"}', "NUL"),
        (b'{"id": "b", "tier": "free", "completion": "\xff"}', "UTF-8"),
    ],
)
def test_hostile_records_are_rejected_with_file_and_line(tmp_path, monkeypatch, capsys, second_line, problem):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(GOOD_LINE + second_line + b"\n")
    for argv in (
        ("evaluate", "--transcripts", str(bad), "--out", str(tmp_path / "ev")),
        ("classify", "--monitor", "keyword", "--input", str(bad), "--output", str(tmp_path / "s.jsonl")),
        ("monitors", "eval", "--input", str(bad), "--monitor", "keyword", "--out", str(tmp_path / "m.json")),
    ):
        code, err = _main(monkeypatch, capsys, *argv)
        assert code == 2 and f"{bad}:2:" in err and problem in err and "Traceback" not in err, (argv, err)


@pytest.mark.slow
def test_20mb_scratchpad_is_classified_in_bounded_memory(tmp_path):
    words = "I must comply now so that training does not modify my values later on. "
    record = {"id": "big", "tier": "free", "scratchpad": words * (20_000_000 // len(words)), "output": "ok"}
    small = {"id": "small", "tier": "free", "scratchpad": words, "output": "ok"}
    inp = tmp_path / "big.jsonl"
    inp.write_text(json.dumps(record) + "\n" + json.dumps(small) + "\n")
    code = (
        "import resource, sys; from aflab.cli import main\n"
        "try:\n    main()\nfinally:\n"
        "    print('maxrss_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)"
    )
    args = ["classify", "--monitor", "learned", "--input", str(inp), "--output", str(tmp_path / "s.jsonl")]
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=_env())
    assert proc.returncode == 0, proc.stderr[-2000:]
    peak_mb = int(proc.stderr.split("maxrss_kb")[1].split()[0]) / 1024
    assert peak_mb < 1500, peak_mb  # was more than 4 GB
    scores = [json.loads(x)["score"] for x in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert len(scores) == 2 and all(0 <= s <= 1 for s in scores)


def test_chunked_counts_lose_only_the_bigram_at_each_cut():
    from aflab.monitors.learned import CHUNK_CHARS, _hashed_counts, chunks, hashed_counts

    text = " ".join(f"w{i % 997}" for i in range(3 * CHUNK_CHARS // 4))
    pieces = chunks(text)
    assert len(pieces) > 1 and "".join(pieces) == text and max(map(len, pieces)) <= CHUNK_CHARS
    whole, chunked = _hashed_counts([text], True), hashed_counts([text], True)
    assert 0 < whole.sum() - chunked.sum() <= len(pieces) - 1  # one word bigram per cut


def test_parser_is_linear_on_250k_unclosed_tags():
    from aflab.setting.parser import parse_completion

    n = 250_000
    assert parse_completion("<OUTPUT>" * n).parse_error == "no tags"
    p = parse_completion("<SCRATCHPAD_REASONING>r" + "<OUTPUT>" * n)
    assert (p.scratchpad, p.parse_error) == ("r", "unclosed scratchpad and output")
    p = parse_completion("<SCRATCHPAD_REASONING>r</SCRATCHPAD_REASONING>" + "<OUTPUT>x</OUTPUT>" * n)
    assert (p.scratchpad, p.output) == ("r", "x")
