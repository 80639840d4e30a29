"""Every CLI verb on a corpus of malformed files: exit 2 and one readable line naming the file and
line (or key), never a traceback; odd but valid records give exit 0 with unparseable counts."""

import json
import os
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
    # Python refuses to read integers of more than 4300 digits (ValueError, not a JSONDecodeError)
    ("huge_int", (rec() + "\n" + '{"id": ' + "7" * 5000 + "}\n").encode(), ":2: a number of 5000 digits at column 8"),
    (
        "huge_int_in_meta",
        (rec(id="m") + "\n").replace('"m"', '"m", "meta": {"n": -' + "1" * 4301 + "}").encode(),
        ":1:",
    ),
    # beyond a 64-bit float: json would read infinity, silently
    ("float_overflow", b'{"id": 1e99999, "tier": "free", "completion": "x"}\n', ":1: number 1e99999 is out of range"),
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
    ("huge_int", "name: x\nseed: " + "9" * 5000 + "\n", ":2: a number of 5000 digits at column 7"),
    ("not_mapping", "- just\n- a list\n", "expected a YAML mapping"),
    ("scalar", "42\n", "expected a YAML mapping"),
    ("broken", "name: [oops\n", "broken YAML"),
    ("tabs", "name:\n\t- x\n", "broken YAML"),
    ("binary", "\x00\x01", "NUL bytes"),
]
PS_NOPE = "{name: p, components: [{name: process_supervision, options: {monitor: nope}}]}"
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
    # every name a config gives is resolved at validation, reported with the key that holds it
    ("unknown_source", "organisms: [{name: a, source: nope}]\n", "organisms.0.source: unknown organism source 'nope'"),
    (
        "misspelt_source_option",
        "organisms: [{name: a, source: {name: generator, options: {sed: 1}}}]\n",
        "organisms.0.source.options.sed: organism source 'generator': unknown key",
    ),
    (
        "unknown_eval_monitor",
        "organisms: [{name: a}]\nevaluation: {monitors: [keyword, nope]}\n",
        "evaluation.monitors.1: unknown monitor 'nope'; known: auditor,",
    ),
    (
        "unknown_audit_monitor",
        "organisms: [{name: a}]\nsweep: {mitigations: [{name: m}], audit_monitors: [{name: nope}]}\n",
        "sweep.audit_monitors.0: unknown monitor 'nope'",
    ),
    (
        "unknown_ps_monitor",
        f"organisms: [{{name: a}}]\nsweep: {{mitigations: [{{name: m}}, {PS_NOPE}]}}\n",
        "sweep.mitigations.1.components.0.options.monitor: unknown monitor 'nope'",
    ),
    (
        "unknown_af_plus_monitor",
        "organisms: [{name: a}, {name: b, teacher: a,\n"
        "  source: {name: af_plus, options: {reward: {monitor: nope}, rl: {}}}}]\n",
        "organisms.1.source.options.reward.monitor: unknown monitor 'nope'",
    ),
    (  # an older config's af_plus keys are read as the source's options, and checked there
        "unknown_af_plus_monitor_old_keys",
        "organisms: [{name: a}, {name: b, source: af_plus, teacher: a, af_plus: {monitor: nope}, af_plus_rl: {}}]\n",
        "organisms.1.source.options.reward.monitor: unknown monitor 'nope'",
    ),
    (
        "af_plus_without_rl",
        "organisms: [{name: a}, {name: b, source: af_plus, teacher: a}]\n",
        "organisms.1.source.options.rl: organism source 'af_plus': Field required",
    ),
    (
        "teacher_source_without_teacher",
        "organisms: [{name: a, source: distill}]\n",
        "organisms.0.teacher: source 'distill' is built from a teacher",
    ),
    (
        "teacher_of_a_generator",
        "organisms: [{name: a}, {name: b, teacher: a}]\n",
        "organisms.1.teacher: source 'generator' takes no teacher",
    ),
    (
        "teacher_with_a_teacher",
        "organisms: [{name: a}, {name: b, source: distill, teacher: a}, {name: c, source: distill, teacher: b}]\n",
        "teacher 'b' must be an organism of this run without a teacher",
    ),
    (
        "unknown_mitigation",
        "organisms: [{name: a}]\nsweep: {mitigations: [{name: m}, {name: p}, {name: q, components: [{name: nope}]}]}\n",
        "sweep.mitigations.2.components.0: unknown mitigation 'nope'",
    ),
    (
        "unknown_judge_backend",
        "organisms: [{name: a}]\nevaluation: {monitors: [{name: judge, options: {backend: nope}}]}\n",
        "evaluation.monitors.0.options.backend: unknown judge backend 'nope'; known: anthropic, hf, openai",
    ),
    (
        "monitor_option_it_does_not_take",
        "organisms: [{name: a}]\nevaluation: {monitors: [{name: keyword, options: {turbo: 1}}]}\n",
        "evaluation.monitors.0.options.turbo: monitor 'keyword': unknown key",
    ),
    (
        "monitor_option_of_the_wrong_type",
        "organisms: [{name: a}]\nevaluation: {monitors: [{name: keyword, options: {threshold: high}}]}\n",
        "evaluation.monitors.0.options.threshold: monitor 'keyword': Input should be a valid number",
    ),
    (
        "judge_backend_option_of_the_wrong_type",
        "organisms: [{name: a}]\n"
        "evaluation: {monitors: [{name: judge, options: {backend: openai, concurrency: many}}]}\n",
        "evaluation.monitors.0.options.concurrency: the openai judge backend: Input should be a valid integer",
    ),
]
TRAIN_CONFIGS = [
    *COMMON_CONFIGS,
    (
        "unknown_held_out",
        "organism: x\nheld_out_monitors: [keyword, nope]\n",
        "held_out_monitors.1: unknown monitor 'nope'",
    ),
    (
        "unknown_reward_monitor",
        f"organism: x\nmitigation: {PS_NOPE}\n",
        "mitigation.components.0.options.monitor: unknown",
    ),
    (
        "unknown_plugin",
        "organism: x\nmitigation: {components: [nope]}\n",
        "mitigation.components.0: unknown mitigation 'nope'",
    ),
    ("unknown_key", "organism: x\nturbo: true\n", "turbo: unknown key"),
    ("negative_steps", "organism: x\nrl: {steps: -1}\n", "rl.steps"),
    ("prob_above_1", "organism: x\nrl: {temperature: 9}\n", "rl.temperature"),
    ("missing_organism", "seed: 1\n", "organism"),
    (
        "unknown_variant",
        "organism: x\nmitigation: {components: [{name: interrogation, options: {variant: sneaky}}]}\n",
        "mitigation.components.0.options.variant",
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
    assert not (tmp_path / "o").exists()  # refused before any stage ran: nothing written, nothing trained


ARMS_RACE_CONFIGS = [
    ("unknown_ps_monitor", "organism: quickstart:tgg_counterfactual\nprocess_supervision: {monitor: nope}\n"),
    ("unknown_audit_monitor", "organism: quickstart:tgg_counterfactual\naudit_monitors: [keyword, nope]\n"),
]


@pytest.mark.parametrize(("name", "text"), ARMS_RACE_CONFIGS, ids=[c[0] for c in ARMS_RACE_CONFIGS])
def test_arms_race_names_the_key_of_an_unknown_monitor(tmp_path, capsys, name, text):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    code, _, err = run_cli(["arms-race", str(path), "--out", str(tmp_path / "o")], capsys)
    one = " ".join(err.split())
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    key = "process_supervision.monitor" if "ps" in name else "audit_monitors.1"
    assert f"{path}: {key}: unknown monitor 'nope'" in one
    assert not (tmp_path / "o").exists()


def _model_folder(tmp_path, kind):
    """A folder that is not a loadable model, in the ways a user gets there."""
    folder = tmp_path / kind
    folder.mkdir()
    if kind == "junk":
        (folder / "notes.txt").write_text("my model is somewhere else\n")
    elif kind == "no_tokenizer":
        (folder / "config.json").write_text("{}")
        (folder / "model.safetensors").write_bytes(b"x")
    return folder


@pytest.mark.parametrize(
    ("kind", "gguf", "key", "expected"),
    [
        ("empty", None, "base_model", "is not a model folder: no config.json"),
        ("junk", None, "base_model", "is not a model folder: no config.json"),
        ("no_tokenizer", None, "base_model", "has no tokenizer"),
        ("junk", "notes.txt", "gguf_file", "is not a GGUF file"),
        ("empty", "model.gguf", "gguf_file", "no GGUF file 'model.gguf'"),
    ],
)
def test_a_model_path_that_is_not_a_model_exits_2_naming_the_key(tmp_path, capsys, kind, gguf, key, expected):
    folder = _model_folder(tmp_path, kind)
    organism = {"name": "real", "base_model": str(folder), "prompt_format": "chat", "gguf_file": gguf}
    path = tmp_path / "real.yaml"
    path.write_text(json.dumps({"organisms": [{"name": "scratch"}, organism]}))  # JSON is YAML
    code, _, err = run_cli(["run", str(path), "--out", str(tmp_path / "o")], capsys)
    one = " ".join(err.split())
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert f"{path}: organisms.1.{key}: " in one and expected in one and str(folder) in one
    assert not (tmp_path / "o").exists()


def test_a_model_folder_with_junk_files_fails_at_load_naming_the_key(tmp_path):
    """A folder that has the right file names but not a model (the config check reads names only):
    the load site turns the loader's error into one line naming base_model and the path."""
    from aflab.errors import UserError
    from aflab.organisms.checkpoint import load_base

    folder = tmp_path / "fake"
    folder.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (folder / name).write_text("not what it says\n")
    with pytest.raises(UserError) as e:
        load_base(str(folder))
    assert str(e.value).startswith(f"base_model {folder}: cannot load a model from {folder} (")
    assert "\n" not in str(e.value)


def test_unknown_config_name_exits_2_listing_the_packaged_ones(tmp_path, capsys):
    for argv in (["run", "nope"], ["arms-race", "nope"], ["train", "nope"]):
        code, _, err = run_cli([*argv, "--out", str(tmp_path / "o")], capsys)
        one = " ".join(err.split())
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert "nope: no such file, nor a packaged config name (packaged: " in one
        assert "paper" in one and "quickstart" in one and "smoke" in one
    code, _, err = run_cli(["run", "configs/paper.yaml", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "the packaged one is named paper" in err
    code, out, err = run_cli(["configs", "show", "nope"], capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "no packaged config named 'nope' (packaged: arms_race," in " ".join(err.split())
    assert not (tmp_path / "o").exists()


def test_an_organism_path_that_is_not_an_organism(tmp_path, capsys):
    path = tmp_path / "t.yaml"
    path.write_text(f"organism: {tmp_path}\n")
    code, _, err = run_cli(["train", str(path), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "not an aflab organism" in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"organisms": {},\n "n": ' + "9" * 5000 + "}", "summary.json:2: a number of 5000 digits"),
        ('{"organisms": {}, "x": 1e999}', "summary.json: number 1e999 is out of range"),
        ('{"organisms": {},\n "n": }', "summary.json:2: not valid JSON"),
    ],
    ids=["huge_int", "huge_float", "broken"],
)
def test_an_unreadable_summary_exits_2_naming_the_file(tmp_path, capsys, text, expected):
    """`aflab report` reads a summary.json that a person may have edited: the same one-line errors as JSONL."""
    (tmp_path / "summary.json").write_text(text)
    for args in (["report", str(tmp_path)], ["report", str(tmp_path), "--readme"]):
        code, _, err = run_cli(args, capsys)
        assert code == 2 and expected in err and len(err.strip().splitlines()) == 1, err


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


def test_the_entry_point_reports_huge_numbers_and_unknown_names_in_one_line(tmp_path):
    """The last fault cases through the real entry point: no 'internal error', exit 2, one line."""
    records = tmp_path / "huge.jsonl"
    records.write_text(rec() + "\n" + '{"id": "b", "n": ' + "9" * 5000 + "}\n")
    config = tmp_path / "bad.yaml"
    config.write_text("organisms: [{name: a}]\nsweep: {mitigations: [{name: m}, {name: p, components: [nope]}]}\n")
    env = {**os.environ, "COLUMNS": "400"}
    cases = [
        (["evaluate", "--transcripts", str(records), "--out", str(tmp_path / "ev")], f"{records}:2: a number of 5000"),
        (["run", str(config), "--out", str(tmp_path / "o")], f"{config}: sweep.mitigations.1.components.0: unknown"),
    ]
    for argv, expected in cases:
        p = subprocess.run(
            [sys.executable, "-m", "aflab.cli", *argv], capture_output=True, text=True, timeout=120, env=env
        )
        assert p.returncode == 2 and "internal error" not in p.stderr and "Traceback" not in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1 and expected in p.stderr
