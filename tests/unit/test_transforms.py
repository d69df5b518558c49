"""The light-transform contract and the `default` transform on fixture files of every format."""
from __future__ import annotations

import gzip
import json
import sys
import textwrap
from pathlib import Path

import pytest

from sdlf_datalake.errors import InvalidInputError
from sdlf_datalake.transforms import (
    RawObject,
    StageObject,
    available_transforms,
    get_transform,
    register,
    stage_name,
)
from sdlf_datalake.transforms import registry as transform_registry

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stage_a"


def raw(name: str, key: str | None = None, content_type: str | None = None, body: bytes | None = None) -> RawObject:
    return RawObject(
        bucket="raw-bucket",
        key=key or f"engineering/persons/2024/05/{name}",
        team="engineering",
        dataset="persons",
        body=(FIXTURES / name).read_bytes() if body is None else body,
        content_type=content_type,
    )


def run_default(obj: RawObject) -> tuple[StageObject, list]:
    outputs = get_transform("default")(obj)
    assert len(outputs) == 1
    out = outputs[0]
    lines = out.body.decode("utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert out.records == len(records)
    assert all(isinstance(r, dict) for r in records)
    return out, records


def test_json_object_is_one_record():
    out, records = run_default(raw("person.json"))
    assert out.name == "2024/05/person.jsonl"
    assert records == [{"id": 1, "name": "Ada Lovelace", "tags": ["math", "poetry"], "born": {"year": 1815}}]
    assert out.body.endswith(b"\n") and out.body.count(b"\n") == 1


def test_json_array_is_one_record_per_element_and_scalars_are_wrapped():
    out, records = run_default(raw("persons_array.json"))
    assert records == [
        {"id": 1, "name": "Ada Lovelace"},
        {"id": 2, "name": "Grace Hopper"},
        {"value": "not an object"},
        {"value": 42},
    ]


def test_json_lines_skip_blank_lines_and_wrap_scalars():
    out, records = run_default(raw("persons.jsonl"))
    assert out.name == "2024/05/persons.jsonl"
    assert records == [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Grace"}, {"value": "loose string"}]


def test_json_lines_in_a_file_named_json_are_detected_by_content():
    _, records = run_default(raw("persons_lines_named.json"))
    assert records == [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Grace"}]


def test_csv_keeps_header_names_and_string_values_with_quotes_and_newlines():
    out, records = run_default(raw("persons.csv"))
    assert out.name == "2024/05/persons.jsonl"
    assert records == [
        {"id": "1", "name": "Ada Lovelace", "city": "London"},
        {"id": "2", "name": "Hopper, Grace", "city": "New York"},
        {"id": "3", "name": "Zoë", "city": "multi\nline"},
    ]
    assert "Zoë".encode() in out.body  # UTF-8 kept, not \u-escaped


def test_csv_delimiter_is_sniffed_and_tsv_uses_tabs():
    _, records = run_default(raw("persons_semicolon.csv"))
    assert records == [{"id": "1", "name": "Ada"}, {"id": "2", "name": "Grace"}]
    _, records = run_default(raw("persons.tsv"))
    assert records == [{"id": "1", "name": "Ada"}]


@pytest.mark.parametrize(
    ("gz", "plain"),
    [("persons.csv.gz", "persons.csv"), ("person.json.gz", "person.json"), ("persons.jsonl.gz", "persons.jsonl")],
)
def test_gzip_variants_give_the_same_records(gz, plain):
    out_gz, records_gz = run_default(raw(gz))
    out_plain, records_plain = run_default(raw(plain))
    assert records_gz == records_plain
    assert out_gz.name == out_plain.name  # .csv.gz -> .jsonl, like .csv
    assert out_gz.body == out_plain.body


def test_gzip_is_detected_by_magic_bytes_without_suffix():
    out, records = run_default(raw("persons_array_no_suffix"))
    assert out.name == "2024/05/persons_array_no_suffix.jsonl"
    assert len(records) == 4 and records[0] == {"id": 1, "name": "Ada Lovelace"}


def test_gz_suffix_on_plain_content_is_read_as_plain():
    body = (FIXTURES / "persons.csv").read_bytes()
    _, records = run_default(raw("x", key="engineering/persons/already-inflated.csv.gz", body=body))
    assert len(records) == 3


def test_content_type_is_a_hint_when_the_name_has_no_extension():
    body = b"1\n2\n"
    _, records = run_default(raw("x", key="engineering/persons/numbers", content_type="application/x-ndjson", body=body))
    assert records == [{"value": 1}, {"value": 2}]
    _, records = run_default(raw("x", key="engineering/persons/numbers", body=b"n\n1\n"))
    assert records == [{"n": "1"}]  # no hint, not JSON: CSV


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("empty.csv", "empty file"),
        ("blank.json", "empty file"),
        ("png_header.json", "binary content (not text) at byte 6"),  # 0x89 is a Windows-1252 character; 0x1A is not
        ("nul.csv", "binary content (not text) at byte 11"),
        ("malformed.json", "malformed JSON at line 3 column 16: Expecting value"),
        ("malformed.jsonl", "malformed JSON at line 3 column 10: Expecting ',' delimiter"),
        ("ragged.csv", "CSV row 3 has 3 fields, header has 2"),
        ("ragged.csv.gz", "CSV row 3 has 3 fields, header has 2"),
        ("duplicate_header.csv", "CSV header has duplicate column 'id' (columns 1 and 3)"),
        ("truncated.csv.gz", "corrupt gzip data"),
    ],
)
def test_bad_files_fail_with_a_precise_reason(name, reason):
    with pytest.raises(InvalidInputError) as caught:
        get_transform("default")(raw(name))
    assert str(caught.value).startswith(reason)


def test_an_8_bit_file_is_read_as_windows_1252():
    out, records = run_default(raw("latin1.csv"))
    assert records == [{"id": "1", "name": "café"}]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-8-sig", "cp1252", "latin-1"])
def test_text_in_the_encodings_producers_use_gives_the_same_records(encoding):
    text = "id,city,note\n1,Zürich,“quoted”\n2,Kraków,naïve\n" if encoding != "latin-1" else "id,city\n1,Zürich\n"
    if encoding == "cp1252":
        text = text.replace("Kraków", "Krakow")  # ó is in Windows-1252, ł-less names keep the test honest
    out, records = run_default(raw("x", key="engineering/persons/cities.csv", body=text.encode(encoding)))
    assert records[0]["city"] == "Zürich" and list(records[0]) == text.splitlines()[0].split(",")


@pytest.mark.parametrize("body, reason", [
    (b"\xff\xfe" + "{}".encode("utf-16-le") + b"\x00\xd8", "binary content (not text) at byte 6 (UTF-16 after"),
    ('{"a": "\x01"}'.encode("utf-16-le"), "binary content (not text) at byte 14 (UTF-16 without"),
    (b"id,name\n1,caf\xe9\x1b\n", "binary content (not text) at byte 14; expected text in UTF-8, UTF-16"),
    (b"id,name\n1,caf\xe9\x81\n", "binary content (not text) at byte 14"),
    (b"\xef\xbb\xbfid\n\xe9\n", "binary content (not text) at byte 6 (after a UTF-8 byte-order mark)"),
])
def test_data_that_no_text_encoding_explains_is_binary(body, reason):
    with pytest.raises(InvalidInputError) as caught:
        get_transform("default")(raw("x", key="engineering/persons/x.csv", body=body))
    assert str(caught.value).startswith(reason), str(caught.value)


def test_duplicate_keys_are_refused_naming_the_line_and_the_key():
    for body, reason in ((b'{"id": 1, "id": 2}', "line 1: duplicate key 'id'"),
                         (b'{"id": 1}\n{"id": 2, "v": {"a": 1, "a": 2}}\n', "line 2: duplicate key 'a'"),
                         (b'[\n{"id": 1},\n{"id": 2, "id": 3}\n]', "JSON document: duplicate key 'id'")):
        with pytest.raises(InvalidInputError, match=f"^{reason} in a JSON object; expected each key once"):
            get_transform("default")(raw("x", key="engineering/persons/d.json", body=body))


def test_nesting_is_refused_past_its_limit_whatever_the_interpreter_allows():
    from sdlf_datalake.transforms.formats import MAX_NESTING_DEPTH, nesting_depth

    fine = b'{"a":' * MAX_NESTING_DEPTH + b"1" + b"}" * MAX_NESTING_DEPTH
    run_default(raw("x", key="engineering/persons/deep.json", body=fine))
    for levels in (MAX_NESTING_DEPTH + 1, 5000):
        body = b"[" * levels + b"]" * levels
        with pytest.raises(InvalidInputError, match=f"JSON nested deeper than {MAX_NESTING_DEPTH} levels; expected"):
            get_transform("default")(raw("x", key="engineering/persons/deep.json", body=body))
    assert nesting_depth({"a": [1, {"b": {}}]}) == 4 and nesting_depth(7) == 0


@pytest.mark.parametrize("key", ["engineering/persons/../x.json", "engineering/persons/a/../b.json",
                                 "engineering/persons/./c.json"])
def test_keys_with_dot_segments_are_refused_because_their_output_would_name_another_path(key):
    with pytest.raises(InvalidInputError, match="segment: .*expected a key without '.' or '..' segments"):
        get_transform("default")(raw("x", key=key, body=b'{"id": 1}'))


def test_gzip_of_an_empty_file_is_empty():
    with pytest.raises(InvalidInputError, match="^empty file: no data; expected JSON, JSON lines or CSV"):
        get_transform("default")(raw("x", key="engineering/persons/e.json.gz", body=gzip.compress(b"")))


def test_nan_is_rejected_because_json_lines_must_be_valid_json():
    with pytest.raises(InvalidInputError, match="record 1: .*NaN"):
        get_transform("default")(raw("x", key="engineering/persons/n.json", body=b'{"x": NaN}'))


def test_empty_array_and_header_only_csv_give_zero_records():
    out, records = run_default(raw("x", key="engineering/persons/none.json", body=b"[]"))
    assert (records, out.body, out.records) == ([], b"", 0)
    out, records = run_default(raw("x", key="engineering/persons/none.csv", body=b"a,b\n"))
    assert records == []


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("persons.csv", "persons.jsonl"),
        ("2024/05/persons.csv.gz", "2024/05/persons.jsonl"),
        ("sales.2024-05-01.JSON", "sales.2024-05-01.jsonl"),
        ("data.ndjson.gzip", "data.jsonl"),
        ("noext", "noext.jsonl"),
        ("2024/orders.xml", "2024/orders.jsonl"),
        ("sales.2024-05-01", "sales.2024-05-01.jsonl"),
        (".csv", ".csv.jsonl"),
    ],
)
def test_stage_name_replaces_format_extensions(relative, expected):
    assert stage_name(relative) == expected


def test_raw_object_text_helper_is_lazy_and_decodes_gzip():
    obj = raw("persons.csv.gz")
    assert obj.is_gzip
    assert obj.text.startswith("id,name,city")
    assert obj.relative_key == "2024/05/persons.csv.gz"
    assert obj.uri == "s3://raw-bucket/engineering/persons/2024/05/persons.csv.gz"


def test_registered_transform_is_found_by_name():
    @register("upper-names")
    def upper(obj: RawObject) -> list[StageObject]:
        rows = [{"name": line.upper()} for line in obj.text.splitlines() if line]
        return [StageObject.from_records("upper.jsonl", rows)]

    try:
        assert "upper-names" in available_transforms()
        out = get_transform("upper-names")(raw("x", body=b"ada\ngrace\n"))
        assert out == [StageObject("upper.jsonl", b'{"name":"ADA"}\n{"name":"GRACE"}\n', 2)]
    finally:
        transform_registry._transforms.pop("upper-names", None)


def test_transform_module_in_the_package_is_imported_on_demand(tmp_path, monkeypatch):
    # A user's module dropped into the layer's sdlf_datalake/transforms/ folder, found by its name.
    import sdlf_datalake.transforms as package

    module = tmp_path / "count_lines.py"
    module.write_text(textwrap.dedent(
        """
        from sdlf_datalake.transforms import RawObject, StageObject

        def transform(obj: RawObject) -> list[StageObject]:
            return [StageObject.from_records("count.jsonl", [{"lines": len(obj.text.splitlines())}])]
        """
    ))
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path)])
    try:
        out = get_transform("count-lines")(raw("persons.csv"))
        assert json.loads(out[0].body) == {"lines": 5}
        assert "count_lines" in available_transforms()
    finally:
        transform_registry._transforms.pop("count-lines", None)
        sys.modules.pop("sdlf_datalake.transforms.count_lines", None)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nope", "unknown transform 'nope': no module sdlf_datalake.transforms.nope in the datalake layer; available: default"),
        ("Bad Name", "transform name 'Bad Name' is invalid"),
        ("formats", "unknown transform 'formats'"),
    ],
)
def test_unknown_or_invalid_transform_names(name, message):
    with pytest.raises(InvalidInputError) as caught:
        get_transform(name)
    assert str(caught.value).startswith(message)


def test_registering_a_second_function_under_a_taken_name_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        register("default")(lambda obj: [])


def test_the_example_in_docs_transforms_md_works(tmp_path, monkeypatch):
    import sdlf_datalake.transforms as package

    doc = (Path(__file__).resolve().parents[2] / "docs" / "transforms.md").read_text()
    marker = "# lambda/layers/datalake/python/sdlf_datalake/transforms/orders_xml.py\n"
    example = doc[doc.index(marker):]
    (tmp_path / "orders_xml.py").write_text(example[: example.index("```")])
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path)])
    try:
        xml = b'<orders><order id="1"><total>3</total></order><order id="2"/></orders>'
        [out] = get_transform("orders-xml")(raw("x", key="engineering/persons/2024/orders.xml", body=xml))
        assert (out.name, out.records) == ("2024/orders.jsonl", 2)
        assert out.body == b'{"id":"1","total":"3"}\n{"id":"2","total":null}\n'
        with pytest.raises(InvalidInputError, match="^malformed XML"):
            get_transform("orders-xml")(raw("x", body=b"<orders>"))
    finally:
        transform_registry._transforms.pop("orders-xml", None)
        sys.modules.pop("sdlf_datalake.transforms.orders_xml", None)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"a": 1} {"b": 2}', "malformed JSON at line 1 column 10: Extra data"),
        (b'{"a": 1\n{"b": 2}\n', "malformed JSON at line 2 column 1: Expecting ',' delimiter"),
        (b'\n\n  [1, 2', "malformed JSON at line 3 column 8: Expecting ',' delimiter"),
    ],
)
def test_json_positions_count_from_the_start_of_the_file(body, reason):
    with pytest.raises(InvalidInputError) as caught:
        get_transform("default")(raw("x", key="engineering/persons/x.json", body=body))
    assert str(caught.value) == reason


def test_gzip_inflating_past_the_stage_a_object_limit_is_refused_whatever_its_ratio():
    import random

    rows = "".join(f'{{"id": {i}, "r": {random.Random(i).random()}}}\n' for i in range(40_000)).encode()
    body = gzip.compress(rows)
    assert len(rows) / len(body) < 100 and len(rows) > 1024**2
    obj = RawObject("raw-bucket", "engineering/persons/big.jsonl.gz", "engineering", "persons", body,
                    max_payload_bytes=1024**2)
    with pytest.raises(InvalidInputError, match=f"^gzip data inflates beyond {1024**2} bytes"):
        get_transform("default")(obj)
    assert run_default(RawObject("raw-bucket", "engineering/persons/big.jsonl.gz", "engineering", "persons",
                                 body))[0].records == 40_000
