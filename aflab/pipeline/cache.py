"""Content-addressed stage folders: a stage is rebuilt only when its inputs change.

A stage writes into a temporary sibling folder and renames it into place when complete, with a
STAGE.json marker holding the hash of everything it was built from. A crash therefore leaves either
the previous complete folder or an ignorable temporary one, and a rerun of the same command
resumes after the last finished stage. STAGE.json also records the SHA-256 of every file of the
stage: a file truncated or changed later (a full disk, a stray edit) makes the stage count as not
done, so it is rebuilt instead of being trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aflab
from aflab.io import acquire_lock, damaged_files, folder_checksums, write_json

MARKER = "STAGE.json"


def digest(key: Any) -> str:
    blob = json.dumps({"aflab": aflab.__version__, "key": key}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def stage_done(folder: Path, key: Any) -> bool:
    """True when `folder` holds a complete build of `key` whose files are all as recorded."""
    marker = folder / MARKER
    if not marker.exists():
        return False
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # unreadable, not JSON, or a number Python cannot hold
        info = None
    if not isinstance(info, dict) or not isinstance(info.get("files"), dict):
        print(f"warning: {marker}: damaged or without checksums (older aflab); rebuilding {folder}", file=sys.stderr)
        return False
    if info.get("digest") != digest(key):
        return False
    if damaged := damaged_files(folder, info["files"]):
        print(f"warning: {folder / damaged[0]}: damaged since it was built; rebuilding {folder}", file=sys.stderr)
        return False
    return True


def run_stage(folder: Path, key: Any, build: Callable[[Path], dict[str, Any] | None]) -> tuple[Path, bool]:
    """Build `folder` unless an identical build is already there. Returns (folder, was_cached).

    The build holds the lock `.NAME.lock` beside the folder, so two workers (two processes, or two
    nodes of a cluster on shared storage) never build the same stage at once: the second waits and
    then finds it done. Only the lock's holder may remove the temporary folders of earlier, killed
    builds, which is what makes that safe while another node might be building."""
    if stage_done(folder, key):
        return folder, True
    with acquire_lock(folder.with_name(f".{folder.name}.lock"), folder, wait_s=-1):
        if stage_done(folder, key):  # built by the worker we waited for
            return folder, True
        for stale in folder.parent.glob(f".{folder.name}.tmp-*"):  # left by a killed build of this stage
            shutil.rmtree(stale, ignore_errors=True)
        tmp = folder.with_name(f".{folder.name}.tmp-{_builder()}")
        tmp.mkdir(parents=True)
        info = build(tmp) or {}
        write_json(tmp / MARKER, {"digest": digest(key), "key": key, **info, "files": folder_checksums(tmp)})
        old = folder.with_name(f".{folder.name}.old-{_builder()}")
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    return folder, False


def _builder() -> str:
    """Who is building, for temporary names: the host as well as the pid, since on shared storage two
    nodes' processes can have the same pid."""
    return f"{socket.gethostname()}-{os.getpid()}"


def timed_stage(folder: Path, key: Any, build: Callable[[Path], dict[str, Any] | None]) -> float:
    """`run_stage`, returning the seconds the build took (0 when the stage was already there), for the
    manifests' per-stage timings."""
    t0 = time.perf_counter()
    _, cached = run_stage(folder, key, build)
    return 0.0 if cached else round(time.perf_counter() - t0, 2)
