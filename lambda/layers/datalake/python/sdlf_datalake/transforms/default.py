"""The `default` transform: normalise one raw file into JSON lines.

Formats (detected by content; the file extension and content type are hints that break ties):
- a JSON document: an object -> one record; an array -> one record per element; a scalar -> one record
- JSON lines (one value per line; .jsonl/.ndjson, or a .json file holding several lines of values)
- CSV with a header row (values stay strings, header names kept; delimiter , TAB ; or | sniffed
  from the header, TAB for .tsv)
- any of these gzip-compressed (detected by magic bytes, not only by a .gz suffix)
Records that are not JSON objects are wrapped as {"value": ...}. The output is one file named
like the input with its format extensions replaced by `.jsonl` (see `stage_name`).
"""
from __future__ import annotations

from typing import Any, Iterable

from sdlf_datalake.transforms.base import RawObject, StageObject, stage_name
from sdlf_datalake.transforms.formats import read_csv, read_json_auto, read_json_lines
from sdlf_datalake.transforms.registry import register

JSON = "json"
JSON_LINES = "jsonl"
CSV = "csv"

_HINTS = {
    ".json": JSON,
    ".jsonl": JSON_LINES,
    ".ndjson": JSON_LINES,
    ".csv": CSV,
    ".tsv": CSV,
}
_CONTENT_TYPE_HINTS = {
    "application/json": JSON,
    "application/x-ndjson": JSON_LINES,
    "application/jsonl": JSON_LINES,
    "application/x-jsonlines": JSON_LINES,
    "text/csv": CSV,
    "text/tab-separated-values": CSV,
}


@register("default")
def transform(obj: RawObject) -> list[StageObject]:
    text = obj.text  # gunzipped and decoded; raises "empty file" / "binary content ..."
    records = parse(text, format_hint(obj.key, obj.content_type), tab_separated=_base_name(obj.key).endswith((".tsv", ".tsv.gz")))
    return [StageObject.from_records(stage_name(obj.relative_key), records)]


def format_hint(key: str, content_type: str | None = None) -> str | None:
    """The format the name (or, failing that, the content type) suggests; None when neither does."""
    name = _base_name(key)
    for suffix in (".gz", ".gzip"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    for ext, fmt in _HINTS.items():
        if name.endswith(ext):
            return fmt
    if content_type:
        return _CONTENT_TYPE_HINTS.get(content_type.split(";", 1)[0].strip().lower())
    return None


def parse(text: str, hint: str | None, tab_separated: bool = False) -> Iterable[Any]:
    """Records of the text. Content decides, the hint breaks ties: JSON starts with '{' or '['
    (several values on separate lines are JSON lines); the rest is CSV. A CSV hint wins over content
    (a CSV header may start with '['); a JSON-lines hint is trusted (lines of numbers or strings do
    not start with a bracket); a JSON hint reads content that does not start with a bracket as JSON.
    """
    if hint == CSV:
        return read_csv(text, delimiter="\t" if tab_separated else None)
    if hint == JSON_LINES:
        return read_json_lines(text)
    if text.lstrip()[:1] in ("{", "[") or hint == JSON:
        fmt, parsed = read_json_auto(text)
        if fmt == JSON_LINES:
            return parsed
        return parsed if isinstance(parsed, list) else [parsed]
    return read_csv(text, delimiter="\t" if tab_separated else None)


def _base_name(key: str) -> str:
    return key.rsplit("/", 1)[-1].lower()
