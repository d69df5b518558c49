"""moto's response serializer finds an attribute's possible names once per (shape, key, class), not per value.

To write a response, moto 5.2.5's serializer asks its `XFormedAttributePicker` for every member of every
structure it writes: the picker makes six alias providers (explicit `Meta` aliases, the shape's name, the key
itself, the key without the parent shape's or the object's class prefix, the model's serialization name) and
asks each, then `xform_name`s every alias. For a list of a hundred objects that is the same questions with the
same answers a hundred times over; in a profile of a stage-A burst this was most of the serializer's time.

Every answer depends only on the member's shape (its name, type, serialization name, and its parent structure's
name and members), the key, and the object's class (its name and its `Meta.serialization_aliases`), all fixed
while the emulator runs: botocore's shapes are made once per operation model and moto's service models are
cached. Named patch (`sdlf_cli.local.cfn._patching`), same answers as moto's: the names are listed once per
(key, object class) and kept on the shape object itself, so they live exactly as long as the shape. moto's own
way is kept for a picker with other alias providers, and for an object whose own `Meta` or `__getattr__` could
answer differently from its class.
"""
from __future__ import annotations

from typing import Any, Iterator

PATCH = "serialize: an attribute's possible names listed once per shape, key and object class"
_MEMO = "_sdlf_possible_keys"


def _listed_once(original: Any) -> Any:
    from moto.core import serialize

    def get_possible_keys(self: Any, context: Any) -> Iterator[str]:
        obj, shape = context.obj, context.shape
        cls = obj.__class__
        if self.alias_providers is not serialize.DEFAULT_ALIAS_PROVIDERS or shape is None \
                or "Meta" in getattr(obj, "__dict__", ()) or hasattr(cls, "__getattr__"):
            return original(self, context)
        memo = shape.__dict__.get(_MEMO)
        if memo is None:
            memo = shape.__dict__.setdefault(_MEMO, {})
        parent = shape.__dict__.get("parent")
        # The parent is moto's, set on a member shape before its value is picked; kept in the key in case a
        # shape is ever reached from two structures.
        found = memo.get((context.key, cls, parent))
        if found is None:
            found = memo[(context.key, cls, parent)] = tuple(original(self, context))
        return iter(found)

    return get_possible_keys


def install() -> None:
    from moto.core import serialize

    from sdlf_cli.local.cfn import _patching

    _patching.wrap(serialize.XFormedAttributePicker, "get_possible_keys", PATCH, _listed_once)


def uninstall() -> None:
    from sdlf_cli.local.cfn import _patching

    _patching.uninstall(PATCH)
