"""Loading a config: the schema (aflab/config.py), then every name it gives checked against its registry.

The schema imports no registry, so that every layer can import it; the names it holds are resolved here,
after parsing, one layer above the registries, and reported with the same `file: key.path: problem`
line as a schema error, before any stage runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from aflab.config import (
    ArmSpec,
    MitigationRef,
    MonitorRef,
    NamedRef,
    OrganismConfig,
    RunConfig,
    SourceRef,
    SweepSpec,
    TrainConfig,
    key_path,
    load_yaml,
)
from aflab.config import validate as validate_schema
from aflab.errors import AtKey, UserError
from aflab.mitigations import check_ref as check_mitigation
from aflab.mitigations import components, follow_up, held_out_for
from aflab.monitors.base import check_ref as check_monitor
from aflab.organisms.checkpoint import model_folder_problem
from aflab.organisms.sources import SOURCES
from aflab.organisms.sources import check_ref as check_source

M = TypeVar("M", bound=BaseModel)


def load_config(path: str | Path, model: type[M] = RunConfig) -> M:  # type: ignore[assignment]
    """A config file: parsed, validated, its names resolved and its real-model folders checked."""
    return validate(model, load_yaml(path), str(path))


def validate(model: type[M], data: Any, source: str) -> M:
    """`data` as a `model`, every registered name in it checked; one line on failure:
    'source: key.path: problem'."""
    cfg = validate_schema(model, data, source)
    for loc, value in _walk(cfg, ()):
        try:
            check(value)
        except AtKey as e:
            raise UserError(f"{source}: {key_path((*loc, e.key))}: {e}") from None
        except (ValueError, UserError) as e:
            raise UserError(f"{source}: {key_path(loc)}: {e}") from None
    return cfg


def check(value: Any) -> None:
    """Check one value of a validated config against the registries (raises ValueError or AtKey)."""
    if isinstance(value, MonitorRef):
        check_monitor(value)
    elif isinstance(value, MitigationRef):
        check_inside(check_mitigation(value))
    elif isinstance(value, SourceRef):
        check_inside(check_source(value))
    elif isinstance(value, ArmSpec):
        components(value)  # the arm's parts can be built together
    elif isinstance(value, SweepSpec) and value.final_eval.follow_ups is not True:
        if asked := [arm.name for arm in value.mitigations if follow_up(arm) is not None]:
            raise ValueError(
                f"final_eval.follow_ups is {value.final_eval.follow_ups!r}, "
                f"but {asked} need the interrogation follow-up"
            )
    elif isinstance(value, TrainConfig):
        if clash := set(value.held_out_monitors) - set(held_out_for(value.mitigation, value.held_out_monitors)):
            raise ValueError(f"held-out monitors must never be part of the reward: {sorted(clash)}")
    elif isinstance(value, OrganismConfig):
        needs_teacher = SOURCES.get(value.source).needs_teacher
        if needs_teacher != (value.teacher is not None):
            rule = "is built from a teacher: name its organism" if needs_teacher else "takes no teacher"
            raise AtKey("teacher", f"source {str(value.source)!r} {rule}")
        problem = model_folder_problem(value.base_model, value.gguf_file) if value.base_model else None
        if problem is not None:
            raise AtKey(*problem)


def check_inside(options: BaseModel) -> None:
    """The validated options of a named component: every name inside them (the monitor of process
    supervision, of an af_plus source's reward) checked like a name anywhere else in the config."""
    for loc, inner in _walk(options, ("options",)):
        try:
            check(inner)
        except AtKey as e:
            raise AtKey(key_path((*loc, e.key)), str(e)) from None
        except (ValueError, UserError) as e:
            raise AtKey(key_path(loc), str(e)) from None


def _walk(obj: Any, loc: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every value inside a validated config with its key path, depth first in field order; a model
    after the values inside it, so that a name's own error comes before its container's."""
    if isinstance(obj, NamedRef):
        yield loc, obj
    elif isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            yield from _walk(getattr(obj, name), (*loc, name))
        yield loc, obj
    elif isinstance(obj, list | tuple):
        for i, item in enumerate(obj):
            yield from _walk(item, (*loc, i))
