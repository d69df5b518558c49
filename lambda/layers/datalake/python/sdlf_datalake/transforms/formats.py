"""Readers for the formats the default transform understands, usable by your own transforms too.

Every reader raises `InvalidInputError` with a reason precise enough to fix the file:
"empty file", "binary content (not text) at byte N", "malformed JSON at line L column C: msg",
"line L: duplicate key 'k' in a JSON object", "JSON nested deeper than 100 levels",
"CSV row R has X fields, header has Y".
"""
from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
import zlib
from typing import Any, Iterator

from sdlf_datalake.errors import InvalidInputError

GZIP_MAGIC = b"\x1f\x8b"
# A gzip bomb must not exhaust the function's memory: refuse to inflate beyond MAX_INFLATED_BYTES (stage A
# passes its MAX_OBJECT_BYTES setting), and beyond MAX_INFLATION_RATIO times the compressed size once past
# MIN_INFLATION_ALLOWANCE (text compresses 5-20x; a bomb thousands of times). Inflation stops at the limit:
# the bomb is never held in memory whole.
MAX_INFLATED_BYTES = 512 * 1024**2
MAX_INFLATION_RATIO = 100
MIN_INFLATION_ALLOWANCE = 64 * 1024**2
_INFLATE_CHUNK = 8 * 1024**2
_UTF16_SAMPLE = 4096
# Control bytes no text file holds (tab, line feed, form feed and carriage return are text).
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")
# Deeper JSON is refused: stage B maps nesting onto Parquet and Glue types level by level, and readers
# (Athena, Spark) handle a few dozen levels well; 100 is far beyond any real record.
MAX_NESTING_DEPTH = 100
_CSV_DELIMITERS = (",", "\t", ";", "|")
EMPTY = "empty file: no data; expected JSON, JSON lines or CSV with a header row"


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
        raise InvalidInputError(f"corrupt gzip data: {exc}; expected a complete gzip file (a truncated upload?)") from None
    return b"".join(chunks)


def decode_text(data: bytes) -> str:
    """The text of `data`, whatever its encoding a producer is likely to have used; see `detect_text`."""
    return detect_text(data)[0]


def detect_text(data: bytes) -> tuple[str, str]:
    """(text, encoding) of `data`; InvalidInputError "empty file", or "binary content" naming the first byte
    that is not text.

    Encodings, in the order they are recognised: a byte-order mark (UTF-8, UTF-16 LE or BE; the mark is
    dropped), UTF-16 without a mark (text whose every other byte is 0), UTF-8, and then an 8-bit encoding:
    Windows-1252, which is Latin-1 (ISO 8859-1) with printable characters in place of C1 control codes. Data
    with control bytes (other than tab, line feed, form feed and carriage return) is binary, in any encoding.
    """
    if not data.strip():
        raise InvalidInputError(EMPTY)
    if data.startswith(codecs.BOM_UTF8):
        text, encoding = _utf8(data[len(codecs.BOM_UTF8):], len(codecs.BOM_UTF8)), "utf-8-sig"
    else:
        encoding = _utf16_encoding(data)
        if encoding:
            text = _utf16(data, encoding)
        else:
            try:
                text, encoding = _utf8(data, 0), "utf-8"
            except _NotUtf8:
                text, encoding = _eight_bit(data), "cp1252"
    if not text.strip():
        raise InvalidInputError(EMPTY)
    return text, encoding


class _NotUtf8(Exception):
    pass


def _binary(offset: int, what: str = "") -> InvalidInputError:
    return InvalidInputError(f"binary content (not text) at byte {offset}{what}; expected text in UTF-8, UTF-16 "
                             "or an 8-bit encoding (Windows-1252, Latin-1)")


def _utf8(data: bytes, offset: int) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        if offset:  # a UTF-8 byte-order mark promised UTF-8
            raise _binary(offset + _first_bad_utf8(data), " (after a UTF-8 byte-order mark)") from None
        raise _NotUtf8() from None
    # NUL is valid UTF-8 but never appears in text files; it marks binary data.
    nul = data.find(b"\x00")
    if nul != -1:
        raise _binary(offset + nul)
    return text


def _first_bad_utf8(data: bytes) -> int:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return 0


def _utf16_encoding(data: bytes) -> str | None:
    """`utf-16-le`/`-be` for a byte-order mark, or for text whose sample has 0 in every odd (LE) or even (BE)
    byte of at least half its pairs and nowhere else (what ASCII and Latin text in UTF-16 looks like)."""
    if data.startswith(codecs.BOM_UTF16_LE):
        return "utf-16-le"
    if data.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be"
    sample = data[:_UTF16_SAMPLE]
    if len(sample) < 2 or len(data) % 2:
        return None
    even, odd = sample[0::2], sample[1::2]
    even_zeros, odd_zeros = even.count(0), odd.count(0)
    if even_zeros == 0 and odd_zeros * 2 >= len(odd):
        return "utf-16-le"
    if odd_zeros == 0 and even_zeros * 2 >= len(even):
        return "utf-16-be"
    return None


def _utf16(data: bytes, encoding: str) -> str:
    marked = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    body = data[2:] if marked else data
    where = " (UTF-16 after a byte-order mark)" if marked else " (UTF-16 without a byte-order mark)"
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as exc:
        raise _binary(exc.start + (2 if marked else 0), where) from None
    control = _CONTROL_CHARS.search(text)
    if control:
        raise _binary(len(text[: control.start()].encode(encoding)) + (2 if marked else 0), where)
    return text


def _eight_bit(data: bytes) -> str:
    control = _CONTROL_BYTES.search(data)
    if control:
        raise _binary(control.start())
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError as exc:  # 0x81, 0x8D, 0x8F, 0x90, 0x9D: undefined in Windows-1252
        raise _binary(exc.start) from None


def _malformed(line: int, column: int, msg: str) -> InvalidInputError:
    return InvalidInputError(f"malformed JSON at line {line} column {column}: {msg}")


def _too_deep(where: str = "") -> InvalidInputError:
    return InvalidInputError(f"{where}JSON nested deeper than {MAX_NESTING_DEPTH} levels; expected at most "
                             f"{MAX_NESTING_DEPTH} (flatten the structure)")


class _DuplicateKey(Exception):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object's pairs as a dict, refusing a key given twice (a plain reader keeps the last value silently)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


def _duplicate(where: str, key: str) -> InvalidInputError:
    return InvalidInputError(f"{where}: duplicate key {key!r} in a JSON object; expected each key once per object "
                             "(a reader would keep only one of its values)")


_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys)


def _loads(text: str) -> Any:
    return _DECODER.decode(text)


def read_json_document(text: str) -> Any:
    """One JSON value; InvalidInputError with its line/column when malformed or followed by more data."""
    try:
        return _loads(text)
    except json.JSONDecodeError as exc:
        raise _malformed(exc.lineno, exc.colno, exc.msg) from None
    except _DuplicateKey as exc:
        raise _duplicate("JSON document" if "\n" in text.strip() else "line 1", exc.key) from None
    except RecursionError:
        raise _too_deep() from None


def read_json_lines(text: str) -> Iterator[Any]:
    """One JSON value per line (blank lines skipped); errors name the line in the file."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield _loads(line)
        except json.JSONDecodeError as exc:
            raise _malformed(number, exc.colno, exc.msg) from None
        except _DuplicateKey as exc:
            raise _duplicate(f"line {number}", exc.key) from None
        except RecursionError:
            raise _too_deep(f"line {number}: ") from None


def read_json_auto(text: str) -> tuple[str, Any]:
    """A JSON document or JSON lines, whichever the text is, parsed once.

    Returns ("json", value) or ("jsonl", iterator of values). JSON lines are recognised when the
    first value is followed by more data starting on a new line.
    """
    stripped = text.lstrip()
    try:
        value, end = _DECODER.raw_decode(stripped)
    except RecursionError:
        raise _too_deep() from None
    except _DuplicateKey as exc:
        first, newline, rest = stripped.partition("\n")
        if newline and rest.strip() and _parses(first):
            return "jsonl", read_json_lines(text)  # a later line has it; it names that line
        raise _duplicate("JSON document" if "\n" in stripped.strip() else "line 1", exc.key) from None
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
        _loads(line)
    except (json.JSONDecodeError, RecursionError, _DuplicateKey):
        return False
    return True


def nesting_depth(value: Any) -> int:
    """Levels of objects and arrays in `value` (a scalar is 0, `{"a": [1]}` is 2), without recursion."""
    depth, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth = max(depth, level)
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return depth


def check_depth(record: Any, line: str, index: int) -> None:
    """InvalidInputError when `record` (serialised as `line`) nests deeper than MAX_NESTING_DEPTH. Only a line
    with that many brackets can, so most records are never walked."""
    if line.count("{") + line.count("[") > MAX_NESTING_DEPTH and nesting_depth(record) > MAX_NESTING_DEPTH:
        raise _too_deep(f"record {index}: ")


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
                    f" (line {reader.line_num}); expected {len(header)}, one per header column (quote values"
                    " that hold the delimiter)"
                )
            yield dict(zip(header, row))
    except csv.Error as exc:
        raise InvalidInputError(f"malformed CSV at row {row_number + 1} (line {reader.line_num}): {exc}; expected "
                                "fields quoted with \" and every quote closed") from None
    if header is None:
        raise InvalidInputError(EMPTY)


def _header(row: list[str]) -> list[str]:
    names = [name if name != "" else f"column_{index}" for index, name in enumerate(row, start=1)]
    seen: dict[str, int] = {}
    for index, name in enumerate(names, start=1):
        if name in seen:
            raise InvalidInputError(f"CSV header has duplicate column {name!r} (columns {seen[name]} and {index}); "
                                   "expected each column name once")
        seen[name] = index
    return names
