"""cfn-lint's walk contexts made by copying their fields, not through `dataclasses.fields()` and a frozen `__init__`.

cfn-lint (1.x) carries a `Context` (about twenty fields: the template's resources, conditions, ref values, the
path so far) and a `Path` down every step of its schema walk. Each step makes a new one with `Context.evolve`,
`Path.descend` or `Path.evolve`, which list the class's fields with `dataclasses.fields()` (a generator over
every field, each call) and build the copy with the frozen dataclass's `__init__` (one `object.__setattr__` per
field). Linting a lake deploy makes ~40,000 contexts; in a profile of a deploy these two costs were about a
fifth of cfn-lint's CPU.

`contexts_made_by_copy()` replaces the three methods with ones that read the field names from a list made once
and fill the new instance's `__dict__` directly: the same field values as cfn-lint's (merged `ref_values`, paths
extended by one element), the same errors for a bad `cfn_path` and for unknown fields (those calls go to
cfn-lint's own method), and nothing else copied but `module_names`, a `cached_property` of the resources alone,
carried while the resources are the same object (cfn-lint computed it anew for every context: ~4 % of a lint).
If the installed cfn-lint's classes are not plain frozen dataclasses of that shape,
nothing is patched.
"""
from __future__ import annotations

import dataclasses
from collections import deque
from typing import Any, Callable

_PATH_FIELDS = ("path", "value_path", "cfn_path")


def _plain_frozen_fields(cls: type) -> tuple[str, ...] | None:
    """The field names of a frozen dataclass whose instances are made only by setting its init fields."""
    if not dataclasses.is_dataclass(cls) or not cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        return None
    if hasattr(cls, "__post_init__") or hasattr(cls, "__slots__"):
        return None
    fields = dataclasses.fields(cls)
    if any(not f.init for f in fields):
        return None
    return tuple(f.name for f in fields)


def contexts_made_by_copy() -> Callable[[], None] | None:
    """Installs the faster methods; returns the function that puts cfn-lint's back, or None when it steps aside
    (already installed, or a cfn-lint whose contexts are built differently)."""
    from cfnlint.context import context as module

    context_cls, path_cls = module.Context, module.Path
    if getattr(getattr(context_cls, "evolve", None), "_sdlf_original", None) is not None:
        return None
    context_names = _plain_frozen_fields(context_cls)
    path_names = _plain_frozen_fields(path_cls)
    if context_names is None or "ref_values" not in context_names or path_names != _PATH_FIELDS:
        return None
    context_known, path_known = frozenset(context_names), frozenset(path_names)
    originals = {"evolve": context_cls.evolve, "path_evolve": path_cls.evolve, "descend": path_cls.descend}
    functions = module.FUNCTIONS

    def evolve(self: Any, **kwargs: Any) -> Any:
        if self.__class__ is not context_cls or not context_known.issuperset(kwargs):
            return originals["evolve"](self, **kwargs)
        state = self.__dict__
        if "ref_values" in kwargs:
            merged = state["ref_values"].copy()
            merged.update(kwargs["ref_values"])
            kwargs["ref_values"] = merged
        new = object.__new__(context_cls)
        values = new.__dict__
        values.update({name: kwargs[name] if name in kwargs else state[name] for name in context_names})
        if "module_names" in state and values["resources"] is state["resources"]:
            values["module_names"] = state["module_names"]  # computed from the resources alone
        return new

    def path_evolve(self: Any, **kwargs: Any) -> Any:
        if self.__class__ is not path_cls or not path_known.issuperset(kwargs):
            return originals["path_evolve"](self, **kwargs)
        state = self.__dict__
        new = object.__new__(path_cls)
        new.__dict__.update({name: kwargs[name] if name in kwargs else state[name] for name in path_names})
        return new

    def descend(self: Any, **kwargs: Any) -> Any:
        cfn_path = kwargs.get("cfn_path")
        if self.__class__ is not path_cls or not path_known.issuperset(kwargs) or isinstance(cfn_path, int) \
                or cfn_path in functions:
            return originals["descend"](self, **kwargs)  # including its errors for a bad cfn_path
        state = self.__dict__
        new = object.__new__(path_cls)
        values = new.__dict__
        for name in path_names:
            step = kwargs.get(name)
            values[name] = state[name] + deque([step]) if step is not None else state[name]
        return new

    for replacement, original in ((evolve, originals["evolve"]), (path_evolve, originals["path_evolve"]),
                                  (descend, originals["descend"])):
        replacement._sdlf_original = original  # type: ignore[attr-defined]
    context_cls.evolve = evolve
    path_cls.evolve = path_evolve
    path_cls.descend = descend

    def undo() -> None:
        if context_cls.evolve is evolve:
            context_cls.evolve = originals["evolve"]
            path_cls.evolve = originals["path_evolve"]
            path_cls.descend = originals["descend"]

    return undo
