"""Hostile inputs: files that break naive pipelines, each with the end state the lake must reach.

Everything is built in code when a test runs (binary, encodings, gzip, large and deep files are clearer
generated than committed; nothing large is in the repository):

- `cases()`: bodies, each through stage A's default transform (tests/unit/test_hostile_corpus.py). An accepted
  file names its record count; a refused one the start of its reason, which says what was wrong and what was
  expected (the object's catalog row carries it, with the object's s3:// id).
- `key_cases()`: good bodies under hostile keys (spaces, unicode, `%`, `=`, `..`, 1,024 bytes).
- `large_cases()`: the 50 MB single line and the gzip bomb, for the deployed lake.
tests/integration/test_hostile_corpus_e2e.py puts all of them, and the scenarios that are steps rather than
files (an object deleted before processing, the same content twice, a prefix no dataset claims, schema drift
across batches), into a deployed lake at once and checks each end state in the catalog and `sdlf audit`.
The table of end states and why is in docs/transforms.md ("Hostile input").
"""
from __future__ import annotations

import gzip
import json
from dataclasses import dataclass

S3_KEY_LIMIT = 1024  # bytes of UTF-8


@dataclass(frozen=True)
class Case:
    name: str  # the key below <team>/<dataset>/
    body: bytes
    records: int | None = None  # accepted: this many records
    reason: str | None = None  # refused: the reason starts with this (contains it, for keys)

    @property
    def accepted(self) -> bool:
        return self.records is not None


def gzip_bomb(inflated: int = 80 * 1024**2) -> bytes:
    """`inflated` bytes of one JSON line repeated, as gzip members of 1 MiB each (a gzip file may hold several;
    readers inflate them all): ~1,000 times smaller, past stage A's limit (inflation beyond 64 MiB must stay
    under 100x the compressed size)."""
    line = b'{"id": 0, "name": "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"}\n'
    chunk = line * ((1024**2) // len(line))
    member = gzip.compress(chunk, compresslevel=9, mtime=0)
    return member * (inflated // len(chunk) + 1)


def single_line(size: int = 50 * 1024**2) -> tuple[bytes, int]:
    """A JSON array of `size` bytes on one line (a minified export): (body, records)."""
    record = json.dumps({"id": 0, "name": "person", "note": "n" * 120}, separators=(",", ":")).encode()
    count = size // (len(record) + 1)
    return b"[" + b",".join([record] * count) + b"]", count


def _deep(levels: int) -> bytes:
    return ("[" * levels + "]" * levels).encode()


def _deep_object(levels: int) -> bytes:
    return ('{"a":' * levels + "1" + "}" * levels).encode()


def cases() -> list[Case]:
    good_lines = b"".join(json.dumps({"id": i, "name": f"p{i}"}).encode() + b"\n" for i in range(3))
    whole = gzip.compress(good_lines * 200)
    return [
        Case("malformed.json", b'{"id": 1,\n "name": }\n', reason="malformed JSON at line 2 column 10"),
        Case("empty.json", b"", reason="empty file"),
        Case("blank.csv", b"  \n\n", reason="empty file"),
        Case("binary.json", bytes(range(256)) * 4, reason="binary content (not text) at byte 0"),
        Case("image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), reason="binary content (not text)"),
        Case("bom.json", '\ufeff{"id": 1, "name": "Zoë"}'.encode("utf-8"), records=1),
        Case("bom-header.csv", "\ufeffid,name\n1,Zoë\n".encode("utf-8"), records=1),
        Case("utf16.json", '{"id": 1, "name": "Zoë"}'.encode("utf-16"), records=1),
        Case("utf16be.csv", "\ufeffid,city\n1,Zürich\n2,Kraków\n".encode("utf-16-be"), records=2),
        Case("utf16le-nobom.jsonl", '{"id": 1, "name": "Zoë"}\n{"id": 2}\n'.encode("utf-16-le"), records=2),
        Case("latin1.csv", "id,city\n1,Zürich\n2,Besançon\n".encode("latin-1"), records=2),
        Case("cp1252.json", '{"id": 1, "quote": "“fancy” — €5"}'.encode("cp1252"), records=1),
        Case("deep-100.json", _deep_object(100), records=1),
        Case("deep-101.json", _deep_object(101), reason="record 1: JSON nested deeper than 100 levels"),
        Case("deep-1000.json", _deep(1000), reason="JSON nested deeper than 100 levels"),
        Case("duplicate-keys.json", b'{"id": 1, "id": 2, "name": "x"}', reason="line 1: duplicate key 'id'"),
        Case("duplicate-nested-keys.jsonl", b'{"id": 1}\n{"id": 2, "v": {"a": 1, "a": 1}}\n',
             reason="line 2: duplicate key 'a'"),
        Case("ragged.csv", b"id,name\n1,a\n2\n3,c,extra\n", reason="CSV row 3 has 1 fields, header has 2"),
        Case("quoted-newlines.csv", b'id,note\r\n1,"line one\nline two"\r\n2,"a ""quoted"" word"\r\n', records=2),
        Case("truncated.jsonl.gz", whole[: len(whole) // 2], reason="corrupt gzip data"),
        Case("drift-1.jsonl", b'{"id": 1, "v": 1}\n{"id": 2, "v": "two", "new": true}\n', records=2),
        Case("good.jsonl", good_lines, records=3),
    ]


def long_name(prefix: str, suffix: str = ".json") -> str:
    """A name that makes `<prefix><name>` exactly S3's 1,024-byte key limit."""
    return "k" * (S3_KEY_LIMIT - len(prefix.encode()) - len(suffix)) + suffix


def key_cases(prefix: str) -> list[Case]:
    """Good JSON under keys that break naive code (`prefix` is `<team>/<dataset>/`, for the long key)."""
    body = b'{"id": 1, "name": "keyed"}\n'
    return [
        Case("with space.json", body, records=1),
        Case("données ünïcödé 日本語.json", body, records=1),
        Case("100% done %41%2F.json", body, records=1),
        Case("year=2024/month=05/a=b.json", body, records=1),
        Case(long_name(prefix), body, records=1),
        Case("../escape.json", body, reason="a '..' segment"),
        Case("sub/../inner.json", body, reason="a '..' segment"),
    ]


def large_cases() -> list[Case]:
    line, records = single_line()
    return [
        Case("single-line-50mb.json", line, records=records),
        Case("bomb.jsonl.gz", gzip_bomb(), reason="gzip data inflates beyond"),
    ]
