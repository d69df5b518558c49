"""Readers for the formats the default transform understands, usable by your own transforms too.

Every reader raises `InvalidInputError` with a reason precise enough to fix the file:
"empty file", "binary content (not UTF-8 text) at byte N", "malformed JSON at line L column C: msg",
"CSV row R has X fields, header has Y".
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from typing import Any, Iterator

from sdlf_datalake.errors import InvalidInputError

GZIP_MAGIC = b"\x1f\x8b"
# A gzip bomb must not exhaust the function's memory: refuse to inflate beyond this.
MAX_INFLATED_BYTES = 2 * 1024**3
_BOM = "\ufeff"
_CSV_DELIMITERS = (",", "\t", ";", "|")


def is_gzip(data: bytes) -> bool:
    return data[:2] == GZIP_MAGIC


def gunzip_if_needed(data: bytes, limit: int = MAX_INFLATED_BYTES) -> bytes:
    """Inflate gzip data (all members); return other data unchanged."""
    if not is_gzip(data):
        return data
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            inflated = stream.read(limit + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise InvalidInputError(f"corrupt gzip data: {exc}") from None
    if len(inflated) > limit:
        raise InvalidInputError(f"gzip data inflates beyond {limit} bytes; too large for stage A")
    return inflated


def decode_text(data: bytes) -> str:
    """UTF-8 text, or InvalidInputError naming the first byte that is not text."""
    if not data.strip():
        raise InvalidInputError("empty file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"binary content (not UTF-8 text) at byte {exc.start}") from None
    # NUL is valid UTF-8 but never appears in text files; it marks binary data.
    nul = data.find(b"\x00")
    if nul != -1:
        raise InvalidInputError(f"binary content (not UTF-8 text) at byte {nul}")
    return text[1:] if text.startswith(_BOM) else text


def _malformed(line: int, column: int, msg: str) -> InvalidInputError:
    return InvalidInputError(f"malformed JSON at line {line} column {column}: {msg}")


def read_json_document(text: str) -> Any:
    """One JSON value; InvalidInputError with its line/column when malformed or followed by more data."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _malformed(exc.lineno, exc.colno, exc.msg) from None


def read_json_lines(text: str) -> Iterator[Any]:
    """One JSON value per line (blank lines skipped); errors name the line in the file."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError as exc:
            raise _malformed(number, exc.colno, exc.msg) from None


def read_json_auto(text: str) -> tuple[str, Any]:
    """A JSON document or JSON lines, whichever the text is, parsed once.

    Returns ("json", value) or ("jsonl", iterator of values). JSON lines are recognised when the
    first value is followed by more data starting on a new line.
    """
    stripped = text.lstrip()
    try:
        value, end = json.JSONDecoder().raw_decode(stripped)
    except json.JSONDecodeError:
        first, newline, rest = stripped.partition("\n")
        if newline and rest.strip() and _parses(first):
            return "jsonl", read_json_lines(text)  # a later line is broken; it names that line
        return "json", read_json_document(text)  # raises with the position in the whole text
    rest = stripped[end:]
    if not rest.strip():
        return "json", value
    if "\n" in rest[: len(rest) - len(rest.lstrip())]:
        return "jsonl", read_json_lines(text)
    return "json", read_json_document(text)  # raises "Extra data" at its position


def _parses(line: str) -> bool:
    try:
        json.loads(line)
    except json.JSONDecodeError:
        return False
    return True


def sniff_delimiter(header_line: str) -> str:
    """The most frequent of , TAB ; | in the header line (',' when none occurs)."""
    counts = {d: header_line.count(d) for d in _CSV_DELIMITERS}
    best = max(_CSV_DELIMITERS, key=lambda d: (counts[d], -_CSV_DELIMITERS.index(d)))
    return best if counts[best] else ","


def read_csv(text: str, delimiter: str | None = None) -> Iterator[dict[str, str]]:
    """Rows of a CSV file with a header row as {header: value} (values stay strings).

    Row numbers in errors count the header as row 1, like a spreadsheet. Blank lines are skipped.
    An empty header cell is named `column_<N>`; duplicate header names are an error.
    """
    if delimiter is None:
        delimiter = sniff_delimiter(text.split("\n", 1)[0])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    row_number = 0
    header: list[str] | None = None
    try:
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            row_number += 1
            if header is None:
                header = _header(row)
                continue
            if len(row) != len(header):
                raise InvalidInputError(
                    f"CSV row {row_number} has {len(row)} fields, header has {len(header)}"
                    f" (line {reader.line_num})"
                )
            yield dict(zip(header, row))
    except csv.Error as exc:
        raise InvalidInputError(f"malformed CSV at row {row_number + 1} (line {reader.line_num}): {exc}") from None
    if header is None:
        raise InvalidInputError("empty file")


def _header(row: list[str]) -> list[str]:
    names = [name if name != "" else f"column_{index}" for index, name in enumerate(row, start=1)]
    seen: dict[str, int] = {}
    for index, name in enumerate(names, start=1):
        if name in seen:
            raise InvalidInputError(f"CSV header has duplicate column {name!r} (columns {seen[name]} and {index})")
        seen[name] = index
    return names
