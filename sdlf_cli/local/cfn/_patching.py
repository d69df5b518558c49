"""Idempotent, reversible monkey patches on moto.

Every fix in this package is one named `Patch` (owner, attribute, replacement). Installing a name twice
is a no-op; `uninstall_all()` puts moto's originals back (or removes attributes moto never had).
For a class, the raw `__dict__` entry is saved, so classmethods/staticmethods/properties restore intact.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

_ABSENT = object()  # the owner had no attribute of its own under that name


@dataclass
class Patch:
    name: str  # what it fixes; unique
    owner: Any  # a class or a module
    attribute: str
    replacement: Any
    original: Any = _ABSENT


_installed: dict[str, Patch] = {}


def _own_attribute(owner: Any, attribute: str) -> Any:
    if isinstance(owner, type):
        return owner.__dict__.get(attribute, _ABSENT)
    return getattr(owner, attribute, _ABSENT)


def install(patch: Patch) -> Patch:
    """Installs `patch` unless a patch with the same name is already in place."""
    if patch.name in _installed:
        return _installed[patch.name]
    patch.original = _own_attribute(patch.owner, patch.attribute)
    setattr(patch.owner, patch.attribute, patch.replacement)
    _installed[patch.name] = patch
    return patch


def wrap(owner: Any, attribute: str, name: str, make: Callable[[Any], Any]) -> Patch:
    """Installs `make(current)` in place of `owner.attribute`, where `current` is what was there
    (for a class: the raw `__dict__` entry, e.g. a classmethod object)."""
    if name in _installed:
        return _installed[name]
    return install(Patch(name, owner, attribute, make(_own_attribute(owner, attribute))))


def uninstall_all() -> None:
    for name in reversed(list(_installed)):
        patch = _installed.pop(name)
        if patch.original is _ABSENT:
            try:
                delattr(patch.owner, patch.attribute)
            except AttributeError:
                pass
        else:
            setattr(patch.owner, patch.attribute, patch.original)


def installed_names() -> list[str]:
    return list(_installed)


def uninstall(name: str) -> None:
    """Puts back what one named patch replaced (a no-op when it is not installed)."""
    patch = _installed.pop(name, None)
    if patch is None:
        return
    if patch.original is _ABSENT:
        try:
            delattr(patch.owner, patch.attribute)
        except AttributeError:
            pass
    else:
        setattr(patch.owner, patch.attribute, patch.original)
