import pytest

from aflab.config import RunConfig, TrainConfig, load_config, packaged_config
from aflab.errors import UserError


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
    # the audit's controls and the paper's comparison run in the quickstart, on 2+ organisms per recipe
    arms = {m.name for m in cfg.sweep.mitigations}
    assert {"null_update", "positive_control", "interrogation", "interrogation_frozen"} <= arms
    assert cfg.organism_seeds >= 2 and cfg.sweep.seeds
    # what the quickstart leaves out for time is in the paper config: the control organism, more seeds
    paper = load_config(packaged_config("paper"), RunConfig)
    assert "control" in {o.name for o in paper.organisms} and len(paper.sweep.seeds) >= 2
