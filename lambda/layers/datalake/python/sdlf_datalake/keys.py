"""Key layout of every data bucket: `<team>/<dataset>/<rest>`, and the ids derived from it."""
from __future__ import annotations

from dataclasses import dataclass

_ID_SCHEME = "s3://"


@dataclass(frozen=True)
class KeyParts:
    """`team`/`dataset` are None when the key has fewer than three non-empty parts."""

    key: str
    team: str | None
    dataset: str | None
    rest: str | None

    @property
    def dataset_id(self) -> str | None:
        if self.team is None or self.dataset is None:
            return None
        return dataset_id(self.team, self.dataset)

    @property
    def in_layout(self) -> bool:
        return self.team is not None


def split_key(key: str) -> KeyParts:
    parts = key.split("/", 2)
    if len(parts) < 3 or not all(parts):
        return KeyParts(key=key, team=None, dataset=None, rest=None)
    return KeyParts(key=key, team=parts[0], dataset=parts[1], rest=parts[2])


def dataset_id(team: str, dataset: str) -> str:
    return f"{team}/{dataset}"


def object_id(bucket: str, key: str) -> str:
    """Catalog id of an object: `s3://<bucket>/<key>`."""
    return f"{_ID_SCHEME}{bucket}/{key}"


def parse_object_id(value: str) -> tuple[str, str]:
    """Inverse of `object_id`; raises ValueError naming the value when it is not `s3://bucket/key`."""
    if not value.startswith(_ID_SCHEME):
        raise ValueError(f"catalog id {value!r} does not start with {_ID_SCHEME!r}")
    bucket, sep, key = value[len(_ID_SCHEME):].partition("/")
    if not bucket or not sep or not key:
        raise ValueError(f"catalog id {value!r} is not of the form s3://<bucket>/<key>")
    return bucket, key
