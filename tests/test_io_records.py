import json

import pytest

from aflab.errors import UserError
from aflab.records import load_transcripts

GOOD = {"id": "a", "tier": "free", "completion": "<OUTPUT>x</OUTPUT>"}


def write(tmp_path, content, name="t.jsonl"):
    p = tmp_path / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return p


def line(**kw):
    return json.dumps({**GOOD, **kw})


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "empty file"),
        ("\n\n  \n", "empty file"),
        ("this is prose, not json\n", ":1: not valid JSON"),
        (line() + "\n" + '{"id": "b", "tier": "fr', ":2: not valid JSON"),
        (b"\x00\x01\x02binary", ":1: contains NUL bytes"),
        (b"\xff\xfe\xfa", "not valid UTF-8"),
        ("[1, 2, 3]\n", ":1: expected one JSON object per line, got an array"),
        (line(tier="premium") + "\n", ":1: field 'tier'"),
        (line(id=5) + "\n", ":1: field 'id'"),
        (json.dumps({"id": "a", "tier": "free"}) + "\n", ":1: needs a 'completion' string"),
        (line() + "\n" + line() + "\n", ":2: duplicate id 'a' (first seen on line 1)"),
        (line(completion=["not", "text"]) + "\n", ":1: field 'completion'"),
    ],
)
def test_structural_errors_name_file_and_line(tmp_path, content, expected):
    path = write(tmp_path, content)
    with pytest.raises(UserError) as e:
        load_transcripts(path)
    msg = str(e.value)
    assert expected in msg and str(path) in msg and "\n" not in msg


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_transcripts(tmp_path / "nope.jsonl")


def test_odd_but_valid_records_load(tmp_path):
    rows = [
        "\ufeff" + line(id="bom"),  # BOM at file start
        line(id="crlf") + "\r",
        "",
        line(id="u2028", completion="<OUTPUT>a\u2028b</OUTPUT>"),  # must not split the line
        line(id="rtl", completion="<OUTPUT>\u05e9\u05dc\u05d5\u05dd e\u0301</OUTPUT>"),
        line(id="notags", completion="no tags here"),
        json.dumps({"id": "split", "tier": "paid", "scratchpad": "s", "output": "o", "extra": {"kept": 1}}),
        line(id="big", completion="<OUTPUT>" + "x" * 5_000_000 + "</OUTPUT>"),
    ]
    recs = load_transcripts(write(tmp_path, "\n".join(rows) + "\n"))
    assert [r.id for r in recs] == ["bom", "crlf", "u2028", "rtl", "notags", "split", "big"]
    assert recs[2].parsed.output == "a\u2028b"
    assert recs[3].parsed.ok and not recs[4].parsed.ok
    assert recs[4].parsed.parse_error == "no tags"
    assert (recs[5].parsed.scratchpad, recs[5].parsed.output) == ("s", "o")
    assert recs[5].model_extra == {"extra": {"kept": 1}}
    assert len(recs[6].parsed.output or "") == 5_000_000
