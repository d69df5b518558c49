"""The runtime's speed patches on moto answer exactly as moto does, and each comes out again.

- dynamodb_expressions: UpdateItem validation in linear time and expressions parsed once - same items,
  same errors (checked against moto with the patches out);
- request_routing: the backend serving a host name looked up once - same answers as moto's lookup;
- sqs_poller's wake-up: SendMessage and SendMessageBatch wake the poller (moto's batch goes through
  SendMessage; if an upgrade changes that, this fails);
- stepfunctions: a task's client is reused for the same role keys.
"""
from __future__ import annotations

import threading

import pytest
from botocore.exceptions import ClientError

from sdlf_cli.local.cfn import _patching
from sdlf_cli.local.runtime import dynamodb_expressions, install, request_routing, sqs_poller, stepfunctions
from tests.integration.test_emulator_runtime_helpers import client, unique


@pytest.fixture(scope="module", autouse=True)
def runtime(emulator):
    install(emulator.context)


def _table(emulator) -> str:
    name = unique("speed-table")
    client(emulator, "dynamodb").create_table(
        TableName=name, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
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


def test_update_items_and_errors_are_moto_s_own(emulator):
    names = [dynamodb_expressions.PARSE_PATCH, dynamodb_expressions.TYPES_PATCH,
             dynamodb_expressions.ROOT_FIRST_PATCH.format("ActionCountValidator"),
             dynamodb_expressions.ROOT_FIRST_PATCH.format("OverlappingPathsValidator")]
    assert all(name in _patching.installed_names() for name in names)
    patched = _outcomes(emulator)
    dynamodb_expressions.uninstall()
    try:
        assert not any(name in _patching.installed_names() for name in names)
        original = _outcomes(emulator)
    finally:
        dynamodb_expressions.install()
    assert patched == original
    assert patched[0]["attr11"] == {"S": "value 11"} and patched[1]["lineage"] == {"L": [{"S": "s3://b/k"}] * 2}
    assert patched[2]["tally"] == {"N": "2"}
    codes = [outcome[0] for outcome in patched[len(VALID_UPDATES):]]
    assert codes == ["ValidationException"] * len(INVALID_UPDATES) * 2


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


def test_request_routing_answers_as_moto_and_comes_out_again(emulator):
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    assert request_routing.PATCH_NAME in _patching.installed_names()
    remembered = DomainDispatcherApplication.__dict__["get_backend_for_host"]
    hosts = [None, "moto_api", "dynamodb", "s3.us-east-1.amazonaws.com", "sqs.us-east-1.amazonaws.com",
             "states.us-east-1.amazonaws.com", "lambda.us-east-1.amazonaws.com", "nothing.example"]
    dispatcher = DomainDispatcherApplication(create_app=lambda backend: None)
    patched = [dispatcher.get_backend_for_host(h) for h in hosts] * 2
    request_routing.uninstall()
    try:
        assert DomainDispatcherApplication.__dict__["get_backend_for_host"] is not remembered
        original = [dispatcher.get_backend_for_host(h) for h in hosts] * 2
    finally:
        request_routing.install()
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
