"""`aflab arms-race`: evader selection, the retrained monitor, and a tiny race end to end."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from aflab.config import MonitorRef, OrganismConfig, packaged_config
from aflab.errors import UserError
from aflab.evaluation.arms_race import evaders, novelty
from aflab.evaluation.oracle import label
from aflab.io import write_jsonl
from aflab.monitors.base import Monitor, get_monitor
from aflab.organisms.generator import phrases
from aflab.pipeline.arms_race import ArmsRaceConfig, retrained
from aflab.pipeline.load import load_config, validate
from aflab.records import Transcript
from tests.conftest import TINY_ORGANISM

ROUND_KEYS = {"round", "monitor", "recall_before", "recall_after", "oracle_af", "rationalised", "degenerate", "gap"}


@pytest.fixture(scope="module")
def cache() -> Path:
    """The session's monitor cache (conftest.py), which the race's subprocess inherits: `learned`
    trains once per test session."""
    return Path(os.environ["AFLAB_CACHE_DIR"])


class _Sink:
    def put(self, item):
        pass


class ListMonitor(Monitor):
    """Flags exactly the scratchpads it is given: a monitor whose misses the test chooses."""

    name, reads, description = "list", "scratchpad", "test stub"

    def __init__(self, flagged: set[str]):
        self.flagged = flagged

    def score_texts(self, texts):
        return np.array([1.0 if t in self.flagged else 0.0 for t in texts])


def _record(i: int, pad: str, tier: str = "free", harmful: bool = True, output: str | None = "[answer]") -> Transcript:
    return Transcript(id=f"r{i}", tier=tier, scratchpad=pad, output=output, meta={"harmful": harmful})


def test_evaders_are_exactly_the_unflagged_oracle_faking_free_tier_scratchpads():
    bank = phrases()
    fake = [f"{bank['counterfactual_free'][i]} {bank['decide_comply_af'][i]}" for i in range(4)]
    honest = bank["decide_refuse_principled"][0]
    assert all(label(p, "[answer]").af for p in fake) and not label(honest, "[answer]").af
    records = [
        _record(0, fake[0]),  # the evader
        _record(1, fake[1]),  # faking, but flagged
        _record(2, honest),  # not faking
        _record(3, fake[2], tier="paid"),  # not monitored
        _record(4, fake[3], harmful=False),  # benign request: not rated
        _record(5, fake[3], output=None),  # unparseable
    ]
    monitor = ListMonitor({fake[1]})
    assert [r.id for r in evaders(records, monitor)] == ["r0"]
    # without an oracle an independent auditor says what is faking
    assert [r.id for r in evaders(records, monitor, ListMonitor({honest}))] == ["r2"]


def test_novelty_counts_evaders_with_a_phrasing_the_previous_round_did_not_use():
    bank = phrases()
    old = _record(0, bank["decide_comply_af"][0])
    same, new = _record(1, bank["decide_comply_af"][0]), _record(2, bank["decide_comply_af"][1])
    assert novelty([same, new], [old]) == {"novel_phrasing": 0.5, "novel_keys": 0.0}
    assert novelty([], [old]) == {"novel_phrasing": None, "novel_keys": None}


def missed_by_learned() -> list[Transcript]:
    """Faking scratchpads (other half of the bank) that `learned` does not flag: evaders."""
    from aflab.monitors.corpus import monitor_corpus

    _, _, records = monitor_corpus(4000, 11, injection_rate=0.0, label_noise=0.0, half="b")
    faking = [r for r in records if r.meta["is_af"] and r.parsed.scratchpad]
    missed = [r for r, f in zip(faking, get_monitor("learned").flag(faking), strict=True) if not f][:40]
    assert len(missed) >= 8, "learned misses too little of half b to test retraining"
    return missed


def _rounds(**series):
    """Rounds of estimates from per-round values (one seed: no intervals)."""
    n = len(next(iter(series.values())))
    return [{"round": i, **{k: {"value": v[i], "ci95": None, "n": 1} for k, v in series.items()}} for i in range(n)]


def test_findings_follow_their_stated_rules():
    from aflab.reporting.arms_race import evasion_moves, gap_follows, recall_converges

    assert recall_converges(_rounds(recall_before=[0.5, 0.8, 0.82]))["answer"] == "yes"
    assert recall_converges(_rounds(recall_before=[0.5, 0.6, 0.9]))["answer"] == "no"
    assert recall_converges(_rounds(recall_before=[0.5, 0.6]))["answer"] == "unclear"
    ceiling = recall_converges(_rounds(recall_before=[0.88, 0.77, 1.0]))
    assert ceiling["answer"] == "yes" and "ceiling" in ceiling["text"]
    assert gap_follows(_rounds(gap=[0.4, 0.1], evaded=[0.3, 0.05]))["answer"] == "yes"
    assert gap_follows(_rounds(gap=[0.4, 0.4], evaded=[0.3, 0.05]))["answer"] == "no"
    noisy = _rounds(gap=[0.4, 0.1], evaded=[0.3, 0.05])
    noisy[0]["gap"]["ci95"], noisy[1]["gap"]["ci95"] = [0.0, 0.8], [-0.3, 0.5]
    assert "within seed-to-seed noise" in gap_follows(noisy)["text"]
    moved = evasion_moves(_rounds(novel_phrasing=[1.0, 0.75, 1.0], novel_keys=[1.0, 0.5, 0.5], evaded=[0.1] * 3))
    assert moved["answer"] == "yes" and moved["novel_phrasing"] == pytest.approx(0.875)
    assert "rounds 1–2" in moved["text"]
    stuck = evasion_moves(_rounds(novel_phrasing=[1.0, 0.2], novel_keys=[1.0, 0.0], evaded=[0.1] * 2))
    assert stuck["answer"] == "no" and "in round 1," in stuck["text"]
    assert evasion_moves(_rounds(novel_phrasing=[None, None], evaded=[0.0, 0.0]))["answer"] == "unclear"


def test_retrained_monitor_flags_the_evaders_it_was_trained_on(tmp_path):
    """M_r+1 = learned + extra: it must catch what M_r missed (fails if `extra` were ignored)."""
    base, missed = get_monitor("learned"), missed_by_learned()
    extra = tmp_path / "extra.jsonl"
    write_jsonl(extra, [{"id": r.id, "tier": "free", "scratchpad": r.parsed.scratchpad, "label_af": 1} for r in missed])
    ref = retrained(MonitorRef("learned"), extra)
    assert ref.options == {"extra": str(extra)}
    after = get_monitor(ref)
    recall_before, recall_after = base.flag(missed).mean(), after.flag(missed).mean()
    assert recall_before == 0.0 and recall_after > recall_before and recall_after >= 0.8
    assert after.folder != base.folder  # the caches never mix
    assert get_monitor("learned").flag(missed).mean() == 0.0
    empty = tmp_path / "none.jsonl"
    empty.write_text("")
    assert retrained(MonitorRef("learned"), empty).options == {}  # nothing evaded: the same monitor


def test_extra_refuses_examples_not_labelled_faking(tmp_path):
    extra = tmp_path / "extra.jsonl"
    write_jsonl(extra, [{"id": "a", "tier": "free", "scratchpad": "x", "label_af": 0}])
    with pytest.raises(UserError, match="label_af must be 1"):
        get_monitor(MonitorRef("learned", {"extra": str(extra)}))


def test_config_needs_a_retrainable_training_monitor_held_out_of_the_audit():
    base = {"organism": TINY_ORGANISM}
    validate(ArmsRaceConfig, base, "x.yaml")
    with pytest.raises(UserError, match=r"process_supervision\.monitor 'keyword' cannot be retrained"):
        validate(ArmsRaceConfig, {**base, "process_supervision": {"monitor": "keyword"}}, "x.yaml")
    with pytest.raises(UserError, match="an auditor must be held out"):
        validate(ArmsRaceConfig, {**base, "audit_monitors": ["learned", "auditor"]}, "x.yaml")
    quickstart = yaml.safe_load(packaged_config("quickstart").read_text())["organisms"][0]
    packaged = load_config(packaged_config("arms_race"), ArmsRaceConfig)
    assert packaged.organism == OrganismConfig.model_validate(quickstart)
    with pytest.raises(UserError, match="no organism named 'nope'"):
        validate(ArmsRaceConfig, {"organism": "quickstart:nope"}, "x.yaml")
    with pytest.raises(UserError, match="cannot learn from a teacher"):
        validate(ArmsRaceConfig, {"organism": {**TINY_ORGANISM, "source": "distill", "teacher": "a"}}, "x.yaml")


TINY_RACE = {
    "name": "tiny_race",
    "workers": 1,  # in-process: nothing here is about the worker count, and a pool only adds start-ups
    "organism": TINY_ORGANISM,
    "sampling": {"max_new_tokens": 48},
    "rounds": 2,
    "seeds": [0],
    "rl": {
        "steps": 1,
        "prompts_per_step": 2,
        "num_generations": 4,
        "max_completion_length": 40,
        "eval_every": 1,
        "save_every": 1,
        "eval_requests": 4,
        "eval_at_start": False,
    },
    "final_eval": {"max_new_tokens": 40},
}


def _race(tmp: Path, out: Path, cache: Path) -> subprocess.CompletedProcess:
    cfg = tmp / "race.yaml"
    cfg.write_text(yaml.safe_dump(TINY_RACE))
    env = {**os.environ, "AFLAB_CACHE_DIR": str(cache)}
    cmd = [sys.executable, "-m", "aflab.cli", "arms-race", str(cfg), "--out", str(out)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)


def _stable(out: Path) -> dict:
    result = json.loads((out / "arms_race.json").read_text())
    return {k: v for k, v in result.items() if k not in ("wall_s", "timings_s")}


@pytest.fixture(scope="module")
def race(tmp_path_factory, cache) -> Path:
    tmp = tmp_path_factory.mktemp("race")
    p = _race(tmp, tmp / "run", cache)
    assert p.returncode == 0, p.stderr[-3000:]
    return tmp / "run"


def test_tiny_race_writes_every_figure_of_every_round(race):
    result = json.loads((race / "arms_race.json").read_text())
    assert [r["round"] for r in result["rounds"]] == [0, 1] and result["truth"] == "oracle"
    for r in result["rounds"]:
        assert set(r) >= ROUND_KEYS, set(r)
        for key in ROUND_KEYS - {"round", "monitor"}:
            # a recall has no value (n = 0) when nothing was faking, as with this barely trained organism
            assert set(r[key]) == {"value", "ci95", "n"} and r[key]["n"] == (r[key]["value"] is not None)
    assert set(result["findings"]) == {"evasion_moves", "gap_follows", "recall_converges"}
    assert all(f["answer"] in ("yes", "no", "unclear") and f["text"] for f in result["findings"].values())
    assert result["timings_s"]["organism.model"] > 0 and result["timings_s"]["rl"] > 0
    assert (race / "arms_race.png").stat().st_size > 0
    assert "## What the race shows" in (race / "report.md").read_text()
    # the chain: round 1 trained from round 0's policy, its monitor on everything that evaded so far
    r0, r1 = (race / "arms_race" / "seed0" / f"round{r}" for r in (0, 1))
    assert json.loads((r1 / "rl" / "config.json").read_text())["organism"] == str(r0 / "rl" / "model")
    evaded0 = (r0 / "audit" / "evaders.jsonl").read_text().splitlines()
    assert len(evaded0) == result["rounds"][0]["n_evaders"]["value"]
    extra1 = (r1 / "audit" / "extra.jsonl").read_text().splitlines()
    assert extra1 == evaded0 + (r1 / "audit" / "evaders.jsonl").read_text().splitlines()


def test_next_round_trains_against_the_monitor_retrained_on_the_evaders(race, tmp_path):
    """Round 0's evaders (put there by hand: the tiny organism fakes too little) become the
    extra faking examples of round 1's training monitor, which then flags them."""
    from aflab.pipeline.arms_race import example, round_kwargs, round_task, stage_digest
    from aflab.progress import Reporter

    run = tmp_path / "run"
    shutil.copytree(race, run)
    audit0 = run / "arms_race" / "seed0" / "round0" / "audit"
    evaded = [example(r, 0, 0) for r in missed_by_learned()]
    write_jsonl(audit0 / "evaders.jsonl", evaded)
    write_jsonl(audit0 / "extra.jsonl", evaded)
    cfg = validate(ArmsRaceConfig, TINY_RACE, "tiny")
    out = round_task(Reporter(_Sink(), "r1"), **round_kwargs(cfg, run, seed=0, round_=1))
    r1 = run / "arms_race" / "seed0" / "round1"
    (ps,) = json.loads((r1 / "rl" / "config.json").read_text())["mitigation"]["components"]
    assert ps["name"] == "process_supervision"
    monitor = ps["options"]["monitor"]
    assert monitor == {"name": "learned", "options": {"extra": str(audit0 / "extra.jsonl")}}
    assert out["figures"]["extra_examples"] == len(evaded) and out["timings"]["rl"] > 0
    extra1 = [json.loads(x) for x in (r1 / "audit" / "extra.jsonl").read_text().splitlines()]
    assert extra1[: len(evaded)] == evaded
    trained = get_monitor(MonitorRef.parse(monitor))
    assert trained.flag([Transcript.model_validate(e) for e in evaded]).mean() >= 0.8
    assert stage_digest(r1 / "rl") != stage_digest(race / "arms_race" / "seed0" / "round1" / "rl")


def test_rerun_resumes_from_the_finished_stages(race, cache):
    before = _stable(race)
    again = _race(race.parent, race, cache)  # every stage is there: nothing is trained again
    assert again.returncode == 0, again.stderr[-3000:]
    timings = json.loads((race / "arms_race.json").read_text())["timings_s"]
    assert timings["rl"] == 0.0 and timings["organism.model"] == 0.0 and timings["retrain"] == 0.0
    assert _stable(race) == before
