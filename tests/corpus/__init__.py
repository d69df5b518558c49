"""Hostile inputs: files that break naive pipelines, each with the end state the lake must reach.

`CASES` are built in code (binary, encodings, gzip, large and deep files are clearer generated than committed);
tests/unit/test_hostile_corpus.py runs each through stage A's default transform. An accepted file names its
record count; a refused one the start of its reason, which says what was wrong and what was expected (the
catalog row of the object carries it, with the object's s3:// id).
"""
from __future__ import annotations

import gzip
import io
import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    name: str  # the file name below <team>/<dataset>/
    body: bytes
    records: int | None = None  # accepted: this many records
    reason: str | None = None  # refused: the reason starts with this


def _gzip_bomb() -> bytes:
    # 1 GiB of one byte repeated: ~1 MB compressed, a ratio of about 1000.
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9) as stream:
        chunk = b"0" * (16 * 1024**2)
        for _ in range(64):
            stream.write(chunk)
    return buffer.getvalue()


def _deep(levels: int) -> bytes:
    return ("[" * levels + "]" * levels).encode()


def cases() -> list[Case]:
    good_lines = b"".join(json.dumps({"id": i, "name": f"p{i}"}).encode() + b"\n" for i in range(3))
    whole = gzip.compress(good_lines * 200)
    return [
        Case("malformed.json", b'{"id": 1,\n "name": }\n', reason="malformed JSON at line 2 column 10"),
        Case("empty.json", b"", reason="empty file"),
        Case("blank.csv", b"  \n\n", reason="empty file"),
        Case("binary.json", bytes(range(256)) * 4, reason="binary content (not UTF-8 text) at byte 128"),
        Case("bom.json", '\ufeff{"id": 1, "name": "Zoë"}'.encode("utf-8"), records=1),
        Case("utf16.json", '{"id": 1}'.encode("utf-16"), reason="binary content (not UTF-8 text) at byte 0: UTF-16"),
        Case("latin1.csv", "id,city\n1,Zürich\n".encode("latin-1"),
             reason="binary content (not UTF-8 text) at byte 11 (text in an 8-bit encoding such as Latin-1?)"),
        Case("deep-900.json", _deep(900), records=1),
        Case("deep-1000.json", _deep(1000), reason="JSON nested deeper than"),
        Case("duplicate-keys.json", b'{"id": 1, "id": 2, "name": "x"}', records=1),
        Case("ragged.csv", b"id,name\n1,a\n2\n3,c,extra\n", reason="CSV row 3 has 1 fields, header has 2"),
        Case("quoted-newlines.csv", b'id,note\n1,"line one\nline two"\n2,"a ""quoted"" word"\n', records=2),
        Case("truncated.jsonl.gz", whole[: len(whole) // 2], reason="corrupt gzip data"),
        Case("bomb.jsonl.gz", _gzip_bomb(), reason="gzip data inflates beyond"),
        Case("drift-1.jsonl", b'{"id": 1, "v": 1}\n{"id": 2, "v": "two", "new": true}\n', records=2),
        Case("good.jsonl", good_lines, records=3),
    ]
