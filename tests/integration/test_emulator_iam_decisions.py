"""Remembered identity-policy decisions (sdlf_cli/local/iam/decisions.py): the same answers as moto's evaluation
with the patch out, and a changed policy - inline or managed - is decided afresh on the next request."""
from __future__ import annotations

import json

from sdlf_cli.local.cfn import _patching
from sdlf_cli.local.iam import decisions
from tests.integration.test_emulator_iam_seams import ACCOUNT, allow, as_role, assert_denied, enforced  # noqa: F401
from tests.integration.test_emulator_runtime_helpers import REGION, client, unique


def _tables(emulator, count: int) -> list[str]:
    ddb = client(emulator, "dynamodb")
    names = [unique("decision") for _ in range(count)]
    for name in names:
        ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                         BillingMode="PAY_PER_REQUEST")
    return names


def _table_arn(name: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"


def _document(*tables: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [allow("dynamodb:DescribeTable",
                                                                   [_table_arn(t) for t in tables])]})


def _scenario(emulator) -> list[str]:
    """Allowed or refused, call by call, while the role's policies change under it."""
    first, second = _tables(emulator, 2)
    make, principal = as_role(emulator, [allow("dynamodb:DescribeTable", _table_arn(first))])
    role = principal.split("/")[1]
    ddb, iam = make("dynamodb"), client(emulator, "iam")
    outcomes: list[str] = []

    def look(table: str) -> None:
        try:
            ddb.describe_table(TableName=table)
            outcomes.append(f"{table == first and 'first' or 'second'} allowed")
        except Exception:
            assert_denied(lambda: ddb.describe_table(TableName=table), principal, "dynamodb:DescribeTable",
                          _table_arn(table))
            outcomes.append(f"{table == first and 'first' or 'second'} refused")

    for _ in range(2):
        look(first), look(second)
    iam.put_role_policy(RoleName=role, PolicyName="seam", PolicyDocument=_document(second))
    look(first), look(second)
    iam.delete_role_policy(RoleName=role, PolicyName="seam")
    look(first), look(second)
    policy = iam.create_policy(PolicyName=unique("decision"), PolicyDocument=_document(first))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=role, PolicyArn=policy)
    look(first), look(second)
    iam.create_policy_version(PolicyArn=policy, PolicyDocument=_document(second), SetAsDefault=True)
    look(first), look(second)
    iam.detach_role_policy(RoleName=role, PolicyArn=policy)
    look(first), look(second)
    return outcomes


EXPECTED = ["first allowed", "second refused"] * 2 + ["first refused", "second allowed"] + \
    ["first refused", "second refused"] + ["first allowed", "second refused"] + \
    ["first refused", "second allowed"] + ["first refused", "second refused"]


def test_decisions_follow_every_policy_change_as_moto_s_evaluation_does(enforced):  # noqa: F811
    assert decisions.PATCH_NAME in _patching.installed_names()
    assert _scenario(enforced) == EXPECTED
    decisions.uninstall()
    try:
        assert decisions.PATCH_NAME not in _patching.installed_names()
        assert _scenario(enforced) == EXPECTED
    finally:
        decisions.install()


def _after_the_role_is_gone(emulator) -> list:
    (table,) = _tables(emulator, 1)
    make, principal = as_role(emulator, [allow("dynamodb:DescribeTable", _table_arn(table))])
    role = principal.split("/")[1]
    iam = client(emulator, "iam")
    iam.delete_role_policy(RoleName=role, PolicyName="seam")
    iam.delete_role(RoleName=role)
    answers: list = [make("sts").get_caller_identity()["Arn"] == principal]
    try:
        make("dynamodb").describe_table(TableName=table)
        answers.append("allowed")
    except Exception as error:  # whatever moto answers for keys of a deleted role
        answers.append(type(error).__name__)
    return answers


def test_keys_of_a_deleted_role_are_answered_as_moto_answers_them(enforced):  # noqa: F811
    remembered = _after_the_role_is_gone(enforced)
    decisions.uninstall()
    try:
        assert _after_the_role_is_gone(enforced) == remembered
    finally:
        decisions.install()
    assert remembered[0] is True  # GetCallerIdentity needs no policy
