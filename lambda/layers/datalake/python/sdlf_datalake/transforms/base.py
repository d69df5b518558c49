"""The light-transform contract: a transform turns one `RawObject` into a list of `StageObject`s.

    def transform(obj: RawObject) -> list[StageObject]

`RawObject` is the raw file as read from S3 (bytes plus where it came from); `StageObject` is one
output file, named relative to `<team>/<dataset>/` in the stage bucket, holding UTF-8 JSON lines.
Transforms do no AWS calls: stage A reads the input, writes the outputs and updates the catalog.
"""
from __future__ import annotations

import functools
import hashlib
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
S3_KEY_LIMIT = 1024  # bytes of UTF-8 in an S3 key


@dataclass(frozen=True)
class RawObject:
    bucket: str
    key: str
    team: str
    dataset: str
    body: bytes
    content_type: str | None = None
    max_payload_bytes: int | None = None  # inflated gzip beyond this is refused (default: formats.MAX_INFLATED_BYTES)

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
        from sdlf_datalake.transforms.formats import MAX_INFLATED_BYTES, gunzip_if_needed

        return gunzip_if_needed(self.body, self.max_payload_bytes or MAX_INFLATED_BYTES)

    @functools.cached_property
    def text(self) -> str:
        """`payload` decoded (UTF-8, UTF-16 or Windows-1252/Latin-1, detected; a byte-order mark is dropped);
        InvalidInputError for binary content (see `formats.detect_text`)."""
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
    from sdlf_datalake.transforms.formats import MAX_NESTING_DEPTH, check_depth

    lines: list[str] = []
    for index, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            record = {"value": record}
        try:
            line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        except ValueError as exc:
            raise InvalidInputError(f"record {index}: {exc} (NaN and Infinity are not valid JSON)") from None
        except TypeError as exc:
            raise InvalidInputError(f"record {index}: not JSON-serialisable: {exc}") from None
        except RecursionError:  # deeper than the interpreter's limit: walked without recursion, and refused
            line = "[" * (MAX_NESTING_DEPTH + 1)
        check_depth(record, line, index)
        lines.append(line)
    body = ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
    return body, len(lines)


def stage_name(relative_key: str) -> str:
    """`2024/05/persons.csv.gz` -> `2024/05/persons.jsonl`: the format extension (after any .gz)
    is replaced by .jsonl. An extension starts with a letter, so `sales.2024-05-01` keeps its date.
    A `.` or `..` segment is refused (InvalidInputError): the output must stay below <team>/<dataset>/.
    """
    dots = [part for part in relative_key.split("/") if part in (".", "..")]
    if dots:
        raise InvalidInputError(
            f"key {relative_key!r} has a {dots[0]!r} segment: S3 keeps it as written, but paths that readers "
            f"normalise would name another object, or one outside <team>/<dataset>/; expected a key without "
            "'.' or '..' segments (rename the object)")
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


def fit_key(prefix: str, name: str, limit: int = S3_KEY_LIMIT) -> str:
    """`name`, or when `prefix + name` is longer than S3's key limit, `name` cut to fit and ended by `~` and a
    hash of the whole name (its `.jsonl` kept), so a raw key at the limit still gets its own stage object."""
    if len((prefix + name).encode("utf-8")) <= limit:
        return name
    extension = OUTPUT_EXTENSION if name.endswith(OUTPUT_EXTENSION) else ""
    tail = "~" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:16] + extension
    budget = limit - len(prefix.encode("utf-8")) - len(tail)
    if budget < 1:
        raise InvalidInputError(f"stage prefix {prefix!r} leaves no room for a name within S3's {limit}-byte key limit")
    return name.encode("utf-8")[:budget].decode("utf-8", "ignore") + tail
