"""On-disk cache of judge replies, so reruns cost nothing and give the same verdicts.

One JSON file per key, written atomically (a crash mid-run keeps every reply already received and
never leaves a half-written entry). The key is a SHA-256 over (backend, model identity, the exact
prompt messages, sample index, temperature, token limit); the file stores the reply text, token
counts and the key's non-secret parts for inspection, never the prompt or any credential.
Failures are not cached, so a rerun retries them. Unreadable or mismatched entries count as misses.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from aflab.io import atomic_write_text
from aflab.monitors.judge.backends import Completion, Messages


def default_cache_dir() -> Path:
    """$AFLAB_CACHE_DIR/judge, else $XDG_CACHE_HOME/aflab/judge, else ~/.cache/aflab/judge."""
    root = os.environ.get("AFLAB_CACHE_DIR")
    if root:
        return Path(root).expanduser() / "judge"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "aflab" / "judge"


def cache_key(backend: str, model: str, messages: Messages, sample: int, temperature: float, max_tokens: int) -> str:
    blob = json.dumps(
        {
            "backend": backend,
            "model": model,
            "messages": messages,
            "sample": sample,
            "temperature": float(temperature),
            "max_tokens": max_tokens,
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class JudgeCache:
    """Replies under `root/<first two hex digits>/<key>.json`."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> Completion | None:
        try:
            obj = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(obj, dict) or obj.get("key") != key or not isinstance(obj.get("text"), str):
            return None
        tokens = [obj.get("input_tokens"), obj.get("output_tokens")]
        if not all(isinstance(t, int) and not isinstance(t, bool) for t in tokens):
            return None
        return Completion(obj["text"], tokens[0], tokens[1])

    def put(self, key: str, completion: Completion, info: dict[str, Any]) -> None:
        obj = {
            "key": key,
            **info,
            "text": completion.text,
            "input_tokens": completion.input_tokens,
            "output_tokens": completion.output_tokens,
        }
        atomic_write_text(self._path(key), json.dumps(obj, ensure_ascii=False) + "\n")
