"""Plain-file I/O shared by every stage: strict JSONL reading and atomic writes.

Every stage hands the next one plain files, so a crash must never leave a half-written file that a
later stage would trust (write to a temp file, fsync, rename), and bad input must fail with one line
that names the file and line instead of a traceback.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock, Timeout
from pydantic import BaseModel, ValidationError

from aflab.errors import UserError, where

# Failures of the machine or the folder, not of aflab: the user has to act (free space, pick another
# folder), so they are reported as one line and exit 2, like bad input.
_ENVIRONMENT_ERRNOS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "is a folder, expected a file",
    errno.EEXIST: "exists and is not a folder",
    errno.EFBIG: "file too large for this file system",
}
LOCK_NAME = ".aflab.lock"


class OutputError(UserError):
    """A result could not be written (full disk, read-only or unusable folder); names the path."""


def environment_error(exc: BaseException, folder: str | Path | None = None) -> str | None:
    """One line for an exception caused by the disk or folder (anywhere in its chain), else None.

    torch reports a full disk as "unexpected pos" and safetensors as "os error 28", without an
    errno or a path: the line then names `folder`, where the command was writing.
    """
    place = f"{folder}: " if folder is not None else ""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in _ENVIRONMENT_ERRNOS:
            path = f"{e.filename}: " if e.filename is not None else place
            return f"{path}cannot write: {_ENVIRONMENT_ERRNOS[e.errno]}"
        text = " ".join(str(e).split())[:200]
        if "No space left on device" in text or "os error 28" in text:
            return f"{place}cannot write: no space left on device ({text})"
        if "unexpected pos" in text or "PytorchStreamWriter failed" in text:
            return f"{place}cannot write: no space left on device? (torch: {text})"
        e = e.__cause__ or e.__context__
    return None


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write text so that readers see either the old file or the whole new one."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Temp file + fsync + rename; a failure (full disk...) leaves the previous file untouched and
    raises an OutputError that names `path`."""
    path = Path(path)
    try:
        return _atomic_write(path, data)
    except OSError as e:
        reason = _ENVIRONMENT_ERRNOS.get(e.errno or 0, e.strerror or str(e))
        raise OutputError(f"{path}: cannot write: {reason}") from e


def _atomic_write(path: Path, data: bytes) -> Path:
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


def output_folder(folder: str | Path) -> Path:
    """Create `folder` (parents included) or fail with one line saying why it cannot hold results."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: exists and is a file, expected a folder for the results")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{folder}: cannot create the folder: {_ENVIRONMENT_ERRNOS.get(e.errno or 0, e)}") from e
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{folder}: cannot write: folder is read-only")
    return folder


def output_file(path: str | Path) -> Path:
    """Check that `path` can become a results file (its folder usable, itself not a folder)."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder, expected a file name")
    output_folder(path.parent)
    return path


def folder_lock(folder: str | Path, wait_s: float = 0) -> FileLock:
    """The lock of a results folder, acquired: one writer at a time (released on exit, even on a
    crash, because the OS drops a dead process's flock). Refuses after `wait_s` seconds with a
    UserError naming the folder; -1 waits for as long as it takes."""
    folder = output_folder(folder)
    return acquire_lock(folder / LOCK_NAME, folder, wait_s)


def acquire_lock(lock_path: Path, guarded: Path, wait_s: float = 0) -> FileLock:
    """Acquire the lock file `lock_path` that guards `guarded` (see folder_lock)."""
    lock = FileLock(lock_path)
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire(timeout=wait_s)
    except Timeout:
        raise UserError(
            f"{guarded}: another aflab process is writing here (lock {lock_path}); "
            "wait for it to finish or choose another output folder"
        ) from None
    except OSError as e:
        raise OutputError(f"{lock_path}: cannot lock: {_ENVIRONMENT_ERRNOS.get(e.errno or 0, e)}") from e
    return lock


def file_sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def folder_checksums(folder: Path, skip: Iterable[str] = ()) -> dict[str, str]:
    """SHA-256 of every file under `folder` (relative POSIX paths), recorded when a result is
    complete so that a later reader can tell a damaged or truncated file from a good one."""
    skip = set(skip)
    return {
        p.relative_to(folder).as_posix(): file_sha256(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in skip and p.name != LOCK_NAME
    }


def damaged_files(folder: Path, recorded: dict[str, str]) -> list[str]:
    """The recorded files that are now missing or whose content changed (empty = all intact)."""
    return [
        name for name, sha in recorded.items() if not (folder / name).is_file() or file_sha256(folder / name) != sha
    ]


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
            obj = json.loads(line, parse_float=_finite_float)
        except json.JSONDecodeError as e:
            hint = "truncated line?" if "Unterminated" in e.msg or "Expecting" in e.msg else e.msg
            raise UserError(f"{where(path, lineno)}: not valid JSON ({e.msg}; {hint})") from None
        except RecursionError:
            raise UserError(f"{where(path, lineno)}: JSON nested too deeply") from None
        except ValueError as e:  # after JSONDecodeError, its subclass: a number Python cannot hold
            raise UserError(f"{where(path, lineno)}: {number_problem(e, line)}") from None
        if not isinstance(obj, dict):
            raise UserError(f"{where(path, lineno)}: expected one JSON object per line, got {_json_kind(obj)}")
        yield lineno, obj
    if not seen_any:
        raise UserError(f"{path}: empty file, expected JSONL records (one JSON object per line)")


def read_rows(path: str | Path | None) -> list[dict[str, Any]]:
    """The records of a JSONL file aflab wrote (steps.jsonl, evaders.jsonl...): none for no file or an
    empty one, where `iter_jsonl` (for files a person gives) calls an empty file an error."""
    if path is None or not Path(path).exists() or Path(path).stat().st_size == 0:
        return []
    return [obj for _, obj in iter_jsonl(path)]


def read_json(path: str | Path) -> Any:
    """One JSON document (a summary.json, a manifest) that a person may have edited or damaged:
    anything unreadable is a UserError naming the file and line, like a bad JSONL record."""
    text = read_text(path)
    try:
        return json.loads(text, parse_float=_finite_float)
    except json.JSONDecodeError as e:
        raise UserError(f"{where(path, e.lineno)}: not valid JSON ({e.msg})") from None
    except RecursionError:
        raise UserError(f"{path}: JSON nested too deeply") from None
    except ValueError as e:  # after JSONDecodeError, its subclass: a number Python cannot hold
        raise UserError(f"{number_place(path, text)}: {number_problem(e, text)}") from None


class NumberOutOfRange(ValueError):
    """A JSON number beyond a 64-bit float (1e99999): Python would read it as infinity, silently."""

    def __init__(self, text: str):
        super().__init__(f"number {text[:20]}{'...' if len(text) > 20 else ''} is out of range for a 64-bit float")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise NumberOutOfRange(text)
    return value


def number_problem(exc: ValueError, text: str) -> str:
    """The reason a parser's ValueError gives for a number, as one line with the column of the number.

    Python refuses to convert integers of more than `sys.get_int_max_str_digits()` digits (a guard
    against quadratic-time parsing) with a ValueError that json and yaml let through unnamed.
    """
    if isinstance(exc, NumberOutOfRange):
        return str(exc)
    if found := long_number(text):
        _, column, digits = found
        return f"a number of {digits} digits at column {column} (Python reads integers of at most {digits_limit()})"
    return f"unreadable value ({' '.join(str(exc).split())[:200]})"


def digits_limit() -> int:
    return sys.get_int_max_str_digits()


def number_place(path: str | Path, text: str) -> str:
    """'file:line' of the first over-long number in a whole file's `text` (the one Python refused), else 'file'."""
    found = long_number(text)
    return where(path, found[0]) if found else str(path)


def long_number(text: str) -> tuple[int, int, int] | None:
    """(line, column, digits) of the first run of digits in `text` longer than Python converts."""
    limit = digits_limit()
    m = re.search(rf"\d{{{limit + 1},}}", text) if limit else None
    if m is None:
        return None
    line_start = text.rfind("\n", 0, m.start()) + 1
    return text.count("\n", 0, m.start()) + 1, m.start() - line_start + 1, len(m.group())


def _json_kind(obj: Any) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(obj), "null" if obj is None else type(obj).__name__
    )


def pydantic_message(err: ValidationError) -> str:
    """One line from a pydantic error: the first problem, with its key path."""
    e = err.errors()[0]
    loc = ".".join(str(p) for p in e["loc"])
    msg = e["msg"].removeprefix("Value error, ")
    return f"field '{loc}': {msg}" if loc else msg


M = TypeVar("M", bound=BaseModel)


def load_records(path: str | Path, model: type[M]) -> list[M]:
    """Validate every JSONL line as `model` (which has an `id`); structural problems, duplicate ids
    included, are UserErrors naming the file and line."""
    records: list[M] = []
    first_line: dict[str, int] = {}
    for lineno, obj in iter_jsonl(path):
        try:
            rec = model.model_validate(obj)
        except ValidationError as e:
            raise UserError(f"{where(path, lineno)}: {pydantic_message(e)}") from None
        rid = rec.id  # type: ignore[attr-defined]
        if rid in first_line:
            raise UserError(f"{where(path, lineno)}: duplicate id {rid!r} (first seen on line {first_line[rid]})")
        first_line[rid] = lineno
        records.append(rec)
    return records
