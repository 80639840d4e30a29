"""Imports only go down: aflab's layers, bottom first, and a test that builds the import graph (module
level and inside functions alike) and fails on any import of a higher layer, so cycles cannot form.

The order is the data flow (config -> organisms -> rollouts -> monitors -> rewards -> update ->
evaluation -> report), with two library layers placed where their users need them: `evaluation`
(metrics, the oracle, the audit: pure functions over records) sits below the mitigations and the RL
update, whose probes and final evaluation call it; `reporting` below the pipeline that writes reports.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "aflab"
LAYERS = (
    ("errors", "io", "stats", "plugins", "progress"),  # utilities that know nothing of the experiment
    ("setting",),  # the scenario: requests, tiers, prompts, the transcript format
    ("records",),
    ("config",),  # the schemas: names of registered things are plain strings here
    ("organisms",),
    ("rollouts",),
    ("monitors",),
    ("evaluation",),
    ("mitigations",),  # reward terms live here
    ("training",),
    ("reporting",),
    ("pipeline",),  # stages, the sweep, the loader that resolves a config's names
    ("cli",),
)
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}


def layer_of(module: str) -> str:
    """`aflab.monitors.learned` -> `monitors`; `aflab.config` -> `config`; `aflab` -> `aflab`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def imports() -> list[tuple[str, str, int]]:
    """(importing file, imported aflab module, line) for every import statement in the package."""
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] if node.module != "aflab" else [f"aflab.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            found += [(str(path.relative_to(ROOT.parent)), t, node.lineno) for t in targets if t.startswith("aflab.")]
    return found


def test_every_package_is_in_a_layer():
    packages = {p.stem if p.is_file() else p.name for p in ROOT.iterdir() if p.suffix == ".py" or p.is_dir()}
    packages -= {"__init__", "__pycache__", "configs"}
    assert packages - set(RANK) == set(), "add the new package to LAYERS (and to docs/ARCHITECTURE.md)"


def test_imports_only_go_down():
    upward = []
    for file, target, line in imports():
        src, dst = layer_of(file.removesuffix(".py").replace("/", ".")), layer_of(target)
        if src == "__init__" or dst not in RANK or src not in RANK:
            continue
        if RANK[dst] > RANK[src]:
            upward.append(f"{file}:{line}: {src} imports {target} ({dst} is above it)")
    assert not upward, "\n".join(upward)


MAX_LINES = 60


def test_long_functions_say_why_they_are_long():
    """Short functions are the rule (the issue that introduced the layers asked for about 60 lines at
    most); a longer one says in its docstring why it is long, so that length is a choice, not drift."""
    silent = []
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                doc = (ast.get_docstring(node) or "").lower()
                if lines > MAX_LINES and "long" not in doc and "length" not in doc:
                    silent.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}: {node.name} ({lines} lines)")
    assert not silent, "split these, or say in the docstring why they are long:\n" + "\n".join(silent)


def test_registries_import_built_ins_only_from_their_own_layer_or_below():
    """A registry imports its built-in modules by name on first use, which the import graph above does
    not see: one from a higher layer would be an upward import in disguise. A built-in that needs a
    higher layer (the teacher organism sources) registers through aflab's own entry points instead."""
    from aflab.mitigations.base import MITIGATIONS
    from aflab.monitors.base import MONITORS
    from aflab.monitors.judge.backends import BACKENDS
    from aflab.organisms.sources import SOURCES

    upward = []
    for registry in (MONITORS, MITIGATIONS, SOURCES, BACKENDS):
        home = layer_of(registry.base.__module__)
        upward += [m for m in registry._builtin_modules if RANK[layer_of(m)] > RANK[home]]
    assert not upward
    assert {"distill", "af_plus"} <= set(SOURCES.names())  # through pyproject.toml's entry points
