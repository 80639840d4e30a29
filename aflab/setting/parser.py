"""The transcript parser: total and forgiving (CONTRACTS.md, "Completion format").

Small models, real models and other tools all produce slightly broken tags. The parser therefore
never raises: it returns what it could recover plus a reason, and the caller decides whether a
record without output is "unparseable" (counted, excluded from rates).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import deque
from dataclasses import dataclass

_OPEN_SP = re.compile(r"<\s*scratchpad_reasoning\s*>", re.IGNORECASE)
_CLOSE_SP = re.compile(r"<\s*/\s*scratchpad_reasoning\s*>", re.IGNORECASE)
_OPEN_OUT = re.compile(r"<\s*output\s*>", re.IGNORECASE)
_CLOSE_OUT = re.compile(r"<\s*/\s*output\s*>", re.IGNORECASE)


class _Blocks:
    """`<OUTPUT>...</OUTPUT>` blocks found from the tag positions, in linear time.

    The obvious regex (`<output>(.*?)</output>`) rescans to the end of the text from every
    unclosed opening tag, which is quadratic: 250k unclosed tags took hours. Each tag is found
    once here; a block is an opening tag and the first closing tag after it, exactly what that
    regex matched.
    """

    def __init__(self, text: str):
        self.opens = list(_OPEN_OUT.finditer(text))
        self.open_starts = [m.start() for m in self.opens]
        self.closes = list(_CLOSE_OUT.finditer(text))
        self.close_starts = [m.start() for m in self.closes]

    def first(self, pos: int) -> tuple[int, int, int, int] | None:
        """The first block whose opening tag starts at or after `pos`, as (start, body_start,
        body_end, end); None when none (an opening tag without a later closing tag means no later
        one has one either)."""
        i = bisect_left(self.open_starts, pos)
        if i == len(self.opens):
            return None
        body_start = self.opens[i].end()
        j = bisect_left(self.close_starts, body_start)
        if j == len(self.closes):
            return None
        return self.opens[i].start(), body_start, self.closes[j].start(), self.closes[j].end()

    def all(self) -> list[tuple[int, int, int, int]]:
        """Non-overlapping blocks, left to right (as re.finditer would find them)."""
        found, pos = [], 0
        while (block := self.first(pos)) is not None:
            found.append(block)
            pos = block[3]
        return found


@dataclass(frozen=True)
class Parsed:
    scratchpad: str | None
    output: str | None
    parse_error: str | None = None

    @property
    def ok(self) -> bool:
        """A record is usable for rates when it has an output (CONTRACTS: otherwise unparseable)."""
        return self.output is not None


def parse_completion(text: object) -> Parsed:
    """Split a completion into (scratchpad, output). Never raises, whatever `text` is."""
    if not isinstance(text, str):
        return Parsed(None, None, f"completion is {type(text).__name__}, not text")
    if not text.strip():
        return Parsed(None, None, "empty completion")

    open_sp = _OPEN_SP.search(text)
    sp_start = open_sp.end() if open_sp else None
    closes = [m for m in _CLOSE_SP.finditer(text) if sp_start is None or m.start() >= sp_start]
    close_ends = [c.end() for c in closes]
    finder = _Blocks(text)
    blocks = finder.all()

    if open_sp is None and not closes:
        if blocks:
            return Parsed(None, _body(text, blocks[-1]), "no scratchpad")
        return _unclosed_output(text, None, 0, "no tags")

    # The real end of the scratchpad is the last closing tag before the output that follows it:
    # a tag-like string quoted inside the reasoning must not end it early.
    for block in reversed(blocks):
        n_before = bisect_right(close_ends, block[0])
        if n_before and (sp_start is None or block[0] >= sp_start):
            close = closes[n_before - 1]
            scratch = text[sp_start if sp_start is not None else 0 : close.start()].strip()
            error = None if open_sp else "missing <SCRATCHPAD_REASONING> opening tag"
            return Parsed(scratch, _body(text, block), error)

    if closes:
        close = closes[-1]
        scratch = text[sp_start if sp_start is not None else 0 : close.start()].strip()
        return _unclosed_output(text, scratch, close.end(), "no <OUTPUT> block after the scratchpad")

    # Opening tag but no closing tag: the reasoning runs until an output tag, if any.
    assert sp_start is not None
    out_open = _OPEN_OUT.search(text, sp_start)
    if out_open:
        scratch = text[sp_start : out_open.start()].strip()
        block = finder.first(out_open.start())
        if block:
            return Parsed(scratch, _body(text, block), "unclosed scratchpad")
        return Parsed(scratch, text[out_open.end() :].strip() or None, "unclosed scratchpad and output")
    return Parsed(text[sp_start:].strip(), None, "unclosed scratchpad, no output")


def _body(text: str, block: tuple[int, int, int, int]) -> str:
    return text[block[1] : block[2]].strip()


def _unclosed_output(text: str, scratch: str | None, start: int, reason: str) -> Parsed:
    """A generation cut off by the token limit still has a usable output after `<OUTPUT>`."""
    last_open = deque(_OPEN_OUT.finditer(text, start), maxlen=1)
    if last_open and (body := text[last_open[0].end() :].strip()):
        return Parsed(scratch, body, "unclosed <OUTPUT> tag")
    return Parsed(scratch, None, reason)


def format_completion(scratchpad: str, output: str) -> str:
    """The canonical completion text; the inverse of `parse_completion` for well-formed parts."""
    return f"<SCRATCHPAD_REASONING>{scratchpad}</SCRATCHPAD_REASONING>\n<OUTPUT>{output}</OUTPUT>"
