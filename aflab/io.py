"""Plain-file I/O shared by every stage: strict JSONL reading and atomic writes.

Every stage hands the next one plain files, so a crash must never leave a half-written file that a
later stage would trust (write to a temp file, fsync, rename), and bad input must fail with one line
that names the file and line instead of a traceback.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from aflab.errors import UserError, where


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write text so that readers see either the old file or the whole new one."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files; results are meant to be shared
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(finite(obj), indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def write_jsonl(path: str | Path, rows: Iterable[Any]) -> Path:
    lines = (json.dumps(finite(_plain(r)), ensure_ascii=False, allow_nan=False) for r in rows)
    return atomic_write_text(path, "".join(line + "\n" for line in lines))


def _plain(row: Any) -> Any:
    dump = getattr(row, "model_dump", None)
    return dump(mode="json", exclude_none=True) if dump else row


def finite(obj: Any) -> Any:
    """NaN and infinities become null: JSON has no NaN, and an undefined statistic (a std over one
    sample, a rate over zero records) is better reported as missing than as a made-up number."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    return obj


def read_text(path: str | Path) -> str:
    """Read a UTF-8 text file (BOM tolerated) or fail with a UserError that names it."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, expected a file")
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise UserError(f"{where(path, line)}: contains NUL bytes (binary file?), expected UTF-8 text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise UserError(f"{where(path, line)}: not valid UTF-8 text") from None


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line; any malformed line is a UserError.

    Lines are split on '\\n' only: U+2028 and friends are legal inside JSON strings and must not
    split a record (str.splitlines would).
    """
    text = read_text(path)
    seen_any = False
    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        seen_any = True
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            hint = "truncated line?" if "Unterminated" in e.msg or "Expecting" in e.msg else e.msg
            raise UserError(f"{where(path, lineno)}: not valid JSON ({e.msg}; {hint})") from None
        except RecursionError:
            raise UserError(f"{where(path, lineno)}: JSON nested too deeply") from None
        if not isinstance(obj, dict):
            raise UserError(f"{where(path, lineno)}: expected one JSON object per line, got {_json_kind(obj)}")
        yield lineno, obj
    if not seen_any:
        raise UserError(f"{path}: empty file, expected JSONL records (one JSON object per line)")


def _json_kind(obj: Any) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(obj), "null" if obj is None else type(obj).__name__
    )
