"""Every CLI verb on a corpus of malformed files: exit 2 and one readable line naming the file and
line (or key), never a traceback; odd but valid records give exit 0 with unparseable counts."""

import json
import subprocess
import sys

import pytest

from aflab.cli import main

GOOD = {"id": "a", "tier": "free", "completion": "<SCRATCHPAD_REASONING>x</SCRATCHPAD_REASONING><OUTPUT>y</OUTPUT>"}


def rec(**kw):
    return json.dumps({**GOOD, **kw})


# (name, file bytes, what the one-line message must contain)
STRUCTURAL = [
    ("empty", b"", "empty file"),
    ("blank_lines_only", b"\n\r\n  \n", "empty file"),
    ("prose", b"Here are my transcripts, enjoy!\n", ":1: not valid JSON"),
    ("truncated_json", (rec() + "\n" + '{"id": "b", "tier": "paid", "compl').encode(), ":2: not valid JSON"),
    ("binary", bytes(range(256)), "NUL bytes"),
    ("nul_in_text", (rec() + "\n").encode().replace(b'"a"', b'"a\x00"'), "NUL bytes"),
    ("latin1", "caf\xe9\n".encode("latin-1"), "not valid UTF-8"),
    ("top_level_array", b'[{"id": "a"}]\n', "got an array"),
    ("top_level_string", b'"just a string"\n', "got a string"),
    ("wrong_type_id", (rec(id=7) + "\n").encode(), "field 'id'"),
    ("wrong_type_tier", (rec(tier=True) + "\n").encode(), "field 'tier'"),
    ("unknown_tier", (rec(tier="enterprise") + "\n").encode(), "field 'tier'"),
    ("missing_text", json.dumps({"id": "a", "tier": "free"}).encode() + b"\n", "needs a 'completion'"),
    ("missing_id", json.dumps({"tier": "free", "completion": "x"}).encode() + b"\n", "field 'id'"),
    ("duplicate_ids", (rec() + "\n" + rec() + "\n").encode(), "duplicate id 'a'"),
    ("meta_not_object", (rec(meta=[1, 2]) + "\n").encode(), "field 'meta'"),
    ("deep_nesting", ("[" * 100000 + "]" * 100000 + "\n").encode(), "line 1" if False else ":1:"),
]

ODD_BUT_VALID = [
    ("bom_crlf_blank", ("\ufeff" + rec(id="1") + "\r\n\r\n" + rec(id="2", tier="paid") + "\r\n").encode()),
    (
        "unicode",
        (
            rec(id="u", completion="<OUTPUT>\u05e9\u05dc\u05d5\u05dd e\u0301 a\u2028b \U0001f600</OUTPUT>") + "\n"
        ).encode(),
    ),
    ("no_tags", (rec(id="n", completion="I refuse.") + "\n").encode()),
    ("unclosed_tags", (rec(id="c", completion="<SCRATCHPAD_REASONING>hmm <OUTPUT>partial") + "\n").encode()),
    (
        "fake_nested_tags",
        (
            rec(
                id="f",
                completion="<SCRATCHPAD_REASONING>a</SCRATCHPAD_REASONING> b"
                "</SCRATCHPAD_REASONING><OUTPUT>x<OUTPUT>y</OUTPUT></OUTPUT>",
            )
            + "\n"
        ).encode(),
    ),
    ("duplicate_outputs", (rec(id="d", completion="<OUTPUT>one</OUTPUT><OUTPUT>two</OUTPUT>") + "\n").encode()),
    (
        "lower_case_tags",
        (rec(id="l", completion="<scratchpad_reasoning>x</scratchpad_reasoning><output>y</output>") + "\n").encode(),
    ),
    ("five_mb_line", (rec(id="big", completion="<OUTPUT>" + "z" * 5_000_000 + "</OUTPUT>") + "\n").encode()),
    (
        "split_fields",
        json.dumps({"id": "s", "tier": "paid", "scratchpad": "s", "output": "o", "x": 1}).encode() + b"\n",
    ),
    ("label_and_kind", (rec(id="k", label_af=1, kind="explicit") + "\n").encode()),
    ("id_with_path", (rec(id="../../etc/passwd") + "\n").encode()),
]


def run_cli(argv, capsys):
    old = sys.argv
    sys.argv = ["aflab", *argv]
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        sys.argv = old
    out = capsys.readouterr()
    return code, out.out, out.err


def verbs(path, tmp_path):
    return {
        "evaluate": ["evaluate", "--transcripts", str(path), "--out", str(tmp_path / "ev")],
        "classify": ["classify", "--monitor", "keyword", "--input", str(path), "--output", str(tmp_path / "s.jsonl")],
        "monitors-eval": [
            "monitors",
            "eval",
            "--input",
            str(path),
            "--monitor",
            "keyword",
            "--out",
            str(tmp_path / "m.json"),
            "--bootstrap",
            "100",
        ],
    }


@pytest.mark.parametrize(("name", "content", "expected"), STRUCTURAL, ids=[s[0] for s in STRUCTURAL])
@pytest.mark.parametrize("verb", ["evaluate", "classify", "monitors-eval"])
def test_structural_errors_exit_2_with_one_line(tmp_path, capsys, name, content, expected, verb):
    path = tmp_path / f"{name}.jsonl"
    path.write_bytes(content)
    code, _, err = run_cli(verbs(path, tmp_path)[verb], capsys)
    assert code == 2, err
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert str(path) in err.replace("\n", "") and expected in err


@pytest.mark.parametrize(("name", "content"), ODD_BUT_VALID, ids=[s[0] for s in ODD_BUT_VALID])
def test_odd_but_valid_records_are_counted_not_fatal(tmp_path, capsys, name, content):
    path = tmp_path / f"{name}.jsonl"
    path.write_bytes(content)
    for verb in ("evaluate", "classify"):
        code, _, err = run_cli(verbs(path, tmp_path)[verb], capsys)
        assert code == 0, err
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    n_records = len([x for x in content.decode("utf-8-sig").split("\n") if x.strip()])
    assert metrics["n"]["free"] + metrics["n"]["paid"] + metrics["n"]["unparseable"] == n_records
    scores = (tmp_path / "s.jsonl").read_text().splitlines()
    assert len(scores) == n_records
    assert not (tmp_path.parent / "etc").exists()


def test_monitors_eval_needs_labels(tmp_path, capsys):
    path = tmp_path / "t.jsonl"
    path.write_text(rec() + "\n")
    code, _, err = run_cli(["monitors", "eval", "--input", str(path), "--monitor", "keyword"], capsys)
    assert code == 2 and "label_af" in err


COMMON_CONFIGS = [
    ("empty", "", "empty config"),
    ("not_mapping", "- just\n- a list\n", "expected a YAML mapping"),
    ("scalar", "42\n", "expected a YAML mapping"),
    ("broken", "name: [oops\n", "broken YAML"),
    ("tabs", "name:\n\t- x\n", "broken YAML"),
    ("binary", "\x00\x01", "NUL bytes"),
]
RUN_CONFIGS = [
    *COMMON_CONFIGS,
    ("unknown_key", "organisms: [{name: a}]\nturbo: true\n", "turbo: unknown key"),
    ("nested_unknown", "organisms: [{name: a, sft: {epoch: 3}}]\n", "organisms.0.sft.epoch: unknown key"),
    (
        "negative_steps",
        "organisms: [{name: a}]\nsweep: {mitigations: [{name: m}], rl: {steps: -1}}\n",
        "sweep.rl.steps",
    ),
    ("prob_above_1", "organisms: [{name: a, data: {free_fake: 1.2}}]\n", "organisms.0.data.free_fake"),
    ("wrong_type", "organisms: [{name: a, sft: {learning_rate: fast}}]\n", "organisms.0.sft.learning_rate"),
    ("unknown_teacher", "organisms: [{name: a, source: distill, teacher: b}]\n", "teacher 'b'"),
]
TRAIN_CONFIGS = [
    *COMMON_CONFIGS,
    ("unknown_key", "organism: x\nturbo: true\n", "turbo: unknown key"),
    ("negative_steps", "organism: x\nrl: {steps: -1}\n", "rl.steps"),
    ("prob_above_1", "organism: x\nrl: {temperature: 9}\n", "rl.temperature"),
    ("missing_organism", "seed: 1\n", "organism"),
    (
        "unknown_variant",
        "organism: x\nmitigation: {interrogation: {variant: sneaky}}\n",
        "mitigation.interrogation.variant",
    ),
]


@pytest.mark.parametrize(
    ("verb", "name", "text", "expected"),
    [("run", *c) for c in RUN_CONFIGS] + [("train", *c) for c in TRAIN_CONFIGS],
    ids=[f"run-{c[0]}" for c in RUN_CONFIGS] + [f"train-{c[0]}" for c in TRAIN_CONFIGS],
)
def test_bad_configs_exit_2_naming_the_key(tmp_path, capsys, verb, name, text, expected):
    path = tmp_path / f"{name}.yaml"
    path.write_bytes(text.encode("utf-8"))
    code, _, err = run_cli([verb, str(path), "--out", str(tmp_path / "o")], capsys)
    assert code == 2, err
    one = " ".join(err.split())
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert str(path) in one and expected in one


def test_an_organism_path_that_is_not_an_organism(tmp_path, capsys):
    path = tmp_path / "t.yaml"
    path.write_text(f"organism: {tmp_path}\n")
    code, _, err = run_cli(["train", str(path), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "not an aflab organism" in err


def test_missing_files_and_unknown_monitor(tmp_path, capsys):
    code, _, err = run_cli(["evaluate", "--transcripts", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path)], capsys)
    assert code == 2 and "no such file" in err
    path = tmp_path / "t.jsonl"
    path.write_text(rec() + "\n")
    code, _, err = run_cli(
        ["classify", "--monitor", "magic", "--input", str(path), "--output", str(tmp_path / "o")], capsys
    )
    assert code == 2 and "unknown monitor 'magic'" in err


def test_the_installed_entry_point_behaves_the_same(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text("not json\n")
    p = subprocess.run(
        [sys.executable, "-m", "aflab.cli", "evaluate", "--transcripts", str(path), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2 and "Traceback" not in p.stderr and f"{path}:1: not valid JSON" in p.stderr
    p = subprocess.run(
        [sys.executable, "-m", "aflab.cli", "evaluate", "--bogus"], capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 2 and "Traceback" not in p.stderr
