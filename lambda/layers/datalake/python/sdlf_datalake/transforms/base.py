"""The light-transform contract: a transform turns one `RawObject` into a list of `StageObject`s.

    def transform(obj: RawObject) -> list[StageObject]

`RawObject` is the raw file as read from S3 (bytes plus where it came from); `StageObject` is one
output file, named relative to `<team>/<dataset>/` in the stage bucket, holding UTF-8 JSON lines.
Transforms do no AWS calls: stage A reads the input, writes the outputs and updates the catalog.
"""
from __future__ import annotations

import functools
import json
import posixpath
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from sdlf_datalake.errors import InvalidInputError
from sdlf_datalake.keys import object_id

# Compression suffixes are stripped first, then one format extension (see `stage_name`).
COMPRESSION_EXTENSIONS = (".gz", ".gzip")
_FORMAT_EXTENSION = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,9}$")
OUTPUT_EXTENSION = ".jsonl"


@dataclass(frozen=True)
class RawObject:
    bucket: str
    key: str
    team: str
    dataset: str
    body: bytes
    content_type: str | None = None

    @property
    def uri(self) -> str:
        return object_id(self.bucket, self.key)

    @property
    def relative_key(self) -> str:
        """The key below `<team>/<dataset>/` (what the producer chose as the file's path)."""
        prefix = f"{self.team}/{self.dataset}/"
        return self.key[len(prefix):] if self.key.startswith(prefix) else self.key

    @property
    def is_gzip(self) -> bool:
        from sdlf_datalake.transforms.formats import is_gzip

        return is_gzip(self.body)

    @functools.cached_property
    def payload(self) -> bytes:
        """The body, gunzipped when it is gzip data (detected by magic bytes, whatever the name)."""
        from sdlf_datalake.transforms.formats import gunzip_if_needed

        return gunzip_if_needed(self.body)

    @functools.cached_property
    def text(self) -> str:
        """`payload` decoded as UTF-8 (a BOM is dropped); InvalidInputError for binary content."""
        from sdlf_datalake.transforms.formats import decode_text

        return decode_text(self.payload)


@dataclass(frozen=True)
class StageObject:
    name: str  # relative to `<team>/<dataset>/` in the stage bucket
    body: bytes  # UTF-8 JSON lines, one object per line
    records: int

    @classmethod
    def from_records(cls, name: str, records: Iterable[Any]) -> "StageObject":
        """Serialise records as JSON lines; a record that is not a JSON object becomes {"value": ...}."""
        body, count = to_json_lines(records)
        return cls(name=name, body=body, records=count)


Transform = Callable[[RawObject], "list[StageObject]"]


def to_json_lines(records: Iterable[Any]) -> tuple[bytes, int]:
    lines: list[str] = []
    for index, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            record = {"value": record}
        try:
            lines.append(json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False))
        except ValueError as exc:
            raise InvalidInputError(f"record {index}: {exc} (NaN and Infinity are not valid JSON)") from None
        except TypeError as exc:
            raise InvalidInputError(f"record {index}: not JSON-serialisable: {exc}") from None
    body = ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
    return body, len(lines)


def stage_name(relative_key: str) -> str:
    """`2024/05/persons.csv.gz` -> `2024/05/persons.jsonl`: the format extension (after any .gz)
    is replaced by .jsonl. An extension starts with a letter, so `sales.2024-05-01` keeps its date.
    """
    directory, base = posixpath.split(relative_key)
    stem = base
    for ext in COMPRESSION_EXTENSIONS:
        if stem.lower().endswith(ext) and len(stem) > len(ext):
            stem = stem[: -len(ext)]
            break
    match = _FORMAT_EXTENSION.search(stem)
    if match and match.start() > 0:
        stem = stem[: match.start()]
    return posixpath.join(directory, stem + OUTPUT_EXTENSION) if directory else stem + OUTPUT_EXTENSION
