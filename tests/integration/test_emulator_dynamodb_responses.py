"""DynamoDB answers written with json.dumps are byte for byte moto's, and the patch comes out again
(sdlf_cli/local/runtime/dynamodb_responses.py)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from botocore.exceptions import ClientError

from sdlf_cli.local.cfn import _patching
from sdlf_cli.local.runtime import dynamodb_responses, install
from tests.integration.test_emulator_runtime_helpers import client, unique


@pytest.fixture(scope="module", autouse=True)
def runtime(emulator):
    install(emulator.context)


# One attribute of every type, nested ones included; the binary ones go moto's way.
PLAIN_ROW = {
    "id": {"S": "plain"}, "status": {"S": "PROCESSED"}, "records": {"N": "100"}, "ratio": {"N": "0.25"},
    "tags": {"SS": ["a", "b"]}, "sizes": {"NS": ["1", "2"]}, "flag": {"BOOL": True}, "none": {"NULL": True},
    "lineage": {"L": [{"S": "s3://raw/t/d/a.json"}, {"M": {"deep": {"L": [{"N": "1"}]}}}]},
    "meta": {"M": {"k": {"S": "v"}, "empty": {"L": []}}}, "text": {"S": "quotes \" and unicode é ✓"},
}
BINARY_ROW = {"id": {"S": "binary"}, "blob": {"B": b"\x00\x01bytes"}, "blobs": {"BS": [b"x", b"y"]}}


def _answers(emulator) -> list[tuple]:
    """(operation, HTTP status, body) of the lake's kinds of DynamoDB calls, the errors included."""
    ddb = client(emulator, "dynamodb")
    seen: list[tuple] = []

    def record(http_response=None, model=None, **_):
        seen.append((model.name, http_response.status_code, http_response.content))

    ddb.meta.events.register("after-call.dynamodb", record)
    table = unique("answers")
    ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    ddb.put_item(TableName=table, Item=PLAIN_ROW)
    ddb.put_item(TableName=table, Item=BINARY_ROW, ReturnConsumedCapacity="TOTAL")
    for key in ("plain", "binary", "absent"):
        ddb.get_item(TableName=table, Key={"id": {"S": key}}, ConsistentRead=True)
    ddb.get_item(TableName=table, Key={"id": {"S": "plain"}}, ProjectionExpression="#s, records",
                 ExpressionAttributeNames={"#s": "status"})
    ddb.batch_get_item(RequestItems={table: {"Keys": [{"id": {"S": "plain"}}, {"id": {"S": "absent"}}],
                                             "ConsistentRead": True}})
    ddb.batch_get_item(RequestItems={table: {"Keys": [{"id": {"S": "binary"}}]}})
    ddb.update_item(TableName=table, Key={"id": {"S": "plain"}}, UpdateExpression="SET records = :r",
                    ExpressionAttributeValues={":r": {"N": "7"}})
    ddb.update_item(TableName=table, Key={"id": {"S": "plain"}}, ReturnValues="ALL_NEW",
                    UpdateExpression="SET lineage = list_append(if_not_exists(lineage, :e), :n)",
                    ExpressionAttributeValues={":e": {"L": []}, ":n": {"L": [{"S": "s3://raw/t/d/b.json"}]}})
    ddb.update_item(TableName=table, Key={"id": {"S": "plain"}}, ReturnValues="UPDATED_OLD",
                    UpdateExpression="SET flag = :f", ExpressionAttributeValues={":f": {"BOOL": False}},
                    ReturnConsumedCapacity="TOTAL")
    ddb.scan(TableName=table)
    ddb.query(TableName=table, KeyConditionExpression="id = :i", ExpressionAttributeValues={":i": {"S": "plain"}})
    ddb.describe_table(TableName=table)
    ddb.delete_item(TableName=table, Key={"id": {"S": "binary"}}, ReturnValues="ALL_OLD")
    for call in (
        lambda: ddb.update_item(TableName=table, Key={"id": {"S": "plain"}}, UpdateExpression="SET records = :r",
                                ConditionExpression="attribute_not_exists(id)",
                                ExpressionAttributeValues={":r": {"N": "8"}}),
        lambda: ddb.get_item(TableName=unique("missing"), Key={"id": {"S": "x"}}),
    ):
        with pytest.raises(ClientError):
            call()
    ddb.meta.events.unregister("after-call.dynamodb", record)
    # The table's name and creation time differ between the two runs: the same table is not made twice.
    return [(op, status, body.replace(table.encode(), b"TABLE")) for op, status, body in seen]


def test_answers_are_moto_s_byte_for_byte_and_the_patch_comes_out(emulator):
    assert dynamodb_responses.PATCH_NAME in _patching.installed_names()
    patched = _answers(emulator)
    dynamodb_responses.uninstall()
    try:
        assert dynamodb_responses.PATCH_NAME not in _patching.installed_names()
        original = _answers(emulator)
    finally:
        dynamodb_responses.install()
    assert [(op, status) for op, status, _ in patched] == [(op, status) for op, status, _ in original]
    for (op, _, mine), (_, _, moto_s) in zip(patched, original):
        if op in ("CreateTable", "DescribeTable"):
            continue  # the table's creation time is its own; moto's path either way (a float, a datetime)
        assert mine == moto_s, op
    bodies = {op: body for op, _, body in patched}
    assert b'"text": {"S": "quotes \\" and unicode \\u00e9 \\u2713"}' in bodies["Scan"]


def test_only_json_without_binary_values_takes_the_short_path():
    plain = dynamodb_responses.plain
    assert plain({"Item": PLAIN_ROW, "Count": 1, "Responses": {"t": [PLAIN_ROW]}})
    assert not plain({"Item": {"blob": {"B": "AAE="}}})
    assert not plain({"Item": {"blobs": {"BS": ["eA=="]}}})
    assert not plain({"ConsumedCapacity": {"CapacityUnits": 1.0}})
    assert not plain({"Table": {"CreationDateTime": datetime.now(timezone.utc)}})
    assert not plain({"Item": {"raw": b"bytes"}})
    assert not plain({"LastEvaluatedKey": None})


class _Handler:
    """What the patch reads of moto's DynamoHandler."""

    def __init__(self, action: str):
        self.action, self.response_headers = action, {"x-amz-crc32": "0"}

    def _get_action(self) -> str:
        return self.action


def test_the_lake_s_reads_and_writes_take_the_short_path_and_the_rest_moto_s():
    from moto.core.responses import ActionResult

    fallbacks: list = []
    serialized = dynamodb_responses._json_when_plain(lambda handler, result: fallbacks.append(handler.action) or "moto")
    capacity = {"TableName": "t", "CapacityUnits": 0.5}
    short = [
        ("UpdateItem", {"ConsumedCapacity": capacity}, '{"ConsumedCapacity": {"TableName": "t", "CapacityUnits": 0.5}}'),
        ("GetItem", {"Item": {"id": {"S": "a"}}}, '{"Item": {"id": {"S": "a"}}}'),
        ("BatchGetItem", {"ConsumedCapacity": [{"CapacityUnits": 1, "TableName": "t"}], "Responses": {"t": []},
                          "UnprocessedKeys": {}},
         '{"Responses": {"t": []}, "UnprocessedKeys": {}, "ConsumedCapacity": [{"TableName": "t", "CapacityUnits": 1.0}]}'),
    ]
    for action, result, body in short:
        assert serialized(_Handler(action), ActionResult(result)) == (
            200, {"Content-Type": "application/x-amz-json-1.0", "x-amz-crc32": "0"}, body)
    assert fallbacks == []
    for action, result in (
        ("BatchGetItem", {"Responses": {}, "UnprocessedKeys": {"t": {"Keys": [{"id": {"S": "a"}}]}}}),
        ("UpdateItem", {"ConsumedCapacity": {"TableName": "t", "CapacityUnits": 1, "Table": {"CapacityUnits": 1}}}),
        ("GetItem", {"Item": {"blob": {"B": "AAE="}}}),
        ("DescribeTable", {"Table": {"TableName": "t"}}),
    ):
        assert serialized(_Handler(action), ActionResult(result)) == "moto"
    assert fallbacks == ["BatchGetItem", "UpdateItem", "GetItem", "DescribeTable"]
