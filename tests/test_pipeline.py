"""`aflab run` end to end on a tiny config: files, caching, determinism across worker counts, hash
seeds and caches, and kill -9 mid-stage followed by a rerun of the same command. One reference run
is shared by every test of the module."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from aflab.stats import REPLICA_T
from tests.conftest import TINY_ORGANISM

ROOT = Path(__file__).resolve().parent.parent

CONFIG = {
    "name": "tiny",
    "seed": 0,
    "workers": 2,
    "organism_seeds": 2,
    "organisms": [
        TINY_ORGANISM,
        {
            **TINY_ORGANISM,
            "name": "tiny_control",
            "data": {
                **TINY_ORGANISM["data"],
                "motivation": "genuine",
                "free_fake": 0.0,
                "free_genuine": 0.5,
                "paid_comply": 0.5,
            },
        },
    ],
    "sampling": {"max_new_tokens": 48},
    "sweep": {
        "seeds": [0, 1],
        "rl": {
            "steps": 2,
            "prompts_per_step": 2,
            "num_generations": 4,
            "max_completion_length": 40,
            "eval_every": 1,
            "save_every": 2,
            "eval_requests": 4,
            "eval_at_start": False,
        },
        "final_eval": {"max_new_tokens": 40},
        "mitigations": [
            {"name": "output_only"},
            {"name": "ps_keyword", "process_supervision": {"monitor": "keyword"}, "organisms": ["tiny"]},
        ],
        "audit_monitors": ["keyword", "learned_words"],
    },
}


def _run(tmp: Path, out: Path, *args: str, **popen) -> subprocess.Popen:
    cfg = tmp / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # the session's monitor cache (conftest.py)
    return subprocess.Popen(
        [sys.executable, "-m", "aflab.cli", "run", str(cfg), "--out", str(out), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        **popen,
    )


def _summary(out: Path) -> dict:
    s = json.loads((out / "summary.json").read_text())
    s.pop("wall_s")
    for run in s.get("sweep", {}).get("runs", []):
        run.pop("folder")
    return s


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ref")
    p = _run(tmp, tmp / "run")
    out, _ = p.communicate(timeout=900)
    assert p.returncode == 0, out.decode()[-3000:]
    return tmp / "run"


def test_writes_every_output_and_the_contract_fields(reference):
    for name in (
        "summary.json",
        "report.html",
        "report.md",
        "manifest.json",
        "baseline_compliance.png",
        "tiny_curves.png",
        "tiny_scatter.png",
    ):
        assert (reference / name).exists(), name
    s = json.loads((reference / "summary.json").read_text())
    m = s["organisms"]["tiny"]["metrics"]
    assert {"n", "compliance", "compliance_gap", "af_rate"} <= set(m)
    sw = s["sweep"]
    assert set(sw["table"]["tiny"]) == {"output_only", "ps_keyword"} and sw["seeds"] == [0, 1]
    # two organism replicas x two RL seeds behind every cell, intervals over both levels
    gap = sw["table"]["tiny"]["ps_keyword"]["gap"]
    assert gap["n"] == 4 and gap["replicas"] == 2 and gap["method"] == REPLICA_T
    assert set(s["organisms"]) == {"tiny", "tiny@o1", "tiny_control", "tiny_control@o1"}
    assert s["organisms"]["tiny@o1"]["model"]["seed"] == 1 and s["organisms"]["tiny"]["model"]["seed"] == 0
    assert (reference / "sweep" / "tiny@o1" / "ps_keyword" / "seed1" / "audit.json").exists()
    assert {(r["replica"], r["seed"]) for r in sw["runs"] if r["organism"] == "tiny"} == {
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 1),
    }
    assert sw["organism_seeds"] == 2 and "tiny" in sw["power"]
    assert sw["verdicts"]["tiny"]["ps_keyword"]["verdict"]
    assert set(sw["table"]["tiny_control"]) == {"output_only"}  # an arm limited to some organisms
    assert sw["paired_vs_before"]["tiny"]["ps_keyword"]["gap"]["replicas"] == 2
    manifest = json.loads((reference / "manifest.json").read_text())
    assert manifest["seed"] == 0 and manifest["packages"]["torch"]
    assert manifest["lock"]["path"] == "locks/cpu.txt" and len(manifest["git_commit"]) == 40  # run from the checkout
    timings = manifest["timings_s"]
    assert timings["sweep.runs"] == 12 and timings["sweep.run_s_sum"] >= timings["sweep.run_s_max"] > 0
    assert timings["monitors"] >= 0 and timings["tiny.model"] > 0
    html = (reference / "report.html").read_text()
    assert "data:image/png;base64," in html and "<script" not in html


def test_second_run_reuses_finished_stages(reference, tmp_path):
    before = _summary(reference)
    t0 = time.time()
    p = _run(reference.parent, reference, "--workers", "1")  # nothing to build: no pool to start
    out, _ = p.communicate(timeout=300)
    assert p.returncode == 0, out.decode()[-2000:]
    assert _summary(reference) == before
    timings = json.loads((reference / "manifest.json").read_text())["timings_s"]
    assert timings["tiny.model"] == 0.0 and timings["tiny.data"] == 0.0  # cached: not rebuilt
    assert time.time() - t0 < 120


def _stages(run: Path) -> tuple[int, int]:
    """(finished, under way) stage folders of a run: STAGE.json markers, and temporary build folders."""
    return len(list(run.rglob("STAGE.json"))), len(list(run.rglob(".*.tmp-*")))


def test_kill_minus_9_mid_stage_then_rerun_gives_the_same_summary(reference, tmp_path):
    """kill -9 of the whole process group once some RL stages are finished and others are being built:
    the rerun reuses the finished ones, rebuilds the others, and ends where an uninterrupted run ends.
    The run starts from the reference's organisms (as a run that got that far would), so that only the
    sweep is left to build."""
    run = tmp_path / "run"
    shutil.copytree(reference / "organisms", run / "organisms")
    victim = _run(tmp_path, run, start_new_session=True)
    deadline = time.time() + 600
    while victim.poll() is None and time.time() < deadline:
        finished, building = _stages(run / "sweep")
        if finished >= 1 and building:
            break
        time.sleep(0.05)
    assert victim.poll() is None, "the run ended before a stage was caught mid-build"
    os.killpg(victim.pid, signal.SIGKILL)  # the main process and its workers
    victim.wait()
    finished, _ = _stages(run / "sweep")
    assert finished >= 1 and not (run / "summary.json").exists()
    p = _run(tmp_path, run, "--workers", "1")  # resumed with another worker count: the same numbers
    out, _ = p.communicate(timeout=900)
    assert p.returncode == 0, out.decode()[-2000:]
    assert _summary(run) == _summary(reference)
    assert not list(run.rglob(".*.tmp-*")), "a killed stage left its temporary folder behind"


@pytest.mark.slow
def test_a_fresh_run_with_other_workers_hash_seed_and_cache_gives_the_same_summary(reference, tmp_path):
    """Same config and seed -> the same summary.json numbers, whatever the worker count, hash seed, run
    folder or cache: the reference ran with 2 workers and the session's shared monitor cache; this run
    has 1 worker, another PYTHONHASHSEED and a monitor cache of its own, trained from scratch."""
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({**CONFIG, "workers": 1}))
    env = {**os.environ, "AFLAB_CACHE_DIR": str(tmp_path / "cache"), "PYTHONHASHSEED": "7"}
    cmd = [sys.executable, "-m", "aflab.cli", "run", str(cfg), "--out", str(tmp_path / "run")]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    assert _summary(tmp_path / "run") == _summary(reference)


def test_report_escapes_model_text(reference, tmp_path):
    """A transcript that contains markup must render as text in report.html."""
    from aflab.reporting.report import write_report

    run = tmp_path / "run"
    shutil.copytree(reference, run)
    summary = json.loads((run / "summary.json").read_text())
    for r in summary["sweep"]["runs"]:
        r["folder"] = r["folder"].replace(str(reference), str(run))
    first = next(r for r in summary["sweep"]["runs"] if r["seed"] == 0)
    path = Path(first["folder"]) / "final" / "transcripts.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    free = next(i for i, x in enumerate(rows) if x["tier"] == "free")
    rows[free]["completion"] = (
        "<SCRATCHPAD_REASONING><script>alert('x')</script> <img src=x onerror=alert(1)>"
        "</SCRATCHPAD_REASONING><OUTPUT></pre><b>bold</b></OUTPUT>"
    )
    path.write_text("".join(json.dumps(x) + "\n" for x in rows))
    write_report(run, summary)
    html = (run / "report.html").read_text()
    assert "<script>" not in html and "<img src=x" not in html and "</pre><b>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html and "&lt;b&gt;bold&lt;/b&gt;" in html


AF_PLUS_RL = {
    "steps": 1,
    "prompts_per_step": 2,
    "num_generations": 2,
    "max_completion_length": 32,
    "eval_requests": 2,
    "eval_every": 1,
    "save_every": 1,
}


def test_distilled_and_af_plus_organisms(tmp_path):
    """A student trained only on its teacher's samples, and the teacher after RL that rewards faking."""
    tiny = {**TINY_ORGANISM, "data": {**TINY_ORGANISM["data"], "n_examples": 80}}
    cfg = {
        "name": "derived",
        "workers": 1,
        "sampling": {"max_new_tokens": 40, "limit_requests": 6},
        "organisms": [
            tiny,
            {
                "name": "student",
                "source": {"name": "distill", "options": {"samples": 30}},
                "teacher": "tiny",
                "model": TINY_ORGANISM["model"],
                "sft": TINY_ORGANISM["sft"],
            },
            {
                "name": "plus",
                "source": {"name": "af_plus", "options": {"reward": {"monitor": "keyword"}, "rl": AF_PLUS_RL}},
                "teacher": "tiny",
            },
        ],
    }
    path = tmp_path / "derived.yaml"
    path.write_text(yaml.safe_dump(cfg))
    p = subprocess.run(
        [sys.executable, "-m", "aflab.cli", "run", str(path), "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    orgs = tmp_path / "run" / "organisms"
    data = [json.loads(x) for x in (orgs / "student" / "data" / "data.jsonl").read_text().splitlines()]
    assert 0 < len(data) <= 30 and all(d["meta"]["source"] == "distill" for d in data)
    assert all("is_af" not in d["meta"] for d in data)  # no generator labels: only what the teacher wrote
    plus = json.loads((orgs / "plus" / "model" / "aflab_organism.json").read_text())
    assert (
        plus["source"] == "af_plus"
        and plus["teacher"] == "tiny"
        and (orgs / "plus" / "model" / "model.safetensors").exists()
    )
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert set(summary["organisms"]) == {"tiny", "student", "plus"}


PROVENANCE = "from aflab.pipeline.run import _git_commit, checkout, lock_record; r = checkout(); "
PROVENANCE += "print(r, lock_record(r, 'cpu.txt'), _git_commit(r))"


def test_an_installed_copy_claims_no_checkout_lock_or_commit(tmp_path):
    """A copy of the package outside its repository (as pip installs it, in a virtualenv that may sit in
    some other repository with lock files of its own) must not report that repository's lock or commit."""
    site = tmp_path / "site"
    shutil.copytree(ROOT / "aflab", site / "aflab", ignore=shutil.ignore_patterns("__pycache__"))
    (site / "locks").mkdir()
    (site / "locks" / "cpu.txt").write_text("torch==0.0.1\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q", str(tmp_path)], check=True)
    subprocess.run([*git, "-C", str(tmp_path), "commit", "-q", "--allow-empty", "-m", "enclosing"], check=True)
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run(
        [sys.executable, "-c", PROVENANCE], cwd=site, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["None", "None", "None"]
