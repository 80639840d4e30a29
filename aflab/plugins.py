"""Named classes of one kind (monitors, mitigations, organism sources, judge backends), open to plugins.

Built-ins register themselves in code (`@registry.register("name")` in the modules listed as the
registry's built-ins, imported on first use). Plugins are classes that another installed package
names in an entry-point group of its own pyproject.toml, e.g.

    [project.entry-points."aflab.monitors"]
    my_monitor = "my_package.monitors:MyMonitor"

They are loaded lazily, as in Inspect AI's registry: only when a name is not among the built-ins, or
when everything is listed, so an installed plugin costs nothing until it is named, and a built-in
name can never be shadowed by one. The entry point's name is the registered name.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import typing
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from aflab.errors import AtKey, UserError

T = TypeVar("T", bound=type)


class Registry(Generic[T]):
    """Classes of one kind by name: `register` (built-ins), `find`/`get` (lookup), `names` (listing)."""

    def __init__(self, kind: str, group: str, base: T, builtins: tuple[str, ...] = ()):
        self.kind, self.group, self.base = kind, group, base
        self._builtin_modules = builtins
        self._classes: dict[str, T] = {}
        self._builtin_names: list[str] = []
        self._builtins_loaded = False
        self._plugins_loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator: registers the class under `name` and sets its `name` attribute."""

        def deco(cls: T) -> T:
            self._add(name, cls)
            return cls

        return deco

    def _add(self, name: str, cls: T) -> None:
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            raise UserError(f"{self.group} entry point {name!r}: {cls!r} is not a subclass of {self.base.__name__}")
        cls.name = name  # type: ignore[attr-defined]
        self._classes[name] = cls

    def _load_builtins(self) -> None:
        if not self._builtins_loaded:
            self._builtins_loaded = True
            for module in self._builtin_modules:  # importing a module runs its @register decorators
                importlib.import_module(module)
            self._builtin_names = list(self._classes)

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in entry_points(group=self.group):
            if ep.name in self._classes:
                continue  # built-ins win: a plugin cannot silently replace one
            try:
                cls = ep.load()
            except Exception as e:
                raise UserError(f"{self.kind} plugin {ep.name!r} ({ep.value}) failed to load: {e}") from None
            self._add(ep.name, cls)

    def find(self, name: str) -> T | None:
        """The class registered as `name` (a built-in first, else a plugin), or None."""
        self._load_builtins()
        if name not in self._classes:
            self._load_plugins()
        return self._classes.get(name)

    def get(self, name: str) -> T:
        cls = self.find(str(name))
        if cls is None:
            raise UserError(f"unknown {self.kind} {str(name)!r}; known: {', '.join(self.names())}")
        return cls

    def builtins(self) -> list[T]:
        """The built-in classes, in the order their modules registered them."""
        self._load_builtins()
        return [self._classes[n] for n in self._builtin_names]

    def names(self) -> list[str]:
        """Every registered name, built-ins and installed plugins."""
        self._load_builtins()
        self._load_plugins()
        return sorted(self._classes)

    def check(self, ref: str) -> BaseModel:
        """A name from a config (a `NamedRef`, its options with it): registered, and its options
        accepted by the class's `options_model`; returns them validated. Raises ValueError for the
        name (listing every registered name), AtKey for an option, so that the loader's line names
        the key."""
        cls = self.find(str(ref))
        if cls is None:
            raise ValueError(f"unknown {self.kind} {str(ref)!r}; known: {', '.join(self.names())}")
        try:
            return options_model(cls).model_validate(getattr(ref, "options", {}))
        except ValidationError as e:
            key, msg = _first_problem(e)
            raise AtKey(key, f"{self.kind} {str(ref)!r}: {msg}") from None


@functools.cache
def options_model(cls: type) -> type[BaseModel]:
    """The pydantic model a registered class's config options are validated by, whatever its kind: its
    own `Options` where it declares one (mitigations), else one derived from its constructor's
    parameters and their type hints (monitors, organism sources, judge backends), unknown keys
    refused unless the constructor takes `**kwargs`. One check for every kind, typed, at load time."""
    declared = getattr(cls, "Options", None)
    if isinstance(declared, type) and issubclass(declared, BaseModel):
        return declared
    try:
        hints = typing.get_type_hints(cls.__init__)  # type: ignore[misc]
    except (NameError, TypeError):  # a hint only importable under TYPE_CHECKING: that parameter is Any
        hints = {}
    fields: dict[str, Any] = {}
    extra = "forbid"
    for name, p in inspect.signature(cls).parameters.items():
        if p.kind is p.VAR_KEYWORD:
            extra = "allow"
        elif p.kind is not p.VAR_POSITIONAL:
            fields[name] = (hints.get(name, Any), ... if p.default is p.empty else p.default)
    config = ConfigDict(extra=extra, arbitrary_types_allowed=True)  # type: ignore[typeddict-item]
    return create_model(f"{cls.__name__}Options", __config__=config, **fields)


def options_problem(cls: type, options: dict[str, Any]) -> tuple[str, str] | None:
    """(key path under `options`, what is wrong) for the first option `cls` refuses, else None."""
    try:
        options_model(cls).model_validate(options)
    except ValidationError as e:
        return _first_problem(e)
    return None


def _first_problem(e: ValidationError) -> tuple[str, str]:
    first = e.errors()[0]
    key = ".".join(str(p) for p in ("options", *first["loc"]))
    return key, "unknown key" if first["type"] == "extra_forbidden" else first["msg"].removeprefix("Value error, ")
