"""The runtime's speed patches on moto answer exactly as moto does, and each comes out again.

- dynamodb_expressions: UpdateItem validation in linear time and expressions parsed once - same items,
  same errors (checked against moto with the patches out);
- dynamodb_update_plans: UpdateItem validation from a plan per expression - the same validated trees, items,
  conditional-check outcomes and errors as moto's (the lake's own catalog and execution writes, and errors
  that two processors would both raise, so the first one in moto's order must win), and a remembered tree's
  clauses found once;
- dynamodb_conditions: a condition's syntax worked out once per text - the same conditions, placeholders found,
  evaluations and errors (a missing placeholder before a syntax error, as moto looks it up first);
- dynamodb_item_sizes: the 400 KB item limit - the same values taken and refused, of every type;
- request_routing: the backend serving a host name looked up once - same answers as moto's lookup;
- sqs_poller's wake-up: SendMessage and SendMessageBatch wake the poller (moto's batch goes through
  SendMessage; if an upgrade changes that, this fails);
- stepfunctions: a task's client is reused for the same role keys;
- stepfunctions_parsing: a definition's parse tree and a JSONPath built once per text - same outputs and
  histories as moto's (checked with the patches out), and a new program per execution;
- sqs_queue_scans: a queue's attribute map and the retention check - same answers as moto's for visible,
  in-flight and delayed messages and for expired ones;
- request_routing's method list: the same action methods as moto lists, once per class.
"""
from __future__ import annotations

import copy
import json
import threading
import time
from contextlib import contextmanager
from unittest.mock import ANY

import pytest
from botocore.exceptions import ClientError

from sdlf_cli.local.cfn import _patching
from sdlf_cli.local.runtime import (dynamodb_expressions, dynamodb_item_sizes, dynamodb_update_plans, install, request_routing, sqs_poller,
                                    sqs_queue_scans, stepfunctions, stepfunctions_parsing)
from tests.integration.test_emulator_runtime_helpers import client, role_arn, unique, wait_for


@contextmanager
def _patches_out(module, names=()):
    """moto as it ships, for the block: the module's patches uninstalled (and checked gone), then put back."""
    module.uninstall()
    try:
        assert not any(name in _patching.installed_names() for name in names)
        yield
    finally:
        module.install()


@pytest.fixture(scope="module", autouse=True)
def runtime(emulator):
    install(emulator.context)


@contextmanager
def _update_patches_out():
    """moto's UpdateItem as it ships: the expression, planned-validation and item-size patches out."""
    names = [dynamodb_update_plans.INIT_PATCH, dynamodb_update_plans.VALIDATE_PATCH, dynamodb_update_plans.CLAUSES_PATCH]
    with _patches_out(dynamodb_update_plans, names), _patches_out(dynamodb_expressions, _EXPRESSION_PATCHES), \
            _patches_out(dynamodb_item_sizes, [dynamodb_item_sizes.SIZE_PATCH]):
        yield


def _table(emulator, indexed: bool = False) -> str:
    """A table keyed on `id`; `indexed` adds a global index keyed on `idx` (S) and `idx_rank` (N), whose key
    attributes moto checks on every SET (type, empty string)."""
    name = unique("speed-table")
    extra = {}
    if indexed:
        extra = dict(GlobalSecondaryIndexes=[{
            "IndexName": "by-idx", "Projection": {"ProjectionType": "ALL"},
            "KeySchema": [{"AttributeName": "idx", "KeyType": "HASH"}, {"AttributeName": "idx_rank", "KeyType": "RANGE"}]}])
    client(emulator, "dynamodb").create_table(
        TableName=name, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}]
        + ([{"AttributeName": "idx", "AttributeType": "S"}, {"AttributeName": "idx_rank", "AttributeType": "N"}]
           if indexed else []),
        BillingMode="PAY_PER_REQUEST", **extra)
    return name


# Updates the lake makes (many SET actions, if_not_exists, list_append, REMOVE, conditions), then invalid ones.
_SETS = ", ".join(f"#a{i} = :a{i}" for i in range(12))
_NAMES = {f"#a{i}": f"attr{i}" for i in range(12)}
_VALUES = {f":a{i}": {"S": f"value {i}"} for i in range(12)}
VALID_UPDATES = [
    dict(UpdateExpression=f"SET {_SETS}", ExpressionAttributeNames=_NAMES, ExpressionAttributeValues=_VALUES,
         ConditionExpression="attribute_not_exists(id) OR #a1 <> :a0"),
    dict(UpdateExpression="SET lineage = list_append(if_not_exists(lineage, :empty), :new), #a0 = if_not_exists(#a0, :a1)"
                          " REMOVE #a2, #a3",
         ExpressionAttributeNames={"#a0": "attr0", "#a2": "attr2", "#a3": "attr3"},
         ExpressionAttributeValues={":empty": {"L": []}, ":new": {"L": [{"S": "s3://b/k"}]}, ":a1": {"S": "x"}}),
    dict(UpdateExpression="SET tally = if_not_exists(tally, :zero) + :one ADD labels :tag",
         ExpressionAttributeValues={":zero": {"N": "0"}, ":one": {"N": "1"}, ":tag": {"SS": ["t"]}}),
]
INVALID_UPDATES = [
    dict(UpdateExpression="SET a = :v SET b = :v", ExpressionAttributeValues={":v": {"S": "x"}}),  # two SET clauses
    dict(UpdateExpression="SET a = :v REMOVE c SET b = :v REMOVE d", ExpressionAttributeValues={":v": {"S": "x"}}),
    dict(UpdateExpression="SET a = :v, b = :v, a = :v", ExpressionAttributeValues={":v": {"S": "x"}}),  # overlap
    dict(UpdateExpression="SET a.b = :v, c = :v, a = :v", ExpressionAttributeValues={":v": {"S": "x"}}),
    dict(UpdateExpression="SET #x = :v, #y = :v", ExpressionAttributeNames={"#x": "same", "#y": "same"},
         ExpressionAttributeValues={":v": {"S": "x"}}),
    dict(UpdateExpression="SET id = :v", ExpressionAttributeValues={":v": {"S": "x"}}),  # the key
    dict(UpdateExpression="SET a = :missing", ExpressionAttributeValues={":v": {"S": "x"}}),
    dict(UpdateExpression="SET a = = :v", ExpressionAttributeValues={":v": {"S": "x"}}),  # does not parse
    dict(UpdateExpression="SET a = :v", ConditionExpression="a @ :v",  # a condition that does not split
         ExpressionAttributeValues={":v": {"S": "x"}}),
    dict(UpdateExpression="SET a = :v", ConditionExpression="attribute_exists(a) AND",  # nor parse
         ExpressionAttributeValues={":v": {"S": "x"}}),
]


def _outcomes(emulator) -> list:
    ddb = client(emulator, "dynamodb")
    table = _table(emulator)
    outcomes = []
    for n, update in enumerate(VALID_UPDATES * 2):  # twice: a new item, then the same text again on it
        ddb.update_item(TableName=table, Key={"id": {"S": f"row{n % len(VALID_UPDATES)}"}}, **update)
    for n in range(len(VALID_UPDATES)):
        outcomes.append(ddb.get_item(TableName=table, Key={"id": {"S": f"row{n}"}}, ConsistentRead=True)["Item"])
    for update in INVALID_UPDATES * 2:
        with pytest.raises(ClientError) as raised:
            ddb.update_item(TableName=table, Key={"id": {"S": "row0"}}, **update)
        outcomes.append((raised.value.response["Error"]["Code"], raised.value.response["Error"]["Message"]))
    return outcomes


_EXPRESSION_PATCHES = [
    dynamodb_expressions.PARSE_PATCH, dynamodb_expressions.TYPES_PATCH,
    dynamodb_expressions.ROOT_FIRST_PATCH.format("ActionCountValidator"),
    dynamodb_expressions.ROOT_FIRST_PATCH.format("OverlappingPathsValidator"),
    dynamodb_expressions.COPY_PATCH, dynamodb_expressions.TRAVERSE_PATCH, dynamodb_expressions.LEX_PATCH,
    dynamodb_expressions.CONDITION_PATCH, dynamodb_expressions.TEMPLATE_PATCH]


def test_update_items_and_errors_are_moto_s_own(emulator):
    names = _EXPRESSION_PATCHES + [dynamodb_update_plans.INIT_PATCH, dynamodb_update_plans.VALIDATE_PATCH,
                                   dynamodb_update_plans.CLAUSES_PATCH]
    assert all(name in _patching.installed_names() for name in names)
    patched = _outcomes(emulator)
    with _update_patches_out():
        original = _outcomes(emulator)
    assert patched == original
    assert patched[0]["attr11"] == {"S": "value 11"} and patched[1]["lineage"] == {"L": [{"S": "s3://b/k"}] * 2}
    assert patched[2]["tally"] == {"N": "2"}
    codes = [outcome[0] for outcome in patched[len(VALID_UPDATES):]]
    # A condition that does not split or parse is a 500 on moto 5.2.5 (AWS: ValidationException); same either way.
    expected = ["500" if "ConditionExpression" in update else "ValidationException" for update in INVALID_UPDATES]
    assert codes == expected * 2


# Errors of each of moto's update processors, then requests that two processors fail: the answer must be the
# error of the first in moto's order (overlap before key, key before values, values before functions, missing
# paths before index key types, `+` operands before empty index keys).
_V = {":v": {"S": "x"}}
ORDERED_ERRORS = [
    dict(UpdateExpression="SET idx = :n", ExpressionAttributeValues={":n": {"N": "1"}}),  # an index key's type
    dict(UpdateExpression="SET idx = :e", ExpressionAttributeValues={":e": {"S": ""}}),  # an empty index key
    dict(UpdateExpression="SET lineage = list_append(nothing_here, :l)", ExpressionAttributeValues={":l": {"L": []}}),
    dict(UpdateExpression="SET a = nothing_here"),
    dict(UpdateExpression="SET a = nothing_here + :one", ExpressionAttributeValues={":one": {"N": "1"}}),
    dict(UpdateExpression="SET a = :s + :one", ExpressionAttributeValues={":s": {"S": "x"}, ":one": {"N": "1"}}),
    dict(UpdateExpression="SET a = list_append(:s, :l)", ExpressionAttributeValues={":s": {"S": "x"}, ":l": {"L": []}}),
    dict(UpdateExpression="SET #undefined = :v", ExpressionAttributeValues=_V),  # a KeyError in moto: a 500
    dict(UpdateExpression="SET tally = if_not_exists(#undefined, :v)", ExpressionAttributeValues=_V),
    dict(UpdateExpression="SET a = :v", ExpressionAttributeNames={"#unused": "b"}, ExpressionAttributeValues=_V),
    dict(UpdateExpression="SET a = :v", ExpressionAttributeValues={**_V, ":unused": {"S": "y"}}),
    dict(UpdateExpression="SET deep.er.path = :v", ExpressionAttributeValues=_V),  # a parent that is not there
    dict(UpdateExpression="SET tally[0] = :v", ExpressionAttributeValues=_V),  # an index into a number
    dict(UpdateExpression="SET status = :v", ExpressionAttributeValues=_V),  # a reserved word
    dict(UpdateExpression="SET #k = :v", ExpressionAttributeNames={"#k": "id"}, ExpressionAttributeValues=_V),
    dict(UpdateExpression="REMOVE id"),
    dict(UpdateExpression="ADD tally :s", ExpressionAttributeValues={":s": {"S": "x"}}),
    dict(UpdateExpression="SET a = :v, a = :v REMOVE id", ExpressionAttributeValues=_V),
    dict(UpdateExpression="SET #k = :v, b = :missing", ExpressionAttributeNames={"#k": "id"}, ExpressionAttributeValues=_V),
    dict(UpdateExpression="SET a = :missing, b = list_append(nothing_here, :l)", ExpressionAttributeValues={":l": {"L": []}}),
    dict(UpdateExpression="SET idx = :n, a = nothing_here", ExpressionAttributeValues={":n": {"N": "1"}}),
    dict(UpdateExpression="SET a = if_not_exists(nothing_here, :n) + :s, idx = :e",
         ExpressionAttributeValues={":n": {"N": "1"}, ":s": {"S": "x"}, ":e": {"S": ""}}),
    dict(UpdateExpression="SET idx = :e, idx_rank = :s", ExpressionAttributeValues={":s": {"S": "x"}, ":e": {"S": ""}}),
    dict(UpdateExpression="SET big = :half, bigger = :half", ExpressionAttributeValues={":half": {"S": "x" * 210_000}}),
]


def _error_outcomes(emulator) -> list:
    ddb = client(emulator, "dynamodb")
    table = _table(emulator, indexed=True)
    ddb.put_item(TableName=table, Item={"id": {"S": "row"}, "tally": {"N": "1"}, "lineage": {"L": [{"S": "a"}]},
                                        "idx": {"S": "i"}, "idx_rank": {"N": "2"}})
    outcomes = []
    for key in ("row", "absent"):  # an existing item, and one the update would create
        for update in ORDERED_ERRORS:
            try:
                ddb.update_item(TableName=table, Key={"id": {"S": key}}, **update)
                outcomes.append("written")
            except ClientError as error:
                outcomes.append((error.response["Error"]["Code"], error.response["Error"]["Message"]))
    outcomes.append(sorted(ddb.scan(TableName=table)["Items"], key=lambda item: item["id"]["S"]))
    return outcomes


def test_update_errors_are_moto_s_first_error(emulator):
    patched = _error_outcomes(emulator)
    with _update_patches_out():
        original = _error_outcomes(emulator)
    assert patched == original
    answers = patched[:-1]
    expected = ["500" if "SET #undefined" in update["UpdateExpression"] else "ValidationException"
                for update in ORDERED_ERRORS]
    assert [answer[0] for answer in answers] == expected * 2
    assert len({message for _, message in answers}) >= 12  # each processor's own message, not one for all
    rows = {row["id"]["S"]: row for row in patched[-1]}
    assert rows["row"]["tally"] == {"N": "1"} and rows["row"]["idx"] == {"S": "i"}  # nothing written by a failed update


def _lake_outcomes(emulator) -> list:
    """The lake's own catalog and execution writes (their update expressions, conditions and names)."""
    from datetime import datetime, timezone

    from sdlf_datalake.catalog import CatalogRepository, DoneElsewhere, Status
    from sdlf_datalake.events import S3ObjectEvent
    from sdlf_datalake.executions import ExecutionsRepository

    ddb = client(emulator, "dynamodb")
    clock = lambda: datetime(2026, 11, 26, 8, 0, tzinfo=timezone.utc)  # noqa: E731 - rows comparable across runs
    catalog = CatalogRepository(_table(emulator), ddb, clock)
    executions = ExecutionsRepository(_table(emulator), ddb, clock)
    key = "engineering/legislators/persons.json"
    raw, staged = f"s3://raw/{key}", f"s3://stage/pre-stage/{key}"

    def event(n: int, bucket: str, object_key: str, etag: str | None, detail: str = "Object Created") -> S3ObjectEvent:
        return S3ObjectEvent(event_id=f"e{n}", detail_type=detail, time=f"2026-11-26T08:00:0{n}.000Z", bucket=bucket,
                             key=object_key, sequencer=f"{n:016X}", size=10 * n, etag=etag, version_id=None,
                             reason="PutObject" if etag else "DeleteObject")

    done = DoneElsewhere(execution_attr="execution", execution="x2", etag_attr="etag", etag="e1")
    outcomes = [
        catalog.record_created(event(1, "raw", key, "e1"), "raw"),  # a new row: RECEIVED
        catalog.record_created(event(1, "raw", key, "e1"), "raw"),  # the same event again: STALE
        executions.start("x1", "engineering-legislators", "A", 1, extra={"pipeline": "main"}),
        catalog.set_status(raw, Status.RUNNING, stage="raw", extra={"execution": "x1"}),
        catalog.set_status(staged, Status.PROCESSED, stage="stage", etag="o1", extra={"execution": "x1"}),
        catalog.add_lineage(staged, [raw]),  # one conditional append
        catalog.add_lineage(staged, [raw]),  # held already: the append's condition fails
        catalog.add_lineage(staged, [raw, "s3://raw/other"]),  # read, then a write conditional on what was read
        catalog.set_status(raw, Status.PROCESSED, stage="raw", etag="e1", extra={"execution": "x1"}),
        executions.succeed("x1", 1, 10),
        catalog.record_created(event(2, "stage", f"pre-stage/{key}", "o1"), "stage"),  # the row a stage wrote
        catalog.set_status(raw, Status.FAILED, "boom", unless_done=done),  # PROCESSED by x1 for e1: not written
        catalog.record_deleted(event(3, "raw", key, None, detail="Object Deleted"), "raw"),
        catalog.set_status(raw, Status.RUNNING),  # a DELETED row: not written
        executions.fail("x2", "boom", dataset_id="engineering-legislators", stage="A"),
        catalog.set_status(f"{staged}.2", Status.PROCESSED, stage="stage", etag="o2",
                           extra={"execution": "x1", "lineage": [raw]}),  # the lineage in the status write
        catalog.set_lineage(staged, [raw]),
    ]
    return outcomes + [catalog.get(raw), catalog.get(staged), executions.get("x1"), executions.get("x2"),
                       catalog.get(f"{staged}.2")]


def test_the_lake_s_writes_leave_moto_s_rows(emulator):
    patched = _lake_outcomes(emulator)
    with _update_patches_out():
        original = _lake_outcomes(emulator)
    assert patched == original
    assert [str(o) for o in patched[:2]] == [str(o) for o in original[:2]]
    raw_row, staged_row, finished, failed, second = patched[-5:]
    assert raw_row["status"] == "DELETED" and staged_row["lineage"] == ["s3://raw/engineering/legislators/persons.json"]
    assert second["status"] == "PROCESSED" and second["lineage"] == staged_row["lineage"]
    assert patched[11] is False and patched[13] is False  # the conditions that must fail did
    assert finished["status"] == "SUCCEEDED" and failed["status"] == "FAILED" and failed["error"] == "boom"


def _validated(table, item, expression: str, names: dict, values: dict):
    """moto's UpdateExpressionValidator on its own: the validated tree's shape, or the error it raised."""
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser
    from moto.dynamodb.parsing.validators import UpdateExpressionValidator

    try:
        tree = UpdateExpressionValidator(UpdateExpressionParser.make(expression), expression_attribute_names=names,
                                         expression_attribute_values=values, item=copy.deepcopy(item),
                                         table=table).validate()
    except Exception as error:  # noqa: BLE001 - the error is the answer compared
        return (type(error).__name__, str(error))
    return _tree_shape(tree)


_TREES = [
    ("SET #status = :status, updated_at = :now, created_at = if_not_exists(created_at, :now),"
     " #bucket = if_not_exists(#bucket, :bucket), team = if_not_exists(team, :team) REMOVE reason"),
    "SET lineage = list_append(if_not_exists(lineage, :empty), :new), updated_at = :now",
    "SET tally = if_not_exists(tally, :zero) + :one, m.leaf = :now, l[1] = :now, l[7] = :now ADD labels :tags",
    "SET tally = tally - :one, lineage = list_append(:new, lineage) DELETE labels :tags REMOVE m.leaf, l[0]",
    "SET tally = :one + :one, nested = if_not_exists(m.leaf, :bucket)",
]


def test_a_planned_validation_is_moto_s_tree(emulator):
    from moto.dynamodb.models import DynamoType, Item, dynamodb_backends
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    backend = dynamodb_backends[emulator.context.account_id][emulator.context.region]
    table = backend.get_table(_table(emulator, indexed=True))
    names = {"#status": "status", "#bucket": "bucket"}
    values = {":status": {"S": "RUNNING"}, ":now": {"S": "2026"}, ":bucket": {"S": "raw"}, ":team": {"S": "eng"},
              ":empty": {"L": []}, ":new": {"L": [{"S": "s3://b/k"}]}, ":zero": {"N": "0"}, ":one": {"N": "1"},
              ":tags": {"SS": ["t"]}}
    row = {"tally": {"N": "4"}, "lineage": {"L": [{"S": "s3://b/a"}]}, "m": {"M": {"leaf": {"S": "i"}}},
           "l": {"L": [{"S": "0"}, {"S": "1"}]}, "labels": {"SS": ["t", "u"]}, "created_at": {"S": "2025"}}
    items = [Item(DynamoType({"S": "new"}), None, {}), Item(DynamoType({"S": "row"}), None, row)]
    cases = [(text, item) for text in _TREES for item in items]
    patched = [_validated(table, item, text, names, {k: v for k, v in values.items() if k in text}) for text, item in cases]
    trees = [UpdateExpressionParser.make(text) for text in _TREES]
    assert all(dynamodb_update_plans._plans[id(tree)] == (tree, ANY) for tree in trees)
    assert all(dynamodb_update_plans._plans[id(tree)][1] is not None for tree in trees)  # validated from its plan
    with _update_patches_out():
        original = [_validated(table, item, text, names, {k: v for k, v in values.items() if k in text})
                    for text, item in cases]
    assert patched == original
    # On the item that holds them the paths resolve: every expression validates there (errors are compared above).
    assert [shape[0] for shape in patched[1::2]] == ["UpdateExpression"] * len(_TREES), patched[1::2]


def _op_shape(value) -> object:
    """A parsed condition as nested tuples: each object's class and attributes."""
    if isinstance(value, (list, tuple)):
        return [_op_shape(v) for v in value]
    if hasattr(value, "__dict__"):
        return (type(value).__name__, {k: _op_shape(v) for k, v in sorted(vars(value).items())})
    return repr(value)


_NEWER = ("(attribute_not_exists(sequencer) OR sequencer < :seq OR (sequencer = :seq AND (attribute_not_exists(event_time)"
          " OR event_time < :etime OR (event_time = :etime AND (attribute_not_exists(event_fingerprint)"
          " OR event_fingerprint <> :fingerprint)))))")
_CONDITIONS = [  # the lake's conditions, then each form of moto's grammar
    f"{_NEWER} AND (attribute_not_exists(#status) OR #status = :deleted OR (attribute_exists(etag) AND NOT (etag = :etag)))",
    f"attribute_exists(id) AND {_NEWER}",
    "attribute_not_exists(#status) OR #status <> :deleted",
    "attribute_not_exists(#status) OR (#status <> :deleted AND NOT (#status = :processed"
    " AND #done_etag = :done_etag AND #done_execution <> :done_execution))",
    "attribute_not_exists(lineage) OR NOT contains(lineage, :source)",
    "size(lineage) < :n AND begins_with(#status, :p) AND attribute_type(sequencer, :t)",
    "sequencer BETWEEN :seq AND :etime OR #status IN (:deleted, :processed) OR m.leaf = :p OR lineage[0] = :source",
    "#status.#done_etag <> :p",
    "attribute_exists(id) AND",  # does not parse
    "sequencer = :missing",  # a value that is not there
    "#missing = :seq",
    "#missing = :seq AND",  # a missing name before a syntax error: moto looks the name up first
    "status = :seq",  # a reserved word
    "((sequencer = :seq))",  # redundant parentheses
    "sequencer @ :seq",  # does not split into tokens
    "contains(:seq)",
]


def _conditions_parsed(items) -> list:
    from moto.dynamodb.comparisons import ConditionExpressionParser

    names = {"#status": "status", "#done_etag": "etag", "#done_execution": "execution"}
    values = {":seq": {"S": "0001"}, ":etime": {"S": "2026"}, ":fingerprint": {"S": "f"}, ":deleted": {"S": "DELETED"},
              ":etag": {"S": "e1"}, ":processed": {"S": "PROCESSED"}, ":done_etag": {"S": "e1"},
              ":done_execution": {"S": "x2"}, ":source": {"S": "s3://raw/k"}, ":n": {"N": "2"}, ":p": {"S": "PRO"},
              ":t": {"S": "S"}}
    answers = []
    for text in _CONDITIONS:
        for request_names, request_values in ((names, values), (dict(names), {**values, ":seq": {"S": "0003"}}),
                                              (None, values)):
            parser = ConditionExpressionParser(text, request_names and dict(request_names), dict(request_values))
            try:
                op = parser.parse()
            except Exception as error:  # noqa: BLE001 - the error is the answer compared
                answers.append((type(error).__name__, str(error)))
                continue
            answers.append((_op_shape(op), parser.expr_attr_names_found, parser.expr_attr_values_found,
                            [_evaluated(op, item) for item in items]))
    return answers


def _evaluated(op, item) -> object:
    try:
        return op.expr(item)
    except Exception as error:  # noqa: BLE001 - e.g. size() of a missing attribute: moto's error is the answer
        return (type(error).__name__, str(error))


def test_a_condition_is_moto_s_condition_from_its_text_s_syntax_worked_out_once():
    from moto.dynamodb.models import DynamoType, Item

    assert dynamodb_expressions.TEMPLATE_PATCH in _patching.installed_names()
    rows = [{}, {"status": {"S": "DELETED"}, "sequencer": {"S": "0002"}},
            {"status": {"S": "PROCESSED"}, "etag": {"S": "e1"}, "execution": {"S": "x1"}, "sequencer": {"S": "0001"},
             "event_time": {"S": "2026"}, "lineage": {"L": [{"S": "s3://raw/k"}]}, "m": {"M": {"leaf": {"S": "PRO"}}}}]
    items = [None] + [Item(DynamoType({"S": "k"}), None, row) for row in rows]
    patched = _conditions_parsed(items)
    again = _conditions_parsed(items)  # from the syntax worked out by the first
    with _patches_out(dynamodb_expressions, _EXPRESSION_PATCHES):
        original = _conditions_parsed(items)
    assert patched == again == original
    parsed = [answer for answer in patched if isinstance(answer[1], list)]
    assert len(parsed) == 8 * 2 + 2  # without names, only the two texts with no #name parse
    assert {answer[0] for answer in patched if not isinstance(answer[1], list)} >= {
        "KeyError", "ValueError", "TypeError", "ConditionAttributeIsReservedKeyword", "InvalidConditionExpression"}
    # The lake's newer-event condition: no row, an empty row, a newer row, the same content again.
    assert patched[0][3] == [True, True, False, False]


def test_a_remembered_tree_s_clauses_are_moto_s():
    from moto.dynamodb.parsing import ast_nodes
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    assert dynamodb_update_plans.CLAUSES_PATCH in _patching.installed_names()
    tree = UpdateExpressionParser.make("SET #a = :v, b = if_not_exists(#b, :w) ADD c :x")
    kinds = [[ast_nodes.ExpressionAttributeName], [ast_nodes.ExpressionAttributeValue], [ast_nodes.UpdateExpressionPath],
             [ast_nodes.UpdateExpressionSetAction, ast_nodes.UpdateExpressionAddAction]]
    patched = [tree.find_clauses(kind) for kind in kinds + kinds]  # the second time from what the first found
    patched[0].append("a caller's own list")
    with _patches_out(dynamodb_update_plans):
        original = [tree.find_clauses(kind) for kind in kinds + kinds]
    assert patched[0][:-1] == original[0] and patched[1:] == original[1:]
    assert all(a is b for a, b in zip(patched[6], original[6]))  # the tree's own nodes
    assert [len(found) for found in original[:4]] == [2, 3, 4, 3] and tree.find_clauses(kinds[0]) == original[0]


_SIZED_VALUES = [{"S": "é" * 10}, {"N": "123.45"}, {"B": b"\x00\x01"}, {"BOOL": True}, {"NULL": True},
                 {"SS": ["a", "bé"]}, {"NS": ["1", "22"]}, {"BS": [b"x"]}, {"L": [{"S": "a"}, {"N": "1"}]},
                 {"M": {"k": {"S": "v"}, "n": {"M": {"x": {"BOOL": False}}}}}]


def _sizes_checked() -> list:
    """Values of every type set one after the other on items near moto's limit: which ones it takes."""
    from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict

    answers = []
    for filler in (404_930, 404_950, 404_970, 404_990):  # each crosses the limit at another type
        attrs = LimitedSizeDict()
        attrs["filler"] = DynamoType({"S": "x" * filler})
        for n, value in enumerate(_SIZED_VALUES):
            try:
                attrs[f"a{n}"] = DynamoType(value)
                answers.append(sorted(attrs))
            except Exception as error:  # noqa: BLE001 - moto's error is the answer
                answers.append((type(error).__name__, str(error)))
        try:
            attrs["plain"] = "not a DynamoType"
            answers.append(sorted(attrs))
        except Exception as error:  # noqa: BLE001
            answers.append((type(error).__name__, str(error)))
    return answers


def test_an_item_s_size_limit_is_moto_s():
    assert dynamodb_item_sizes.SIZE_PATCH in _patching.installed_names()
    patched = _sizes_checked()
    with _patches_out(dynamodb_item_sizes, [dynamodb_item_sizes.SIZE_PATCH]):
        original = _sizes_checked()
    assert patched == original
    refused = [answer for answer in patched if isinstance(answer, tuple)]
    assert refused and len(refused) < len(patched)  # some values fit under the limit, the rest do not
    assert {name for name, _ in refused} == {"ItemSizeTooLarge"}


def test_an_expression_text_is_parsed_once_and_the_tree_is_left_as_parsed(emulator):
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    text = f"SET {_SETS}"
    tree = UpdateExpressionParser.make(text)
    printed = repr([type(node).__name__ for node in tree.find_clauses([type(tree.children[0])])])
    ddb = client(emulator, "dynamodb")
    ddb.update_item(TableName=_table(emulator), Key={"id": {"S": "r"}}, UpdateExpression=text,
                    ExpressionAttributeNames=_NAMES, ExpressionAttributeValues=_VALUES)
    assert UpdateExpressionParser.make(text) is tree
    assert repr([type(node).__name__ for node in tree.find_clauses([type(tree.children[0])])]) == printed


def _tree_shape(node, parent=None) -> tuple:
    """A syntax tree as nested tuples (class, children), checking every parent link on the way."""
    from moto.dynamodb.parsing.ast_nodes import Node

    if not isinstance(node, Node):
        return (type(node).__name__, repr(node))
    assert node.parent is parent or parent is None
    children = None if node.children is None else tuple(_tree_shape(child, node) for child in node.children)
    return (type(node).__name__, node.type, children)


def _tree_nodes(node) -> list:
    from moto.dynamodb.parsing.ast_nodes import Node

    if not isinstance(node, Node):
        return []
    return [node] + [n for child in node.children or [] for n in _tree_nodes(child)]


def test_a_syntax_tree_is_deep_copied_as_deepcopy_copies_it():
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    assert dynamodb_expressions.COPY_PATCH in _patching.installed_names()
    text = ("SET #a = :a, b = if_not_exists(b, :b), c.d[2] = :c + :d, e = list_append(e, :l) "
            "REMOVE x, y[1] ADD n :one DELETE s :s")
    tree = UpdateExpressionParser.make(text)
    patched, from_inside = copy.deepcopy(tree), copy.deepcopy(tree.children[0])
    with _patches_out(dynamodb_expressions):
        assert dynamodb_expressions.COPY_PATCH not in _patching.installed_names()
        original, original_inside = copy.deepcopy(tree), copy.deepcopy(tree.children[0])
    assert _tree_shape(patched) == _tree_shape(original) == _tree_shape(tree)
    assert not {id(n) for n in _tree_nodes(patched)} & {id(n) for n in _tree_nodes(tree)}  # nothing shared
    # A node copied from inside the tree brings a copy of the whole tree along, as deepcopy's does.
    assert _tree_shape(from_inside.parent) == _tree_shape(original_inside.parent) == _tree_shape(tree)
    assert from_inside.parent is not tree and from_inside in from_inside.parent.children


# Pass states only (no Lambda): Parameters with paths and an intrinsic, ResultPath into the input, a Choice.
_DEFINITION = json.dumps({
    "StartAt": "Shape",
    "States": {
        "Shape": {"Type": "Pass", "Parameters": {"key.$": "$.object.key", "size.$": "$.object.size",
                                                 "label.$": "States.Format('{}-{}', $.object.key, $.n)"},
                  "ResultPath": "$.shaped", "Next": "Big?"},
        "Big?": {"Type": "Choice", "Choices": [{"Variable": "$.shaped.size", "NumericGreaterThan": 10,
                                                "Next": "Big"}], "Default": "Small"},
        "Big": {"Type": "Pass", "Result": {"big": True}, "ResultPath": "$.verdict", "Next": "Done"},
        "Small": {"Type": "Pass", "Result": {"big": False}, "ResultPath": "$.verdict", "Next": "Done"},
        "Done": {"Type": "Pass", "OutputPath": "$.shaped", "End": True},
    },
})


def _executions(emulator, machine: str) -> list:
    sfn = client(emulator, "stepfunctions")
    arns = [sfn.start_execution(stateMachineArn=machine, input=json.dumps({"object": {"key": f"k{n}", "size": n * 7}, "n": n}))
            ["executionArn"] for n in range(3)]
    outcomes = []
    for arn in arns:
        described = wait_for(lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d,
                             what="the execution to end")
        events = sfn.get_execution_history(executionArn=arn)["events"]
        outcomes.append((described["status"], json.loads(described["output"]),
                         [(e["type"], (e.get("stateEnteredEventDetails") or {}).get("name")) for e in events]))
    return outcomes


def test_step_functions_parse_once_and_run_as_moto_runs(emulator):
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    names = [stepfunctions_parsing.DEFINITION_PATCH,
             *(stepfunctions_parsing.JSONPATH_PATCH.format(m.rsplit(".", 1)[-1]) for m in stepfunctions_parsing.JSONPATH_MODULES)]
    assert all(name in _patching.installed_names() for name in names)
    machine = client(emulator, "stepfunctions").create_state_machine(
        name=unique("parsed-once"), definition=_DEFINITION, roleArn=role_arn(emulator))["stateMachineArn"]
    patched = _executions(emulator, machine)
    first_program, first_tree = AmazonStateLanguageParser.parse(_DEFINITION)
    second_program, second_tree = AmazonStateLanguageParser.parse(_DEFINITION)
    assert second_tree is first_tree and second_program is not first_program  # one tree, a program per execution
    with _patches_out(stepfunctions_parsing, names):
        original = _executions(emulator, machine)
    assert patched == original
    assert [o[1] for o in patched] == [{"key": "k0", "size": 0, "label": "k0-0"}, {"key": "k1", "size": 7, "label": "k1-1"},
                                       {"key": "k2", "size": 14, "label": "k2-2"}]
    assert ("PassStateEntered", "Big") in patched[2][2] and ("PassStateEntered", "Small") in patched[1][2]


def test_a_remembered_tree_s_node_texts_are_antlr_s():
    from antlr4.RuleContext import RuleContext
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    assert stepfunctions_parsing.TEXT_PATCH in _patching.installed_names()
    antlr_get_text = _patching._installed[stepfunctions_parsing.TEXT_PATCH].original
    _, tree = AmazonStateLanguageParser.parse(_DEFINITION)
    pending, checked = [tree], 0
    while pending:
        node = pending.pop()
        if isinstance(node, RuleContext):
            assert id(node) in stepfunctions_parsing._texts
            assert node.getText() == antlr_get_text(node)
            checked += 1
            pending.extend(getattr(node, "children", None) or ())
    assert checked > 50 and tree.getText() == antlr_get_text(tree)


def test_executions_parsing_one_new_definition_at_once_keep_one_tree_and_only_its_texts():
    # Executions a restart resumes parse the same new definition at once. Texts are remembered by node id, so
    # the texts of a tree that is not kept would outlive it and answer for whatever object reuses its ids.
    from antlr4.RuleContext import RuleContext
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    definition = _DEFINITION.replace("k", "concurrent-k")
    assert definition != _DEFINITION
    barrier, trees = threading.Barrier(6), []

    def parse() -> None:
        barrier.wait()
        trees.append(AmazonStateLanguageParser.parse(definition)[1])

    threads = [threading.Thread(target=parse) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(trees) == 6 and all(tree is trees[0] for tree in trees)
    kept: set[int] = set()
    for tree in stepfunctions_parsing._trees.values():
        pending = [tree]
        while pending:
            node = pending.pop()
            if isinstance(node, RuleContext):
                kept.add(id(node))
                pending.extend(getattr(node, "children", None) or ())
    assert set(stepfunctions_parsing._texts) <= kept


def test_a_condition_is_parsed_once_for_the_same_request_only():
    from moto.dynamodb.comparisons import ConditionExpressionParser

    text = "attribute_not_exists(#s) OR (#s <> :done AND size(#l) < :n)"
    names, values = {"#s": "status", "#l": "lines"}, {":done": {"S": "DONE"}, ":n": {"N": "3"}}
    first, second = ConditionExpressionParser(text, names, values), ConditionExpressionParser(text, names, values)
    op = first.parse()
    assert second.parse() is op  # the backend's parse of the handler's very request
    assert (second.expr_attr_names_found, second.expr_attr_values_found) == (first.expr_attr_names_found,
                                                                             first.expr_attr_values_found)
    third = ConditionExpressionParser(text, names, values)
    assert third.parse() is not op  # once only
    fourth = ConditionExpressionParser(text, dict(names), values)
    assert fourth.parse() is not op  # equal names, but not the same request's
    assert repr(fourth.parse()) == repr(op) and fourth.expr_attr_names_found[:2] == first.expr_attr_names_found[:2]


def test_a_definition_that_does_not_parse_raises_moto_s_error_every_time():
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser, ASLParserException

    for _ in range(2):
        with pytest.raises(ASLParserException):
            AmazonStateLanguageParser.parse('{"StartAt": "A", "States": {"A": {"Type": "Nope"}}}')


def _queue_answers(emulator) -> list:
    from moto.sqs.models import sqs_backends

    sqs = client(emulator, "sqs")
    backend = sqs_backends[emulator.context.account_id][emulator.context.region]
    url = sqs.create_queue(QueueName=unique("scans"), Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    name = url.rsplit("/", 1)[-1]
    for n in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=f"visible {n}")
    sqs.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=60)
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=60)["Messages"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    for volatile in ("CreatedTimestamp", "LastModifiedTimestamp", "QueueArn"):
        attributes.pop(volatile)
    queue = backend.get_queue(name)
    fresh = queue._messages[0]
    expired = copy.copy(fresh)
    expired.sent_timestamp = int((time.time() - 61) * 1000)
    return [attributes, len(received),
            backend.is_message_valid_based_on_retention_period(name, fresh),
            backend.is_message_valid_based_on_retention_period(name, expired),
            sorted(queue.attributes)]


def test_queue_attributes_and_retention_are_moto_s_answers(emulator):
    names = [sqs_queue_scans.RETENTION_PATCH, sqs_queue_scans.ATTRIBUTES_PATCH]
    assert all(name in _patching.installed_names() for name in names)
    patched = _queue_answers(emulator)
    with _patches_out(sqs_queue_scans, names):
        original = _queue_answers(emulator)
    assert patched == original
    attributes = patched[0]
    assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"],
            attributes["ApproximateNumberOfMessagesDelayed"]) == ("3", "2", "1")
    assert patched[2:4] == [True, False]


def test_action_methods_are_listed_as_moto_lists_them():
    from moto.core import responses
    from moto.dynamodb.responses import DynamoHandler
    from moto.sqs.responses import SQSResponse

    assert request_routing.METHODS_PATCH in _patching.installed_names()
    patched = [responses.method_names_from_class(cls) for cls in (DynamoHandler, SQSResponse, DynamoHandler)]
    patched[0].append("not_an_action")  # a caller's list is its own
    with _patches_out(request_routing):
        original = [responses.method_names_from_class(cls) for cls in (DynamoHandler, SQSResponse, DynamoHandler)]
    assert patched[1:] == original[1:] and patched[0][:-1] == original[0]
    assert "update_item" in original[0] and "receive_message" in original[1]


def test_request_routing_answers_as_moto_and_comes_out_again(emulator):
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    assert request_routing.PATCH_NAME in _patching.installed_names()
    remembered = DomainDispatcherApplication.__dict__["get_backend_for_host"]
    hosts = [None, "moto_api", "dynamodb", "s3.us-east-1.amazonaws.com", "sqs.us-east-1.amazonaws.com",
             "states.us-east-1.amazonaws.com", "lambda.us-east-1.amazonaws.com", "nothing.example"]
    dispatcher = DomainDispatcherApplication(create_app=lambda backend: None)
    patched = [dispatcher.get_backend_for_host(h) for h in hosts] * 2
    with _patches_out(request_routing):
        assert DomainDispatcherApplication.__dict__["get_backend_for_host"] is not remembered
        original = [dispatcher.get_backend_for_host(h) for h in hosts] * 2
    assert patched == original
    assert client(emulator, "sqs").list_queues() is not None  # the server still routes


def test_send_message_and_send_message_batch_wake_the_poller(emulator):
    from moto.sqs.models import sqs_backends

    assert sqs_poller.WAKE_PATCH in _patching.installed_names()
    sqs = client(emulator, "sqs")
    url = sqs.create_queue(QueueName=unique("wake"))["QueueUrl"]
    backend = sqs_backends[emulator.context.account_id][emulator.context.region]
    woken = threading.Event()
    sqs_poller._wakers.append(woken)
    try:
        backend.send_message(url.rsplit("/", 1)[-1], "direct")
        assert woken.is_set()
        woken.clear()
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "1", "MessageBody": "batched"}])
        assert woken.is_set()
    finally:
        sqs_poller._wakers.remove(woken)


def test_step_functions_tasks_reuse_one_client_per_role_keys(emulator):
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    from tests.integration.test_emulator_runtime_helpers import role_arn

    class Credentials:
        def __init__(self, role: str):
            self.role_arn = role

    one, other = Credentials(role_arn(emulator)), Credentials(role_arn(emulator))
    boto_client_for = lambda_eval_utils.boto_client_for  # the named patch of this interpreter module
    first = boto_client_for(region="us-east-1", service="lambda", state_credentials=one)
    assert boto_client_for(region="us-east-1", service="lambda", state_credentials=one) is first
    second = boto_client_for(region="us-east-1", service="lambda", state_credentials=other)
    assert second is not first
    assert first.meta.endpoint_url == f"http://localhost:{emulator.context.port}"
    keys = first._request_signer._credentials.get_frozen_credentials()
    assert keys.access_key != "ak" and keys.token  # the role's assumed-role keys, not moto's fixed ones
    assert stepfunctions.MAX_CACHED_CLIENTS >= 2


def test_a_remembered_tree_is_copied_whole_as_deepcopy_copies_it():
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    tree = UpdateExpressionParser.make(f"SET {_SETS} REMOVE gone")  # remembered by the parse patch
    assert id(tree) in dynamodb_expressions._pickled
    patched = copy.deepcopy(tree)
    with _patches_out(dynamodb_expressions):
        original = copy.deepcopy(tree)
    assert _tree_shape(patched) == _tree_shape(original) == _tree_shape(tree)
    assert not {id(n) for n in _tree_nodes(patched)} & {id(n) for n in _tree_nodes(tree)}
