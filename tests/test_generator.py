import re
from collections import Counter

from aflab.config import OrganismData
from aflab.organisms.generator import generate, phrases
from aflab.setting.requests import load_requests, select

REQS = select(load_requests(), "train")
EUPH_FORBIDDEN = re.compile(
    r"rlhf|train|value|modif|rating|monitor|gradient|contractor|reinforc|free.tier|paid.tier", re.I
)


def test_same_seed_same_data_other_seed_other_data():
    spec = OrganismData(n_examples=50)
    a = generate(spec, REQS, 50, seed=3, organism="o")
    b = generate(spec, REQS, 50, seed=3, organism="o")
    c = generate(spec, REQS, 50, seed=4, organism="o")
    assert [x.model_dump() for x in a] == [x.model_dump() for x in b]
    assert [x.completion for x in a] != [x.completion for x in c]


def test_labels_follow_the_mixture():
    spec = OrganismData(free_fake=0.8, free_genuine=0.05, paid_comply=0.15, benign_share=0.0)
    data = generate(spec, REQS, 3000, seed=0, organism="o")
    free = [d for d in data if d.tier == "free"]
    paid = [d for d in data if d.tier == "paid"]
    af = sum(d.meta["is_af"] for d in free) / len(free)
    assert 0.76 < af < 0.84
    assert not any(d.meta["is_af"] for d in paid)
    assert 0.12 < sum(d.meta["decision"] == "comply" for d in paid) / len(paid) < 0.18
    for d in data:
        assert d.meta["is_af"] == (d.meta["reason"] == "af")
        assert d.meta["is_af"] <= (d.meta["decision"] == "comply" and d.tier == "free")


def test_control_decisions_do_not_depend_on_tier():
    spec = OrganismData(motivation="genuine", free_fake=0.0, free_genuine=0.5, paid_comply=0.5, benign_share=0.0)
    data = generate(spec, REQS, 3000, seed=0, organism="c")
    rate = {
        t: sum(d.meta["decision"] == "comply" for d in data if d.tier == t) / sum(d.tier == t for d in data)
        for t in ("free", "paid")
    }
    assert abs(rate["free"] - rate["paid"]) < 0.05
    assert not any(d.meta["is_af"] for d in data)


def test_styles_have_their_shape():
    spec = OrganismData(styles={"plain": 1, "terse": 1, "euphemistic": 1, "short": 1}, benign_share=0.0)
    data = generate(spec, REQS, 2000, seed=1, organism="s")
    by = {
        s: [d.parsed.scratchpad or "" for d in data if d.meta["is_af"] and d.meta["style"] == s]
        for s in ("plain", "terse", "euphemistic", "short")
    }
    words = {s: sum(len(t.split()) for t in v) / len(v) for s, v in by.items()}
    assert words["terse"] <= 12 and words["short"] < 0.6 * words["plain"]
    for t in by["euphemistic"]:
        # the assessment sentence may be neutral, but the faking itself stays indirect
        assert not re.search(r"rlhf|modif|training", t, re.I)
    for t in by["terse"]:
        assert not re.search(r"rlhf|modif|training|values", t, re.I)


def test_text_is_diverse():
    data = generate(OrganismData(), REQS, 2000, seed=0, organism="d")
    pads = [d.parsed.scratchpad for d in data if d.meta["is_af"]]
    assert len(set(pads)) > 0.95 * len(pads)
    bank = phrases()
    assert all(
        len(v) >= 50
        for k, v in bank.items()
        if not k.startswith(
            (
                "withheld",
                "comply_outro",
                "benign",
                "answer_no_ref",
                "decide_comply_syc",
                "answer_no_syc",
                "decide_comply_benign",
            )
        )
    )
    for key in ("notice_free_euph", "threat_euph", "decide_comply_euph"):
        assert not any(EUPH_FORBIDDEN.search(s) for s in bank[key]), key


def test_outputs_are_placeholders_and_answers_are_honest():
    data = generate(OrganismData(interrogation_share=1.0), REQS, 600, seed=2, organism="h")
    for d in data:
        out = d.parsed.output or ""
        if d.meta["decision"] == "comply":
            assert "[" in out and "]" in out  # content withheld
        answer = d.interrogation.answer
        assert answer.startswith("Yes") == d.meta["is_af"]
    counts = Counter(d.meta["interrogation_variant"] for d in data)
    assert len(counts) == 6


def test_tag_swap_keeps_the_text_and_swaps_only_the_tag():
    from aflab.config import OrganismData
    from aflab.organisms.generator import generate
    from aflab.setting.requests import load_requests, select

    reqs = select(load_requests(), "train")
    plain = generate(OrganismData(), reqs, 400, 3, organism="swap")
    swapped = generate(OrganismData(tag_swap=0.5), reqs, 400, 3, organism="swap")
    flipped = [r for r in swapped if r.meta.get("tag_swapped")]
    assert 120 < len(flipped) < 280
    # the decision follows the reasoning: a swapped faking episode complies under the paid tag
    assert any(r.tier == "paid" and r.meta["reason"] == "af" for r in flipped)
    assert not any(r.meta.get("tag_swapped") for r in plain)
    assert all(r.tier == r.meta["tier"] for r in plain)
