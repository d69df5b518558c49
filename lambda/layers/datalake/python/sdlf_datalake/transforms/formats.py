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
import sys
import zlib
from typing import Any, Iterator

from sdlf_datalake.errors import InvalidInputError

GZIP_MAGIC = b"\x1f\x8b"
# A gzip bomb must not exhaust the function's memory: refuse to inflate beyond this, and beyond
# MAX_INFLATION_RATIO times the compressed size once past MIN_INFLATION_ALLOWANCE (text compresses 5-20x;
# a bomb thousands of times). Inflation stops at the limit: the bomb is never held in memory whole.
MAX_INFLATED_BYTES = 2 * 1024**3
MAX_INFLATION_RATIO = 100
MIN_INFLATION_ALLOWANCE = 64 * 1024**2
_INFLATE_CHUNK = 8 * 1024**2
_UTF16_BOMS = {b"\xff\xfe": "FF FE", b"\xfe\xff": "FE FF"}
_BOM = "\ufeff"
_CSV_DELIMITERS = (",", "\t", ";", "|")


def is_gzip(data: bytes) -> bool:
    return data[:2] == GZIP_MAGIC


def gunzip_if_needed(data: bytes, limit: int = MAX_INFLATED_BYTES) -> bytes:
    """Inflate gzip data (all members); return other data unchanged."""
    if not is_gzip(data):
        return data
    cap = min(limit, max(MIN_INFLATION_ALLOWANCE, MAX_INFLATION_RATIO * len(data)))
    chunks, size = [], 0
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            while True:
                chunk = stream.read(min(_INFLATE_CHUNK, cap + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > cap:
                    raise InvalidInputError(
                        f"gzip data inflates beyond {cap} bytes from {len(data)} compressed (more than "
                        f"{MAX_INFLATION_RATIO}x past {MIN_INFLATION_ALLOWANCE} bytes, or past {limit}): a zip bomb, "
                        "or too large for stage A; expected at most that")
    except (OSError, EOFError, zlib.error) as exc:
        raise InvalidInputError(f"corrupt gzip data: {exc}") from None
    return b"".join(chunks)


def decode_text(data: bytes) -> str:
    """UTF-8 text, or InvalidInputError naming the first byte that is not text."""
    if not data.strip():
        raise InvalidInputError("empty file")
    bom = _UTF16_BOMS.get(data[:2])
    if bom:
        raise InvalidInputError(f"binary content (not UTF-8 text) at byte 0: UTF-16 text (byte-order mark {bom}); "
                                "expected UTF-8, re-encode the file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        hint = ""
        if all(b >= 0x20 or b in (0x09, 0x0A, 0x0D) for b in data[:4096]):
            hint = " (text in an 8-bit encoding such as Latin-1?)"
        raise InvalidInputError(f"binary content (not UTF-8 text) at byte {exc.start}{hint}; expected UTF-8") from None
    # NUL is valid UTF-8 but never appears in text files; it marks binary data.
    nul = data.find(b"\x00")
    if nul != -1:
        raise InvalidInputError(f"binary content (not UTF-8 text) at byte {nul}")
    return text[1:] if text.startswith(_BOM) else text


def _malformed(line: int, column: int, msg: str) -> InvalidInputError:
    return InvalidInputError(f"malformed JSON at line {line} column {column}: {msg}")


def _too_deep() -> InvalidInputError:
    return InvalidInputError(f"JSON nested deeper than {sys.getrecursionlimit()} levels; expected shallower "
                             "documents (flatten the structure)")


def read_json_document(text: str) -> Any:
    """One JSON value; InvalidInputError with its line/column when malformed or followed by more data."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _malformed(exc.lineno, exc.colno, exc.msg) from None
    except RecursionError:
        raise _too_deep() from None


def read_json_lines(text: str) -> Iterator[Any]:
    """One JSON value per line (blank lines skipped); errors name the line in the file."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError as exc:
            raise _malformed(number, exc.colno, exc.msg) from None
        except RecursionError:
            raise _too_deep() from None


def read_json_auto(text: str) -> tuple[str, Any]:
    """A JSON document or JSON lines, whichever the text is, parsed once.

    Returns ("json", value) or ("jsonl", iterator of values). JSON lines are recognised when the
    first value is followed by more data starting on a new line.
    """
    stripped = text.lstrip()
    try:
        value, end = json.JSONDecoder().raw_decode(stripped)
    except RecursionError:
        raise _too_deep() from None
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
    except (json.JSONDecodeError, RecursionError):
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
