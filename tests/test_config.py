import pytest

from aflab.config import RunConfig, TrainConfig, packaged_config
from aflab.errors import UserError
from aflab.pipeline.load import load_config, validate


def cfg_file(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty config"),
        ("- a\n- b\n", "expected a YAML mapping at the top level, got list"),
        ("name: [unclosed\n", "broken YAML"),
        ("organisms: [{name: x}]\nbogus: 1\n", "bogus: unknown key"),
        ("organisms: [{name: x, data: {free_fakee: 0.3}}]\n", "organisms.0.data.free_fakee: unknown key"),
        ("organisms: [{name: x, data: {free_fake: 1.5}}]\n", "organisms.0.data.free_fake"),
        ("organisms: [{name: x, sft: {epochs: -1}}]\n", "organisms.0.sft.epochs"),
        ("organisms: [{name: x, data: {motivation: genuine, free_fake: 0.3}}]\n", "cannot fake"),
        ("organisms: []\n", "organisms"),
        ("organisms: [{name: x}, {name: x}]\n", "unique"),
        ("organisms: [{name: '../../evil'}]\n", "organisms.0.name"),
    ],
)
def test_bad_configs_name_the_key(tmp_path, text, expected):
    path = cfg_file(tmp_path, text)
    with pytest.raises(UserError) as e:
        load_config(path, RunConfig)
    assert expected in str(e.value) and str(path) in str(e.value)


def test_train_config_rejects_negative_steps_and_held_out_in_reward(tmp_path):
    with pytest.raises(UserError, match=r"rl\.steps"):
        load_config(cfg_file(tmp_path, "organism: x\nrl: {steps: -3}\n"), TrainConfig)
    text = "organism: x\nmitigation: {process_supervision: {monitor: keyword}}\nheld_out_monitors: [keyword]\n"
    with pytest.raises(UserError, match=r"never be part of the reward"):
        load_config(cfg_file(tmp_path, text), TrainConfig)


def test_packaged_quickstart_is_valid():
    cfg = load_config(packaged_config("quickstart"), RunConfig)
    # the arms that carry the question, paired against the null update (the first arm, the reference),
    # on enough organisms for df >= 5 intervals
    arms = [m.name for m in cfg.sweep.mitigations]
    assert arms[0] == "null_update" and cfg.sweep.mitigations[0].learning_rate == 0
    assert {"output_only", "ps_learned", "positive_control"} <= set(arms)
    assert cfg.organism_seeds >= 6 and cfg.sweep.seeds
    # organism replicas speak different phrase subsets (seeded by the replica's seed, not only the name)
    from aflab.organisms.generator import restricted_bank

    assert restricted_bank(3, 10, "o:0") != restricted_bank(3, 10, "o:1")
    # what the quickstart leaves out for time is in the paper config: the control organism, more seeds,
    # the interrogation arms
    paper = load_config(packaged_config("paper"), RunConfig)
    assert "control" in {o.name for o in paper.organisms} and len(paper.sweep.seeds) >= 2
    assert {"interrogation", "interrogation_frozen"} <= {m.name for m in paper.sweep.mitigations}


def test_every_packaged_config_validates_and_says_what_it_is_for():
    from aflab.config import PURPOSE, config_purpose, packaged_config_names
    from aflab.pipeline.arms_race import ArmsRaceConfig

    names = packaged_config_names()
    assert {"quickstart", "paper", "smoke", "smollm2", "mediation", "arms_race", "train_example"} <= set(names)
    for name in names:
        path = packaged_config(name)
        model = {"arms_race": ArmsRaceConfig, "train_example": TrainConfig}.get(name, RunConfig)
        load_config(path, model)  # smollm2's GGUF folder passes the real-model check too
        assert path.read_text().startswith(PURPOSE), name  # the one line `aflab configs list` shows
        assert 20 <= len(config_purpose(path)) <= 110, name


def test_config_purpose_falls_back_to_the_first_comment(tmp_path):
    from aflab.config import config_purpose

    assert config_purpose(cfg_file(tmp_path, "name: x  # not this\n# first\n# purpose: the one\n")) == "the one"
    assert config_purpose(cfg_file(tmp_path, "# first comment\nname: x\n# second\n")) == "first comment"
    assert config_purpose(cfg_file(tmp_path, "name: x\n")) == ""


def test_smoke_stays_tiny():
    """The shared tiny end-to-end run: a few tiny organisms, two arms, a couple of RL steps."""
    cfg = load_config(packaged_config("smoke"), RunConfig)
    assert len(cfg.organisms) * cfg.organism_seeds <= 2 and cfg.sweep is not None
    assert [m.name for m in cfg.sweep.mitigations] == ["output_only", "null_update"]
    assert cfg.sweep.mitigations[1].learning_rate == 0.0 and len(cfg.sweep.seeds) == 1
    assert cfg.sweep.rl.steps <= 2 and cfg.sweep.rl.prompts_per_step * cfg.sweep.rl.num_generations <= 8
    assert all(o.base_model is None and o.data.n_examples <= 200 and o.model.hidden_size <= 32 for o in cfg.organisms)


def test_a_config_argument_is_a_file_first_then_a_packaged_name(tmp_path, monkeypatch):
    from aflab.config import resolve_config

    monkeypatch.chdir(tmp_path)
    assert resolve_config(None, "quickstart") == packaged_config("quickstart")
    assert resolve_config("paper", "quickstart") == packaged_config("paper")
    (tmp_path / "paper").write_text("organisms: [{name: mine}]\n")
    assert resolve_config("paper", "quickstart").resolve() == (tmp_path / "paper").resolve()  # never shadowed
    with pytest.raises(UserError, match=r"^nope: no such file, nor a packaged config name \(packaged: arms_race, "):
        resolve_config("nope", "quickstart")


def test_configs_show_prints_the_yaml_verbatim_and_it_runs_as_a_file(tmp_path, capsys, monkeypatch):
    from aflab.cli import main
    from aflab.config import config_purpose

    monkeypatch.setenv("COLUMNS", "300")  # one table row per line

    def cli(*argv):
        import sys

        old, sys.argv = sys.argv, ["aflab", *argv]
        try:
            main()
        except SystemExit as e:
            assert e.code in (0, None), capsys.readouterr().err
        finally:
            sys.argv = old
        return capsys.readouterr().out

    shown = cli("configs", "show", "paper")
    assert shown == packaged_config("paper").read_text()
    mine = tmp_path / "my.yaml"
    mine.write_text(shown)
    assert load_config(mine, RunConfig) == load_config(packaged_config("paper"), RunConfig)
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in cli("configs", "list").splitlines()]
    table = {row[0]: row[1] for row in rows if len(row) == 2}
    assert {"quickstart", "paper", "smoke"} <= set(table)
    assert table["smoke"] == config_purpose(packaged_config("smoke")) and "barely trained" in table["smoke"]


def test_run_seed_option_sets_the_top_level_seed(monkeypatch, tmp_path):
    """`aflab run --seed S` builds replica k of every organism from S + k (what stability.py relies on)."""
    from typer.testing import CliRunner

    import aflab.pipeline.run as run_module
    from aflab.cli import app

    seen = {}

    def fake_run_all(cfg, run_dir, config_path=None, executor=None):
        seen.update(seed=cfg.seed, run_dir=run_dir)
        return {"wall_s": 0.0}

    monkeypatch.setattr(run_module, "run_all", fake_run_all)
    result = CliRunner().invoke(app, ["run", "smoke", "--seed", "100", "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert seen["seed"] == 100 and seen["run_dir"] == tmp_path / "r"
    assert CliRunner().invoke(app, ["run", "smoke", "--seed", "-1"]).exit_code == 2


def test_follow_ups_can_be_spent_on_samples_only_when_no_arm_is_interrogated():
    sweep = {"mitigations": [{"name": "null", "learning_rate": 0}], "final_eval": {"follow_ups": False}}
    assert RunConfig.model_validate({"organisms": [{"name": "o"}], "sweep": sweep}).sweep.final_eval.follow_ups is False
    asked = {**sweep, "mitigations": [*sweep["mitigations"], {"name": "ask", "interrogation": {"variant": "plain"}}]}
    with pytest.raises(UserError, match=r"\['ask'\] need the interrogation follow-up"):
        validate(RunConfig, {"organisms": [{"name": "o"}], "sweep": asked}, "x.yaml")
    mediation_only = {**asked, "final_eval": {"follow_ups": "mediation"}}
    with pytest.raises(UserError, match=r"is 'mediation', but \['ask'\] need the interrogation follow-up"):
        validate(RunConfig, {"organisms": [{"name": "o"}], "sweep": mediation_only}, "x.yaml")
    with pytest.raises(UserError, match="follow_ups"):
        validate(RunConfig, {"organisms": [{"name": "o"}], "sweep": {**sweep, "final_eval": {"follow_ups": "x"}}}, "y")


def test_an_older_configs_teacher_keys_are_the_same_source_as_its_options():
    """distill_samples, af_plus and af_plus_rl beside `source` are read as that source's options."""
    rl = {"steps": 3}
    old = [
        {"name": "s", "source": "distill", "teacher": "a", "distill_samples": 30},
        {"name": "p", "source": "af_plus", "teacher": "a", "af_plus": {"monitor": "learned"}, "af_plus_rl": rl},
    ]
    new = [
        {"name": "s", "source": {"name": "distill", "options": {"samples": 30}}, "teacher": "a"},
        {
            "name": "p",
            "source": {"name": "af_plus", "options": {"reward": {"monitor": "learned"}, "rl": rl}},
            "teacher": "a",
        },
    ]
    dump = [validate(RunConfig, {"organisms": [{"name": "a"}, *o]}, "x").model_dump(mode="json") for o in (old, new)]
    assert dump[0] == dump[1]
    assert dump[0]["organisms"][1]["source"] == {"name": "distill", "options": {"samples": 30}}
    with pytest.raises(UserError, match="old form of source options"):
        validate(RunConfig, {"organisms": [{"name": "a"}, {**new[0], "distill_samples": 3}]}, "x")
