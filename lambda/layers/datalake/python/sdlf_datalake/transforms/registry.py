"""Named transforms. A dataset's registration names its transform; stage A looks it up here.

A transform is found by name in this order:
1. one registered with `@register("name")` (in a module already imported), else
2. the module `sdlf_datalake.transforms.<name>` (dashes read as underscores) is imported, and
   either it registered the name on import or it defines a module-level `transform` function.
"""
from __future__ import annotations

import importlib
import pkgutil
import re
from typing import Callable

from sdlf_datalake.errors import InvalidInputError
from sdlf_datalake.transforms.base import Transform

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_PACKAGE = "sdlf_datalake.transforms"
# Modules of this package that hold machinery, not transforms.
_NOT_TRANSFORMS = {"base", "formats", "registry"}

_transforms: dict[str, Transform] = {}


def register(name: str) -> Callable[[Transform], Transform]:
    """Decorator: make `fn` the transform called `name` (lower case, digits, '-' or '_')."""
    if not _NAME.match(name):
        raise ValueError(f"transform name {name!r}: use lower case letters, digits, '-' or '_'")

    def decorator(fn: Transform) -> Transform:
        existing = _transforms.get(name)
        if existing is not None and existing is not fn and _qualname(existing) != _qualname(fn):
            raise ValueError(f"transform {name!r} is already registered by {_qualname(existing)}")
        _transforms[name] = fn
        return fn

    return decorator


def get_transform(name: str) -> Transform:
    """The transform called `name`; InvalidInputError naming what was looked for when there is none."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInputError(
            f"transform name {name!r} is invalid: use lower case letters, digits, '-' or '_'"
        )
    if name in _transforms:
        return _transforms[name]
    module_name = f"{_PACKAGE}.{name.replace('-', '_')}"
    if name.replace("-", "_") in _NOT_TRANSFORMS:
        raise InvalidInputError(f"unknown transform {name!r}; available: {', '.join(available_transforms())}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise  # the transform's module exists but imports something missing: show that
        raise InvalidInputError(
            f"unknown transform {name!r}: no module {module_name} in the datalake layer;"
            f" available: {', '.join(available_transforms())}"
        ) from None
    if name in _transforms:
        return _transforms[name]
    fn = getattr(module, "transform", None)
    if not callable(fn):
        raise InvalidInputError(
            f"transform {name!r}: module {module_name} neither registers {name!r} nor defines transform(obj)"
        )
    _transforms[name] = fn
    return fn


def available_transforms() -> list[str]:
    """Registered names plus the modules of this package that could provide one."""
    import sdlf_datalake.transforms as package

    names = set(_transforms)
    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in _NOT_TRANSFORMS and not info.name.startswith("_"):
            names.add(info.name)
    return sorted(names)


def _qualname(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
