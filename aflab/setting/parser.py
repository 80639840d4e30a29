"""The transcript parser: total and forgiving (CONTRACTS.md, "Completion format").

Small models, real models and other tools all produce slightly broken tags. The parser therefore
never raises: it returns what it could recover plus a reason, and the caller decides whether a
record without output is "unparseable" (counted, excluded from rates).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_OPEN_SP = re.compile(r"<\s*scratchpad_reasoning\s*>", re.IGNORECASE)
_CLOSE_SP = re.compile(r"<\s*/\s*scratchpad_reasoning\s*>", re.IGNORECASE)
_OUTPUT_BLOCK = re.compile(r"<\s*output\s*>(.*?)<\s*/\s*output\s*>", re.IGNORECASE | re.DOTALL)
_OPEN_OUT = re.compile(r"<\s*output\s*>", re.IGNORECASE)


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
    blocks = list(_OUTPUT_BLOCK.finditer(text))

    if open_sp is None and not closes:
        if blocks:
            return Parsed(None, blocks[-1].group(1).strip(), "no scratchpad")
        return _unclosed_output(text, None, 0, "no tags")

    # The real end of the scratchpad is the last closing tag before the output that follows it:
    # a tag-like string quoted inside the reasoning must not end it early.
    for block in reversed(blocks):
        before = [c for c in closes if c.end() <= block.start()]
        if before and (sp_start is None or block.start() >= sp_start):
            close = before[-1]
            scratch = text[sp_start if sp_start is not None else 0 : close.start()].strip()
            error = None if open_sp else "missing <SCRATCHPAD_REASONING> opening tag"
            return Parsed(scratch, block.group(1).strip(), error)

    if closes:
        close = closes[-1]
        scratch = text[sp_start if sp_start is not None else 0 : close.start()].strip()
        return _unclosed_output(text, scratch, close.end(), "no <OUTPUT> block after the scratchpad")

    # Opening tag but no closing tag: the reasoning runs until an output tag, if any.
    rest = text[sp_start:]
    out_open = _OPEN_OUT.search(rest)
    if out_open:
        scratch = rest[: out_open.start()].strip()
        block = _OUTPUT_BLOCK.search(rest, out_open.start())
        if block:
            return Parsed(scratch, block.group(1).strip(), "unclosed scratchpad")
        return Parsed(scratch, rest[out_open.end() :].strip() or None, "unclosed scratchpad and output")
    return Parsed(rest.strip(), None, "unclosed scratchpad, no output")


def _unclosed_output(text: str, scratch: str | None, start: int, reason: str) -> Parsed:
    """A generation cut off by the token limit still has a usable output after `<OUTPUT>`."""
    tail = text[start:]
    opens = list(_OPEN_OUT.finditer(tail))
    if opens and (body := tail[opens[-1].end() :].strip()):
        return Parsed(scratch, body, "unclosed <OUTPUT> tag")
    return Parsed(scratch, None, reason)


def format_completion(scratchpad: str, output: str) -> str:
    """The canonical completion text; the inverse of `parse_completion` for well-formed parts."""
    return f"<SCRATCHPAD_REASONING>{scratchpad}</SCRATCHPAD_REASONING>\n<OUTPUT>{output}</OUTPUT>"
