"""DynamoDB's 400 KB item limit checked by moto's rule at a fraction of its cost.

moto 5.2.5 checks the limit at every attribute an UpdateItem sets (`LimitedSizeDict.__setitem__`): it sums
the size of every attribute name and value the item holds, through `DynamoType.size()` and four type tests
per value, and lists of all names and values built for it - 12 sets on a 20-attribute catalog row are ~500
size computations, a sixth of the UpdateItem once its expressions are parsed and validated once.

Named patch (`sdlf_cli.local.cfn._patching`): the same sum, in the same order (names, then values, then the
new pair), without the lists and with a scalar's size taken directly (`S`/`B`: its UTF-8 bytes; `N`: its
text; `BOOL`/`NULL`: 1), exactly as `DynamoType.size()` takes it; sets, lists and maps go through moto's
`size()` as before. Over 405,000 bytes raises moto's `ItemSizeTooLarge`.
"""
from __future__ import annotations

from typing import Any

SIZE_PATCH = "dynamodb: an item's size limit is checked without rebuilding its attribute lists"
LIMIT = 405000  # moto's: "the actual limit is between 409 and 410KB"
_CONTAINERS = frozenset(("SS", "NS", "BS", "L", "M"))


def _sized(_original: Any) -> Any:
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.utilities import bytesize

    def size_of(entry: Any) -> int:
        # moto's `item.size() if type(item) is DynamoType else bytesize(str(item))`.
        if type(entry) is not DynamoType:
            return bytesize(str(entry))
        kind = entry.type
        if kind == "N":
            return len(str(entry.value))
        if kind in _CONTAINERS:
            return entry.size()
        value = entry.value
        if isinstance(value, bool):
            return 1
        return bytesize(value)

    def __setitem__(self: Any, key: str, value: Any) -> None:
        current = sum(map(size_of, self.keys())) + sum(map(size_of, self.values()))
        if current + bytesize(key) + size_of(value) > LIMIT:
            raise ItemSizeTooLarge
        dict.__setitem__(self, key, value)

    return __setitem__


def install() -> None:
    from moto.dynamodb.models.dynamo_type import LimitedSizeDict

    from sdlf_cli.local.cfn import _patching

    _patching.wrap(LimitedSizeDict, "__setitem__", SIZE_PATCH, _sized)


def uninstall() -> None:
    from sdlf_cli.local.cfn import _patching

    _patching.uninstall(SIZE_PATCH)
