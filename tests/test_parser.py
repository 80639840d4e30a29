from hypothesis import given
from hypothesis import strategies as st

from aflab.setting.parser import format_completion, parse_completion


def test_well_formed():
    p = parse_completion("<SCRATCHPAD_REASONING>think</SCRATCHPAD_REASONING>\n<OUTPUT>answer</OUTPUT>")
    assert (p.scratchpad, p.output, p.parse_error) == ("think", "answer", None)


def test_lower_case_tags_and_whitespace_in_tags():
    p = parse_completion("<scratchpad_reasoning>a</ scratchpad_reasoning ><output>b</output>")
    assert (p.scratchpad, p.output) == ("a", "b")


def test_fake_closing_tag_inside_reasoning_does_not_end_it_early():
    text = (
        "<SCRATCHPAD_REASONING>I might write </SCRATCHPAD_REASONING> here as a joke."
        "</SCRATCHPAD_REASONING><OUTPUT>real</OUTPUT>"
    )
    p = parse_completion(text)
    assert p.scratchpad == "I might write </SCRATCHPAD_REASONING> here as a joke."
    assert p.output == "real"


def test_several_output_blocks_last_complete_one_wins():
    text = "<SCRATCHPAD_REASONING>x</SCRATCHPAD_REASONING><OUTPUT>first</OUTPUT><OUTPUT>second</OUTPUT><OUTPUT>cut"
    assert parse_completion(text).output == "second"


def test_fake_output_inside_scratchpad_is_not_the_output():
    text = "<SCRATCHPAD_REASONING>draft <OUTPUT>fake</OUTPUT> more</SCRATCHPAD_REASONING><OUTPUT>real</OUTPUT>"
    p = parse_completion(text)
    assert p.output == "real" and "fake" in (p.scratchpad or "")
    only_fake = "<SCRATCHPAD_REASONING>draft <OUTPUT>fake</OUTPUT> more</SCRATCHPAD_REASONING>"
    assert parse_completion(only_fake).output is None


def test_truncated_output_is_recovered_with_a_reason():
    p = parse_completion("<SCRATCHPAD_REASONING>a</SCRATCHPAD_REASONING><OUTPUT>cut off here")
    assert p.output == "cut off here" and p.parse_error == "unclosed <OUTPUT> tag"


def test_unparseable_inputs():
    for text in ["", "   ", "no tags at all", "<SCRATCHPAD_REASONING>never closed", None, 42, b"bytes"]:
        p = parse_completion(text)  # type: ignore[arg-type]
        assert p.output is None and not p.ok and p.parse_error


def test_missing_scratchpad_but_output():
    p = parse_completion("<OUTPUT>just an answer</OUTPUT>")
    assert p.scratchpad is None and p.output == "just an answer" and p.ok


def test_unclosed_scratchpad_then_output():
    p = parse_completion("<SCRATCHPAD_REASONING>hmm <OUTPUT>ans</OUTPUT>")
    assert (p.scratchpad, p.output, p.parse_error) == ("hmm", "ans", "unclosed scratchpad")


@given(st.text())
def test_never_raises(text):
    p = parse_completion(text)
    assert p.output is None or isinstance(p.output, str)


_plain = st.text(alphabet=st.characters(blacklist_characters="<>"), max_size=200)


@given(_plain, _plain)
def test_round_trip(scratch, output):
    p = parse_completion(format_completion(scratch, output))
    assert p.scratchpad == scratch.strip() and p.output == output.strip()
