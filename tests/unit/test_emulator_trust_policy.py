"""How the emulator reads a role's trust policy for sts:AssumeRole by one of its principals (no emulator)."""
from __future__ import annotations

import pytest

from sdlf_cli.local.iam.trust import caller_principals, trust_allows

ACCOUNT = "123456789012"
CALLER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/build"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/build/run-1"
TARGET = f"arn:aws:iam::{ACCOUNT}:role/deploy"
CONTEXT = {"aws:PrincipalArn": CALLER_ROLE, "aws:PrincipalAccount": ACCOUNT, "sts:RoleSessionName": "run-1"}


def trust(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": [{"Action": "sts:AssumeRole", **s} for s in statements]}


def allows(document: dict, context: dict = CONTEXT) -> bool:
    return trust_allows(document, "sts:AssumeRole", TARGET, caller_principals(SESSION, ACCOUNT, CALLER_ROLE),
                        context)


@pytest.mark.parametrize("principal", [f"arn:aws:iam::{ACCOUNT}:root", ACCOUNT, CALLER_ROLE, SESSION, "*"])
def test_the_forms_that_name_the_caller(principal):
    assert allows(trust({"Effect": "Allow", "Principal": {"AWS": principal}}))


@pytest.mark.parametrize("principal", [{"Service": "codebuild.amazonaws.com"},
                                       {"AWS": "arn:aws:iam::210987654321:root"},
                                       {"AWS": f"arn:aws:iam::{ACCOUNT}:role/other"},
                                       {"Federated": "cognito-identity.amazonaws.com"}])
def test_principals_that_do_not_name_the_caller(principal):
    assert not allows(trust({"Effect": "Allow", "Principal": principal}))


def test_a_condition_on_the_callers_role_arn_and_a_missing_service_key():
    account = {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    assert allows(trust({"Effect": "Allow", "Principal": account,
                         "Condition": {"ArnEquals": {"aws:PrincipalArn": CALLER_ROLE}}}))
    assert not allows(trust({"Effect": "Allow", "Principal": account,
                             "Condition": {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/other-*"}}}))
    # aws:SourceAccount only comes with a service principal's request: absent here, so the statement fails.
    assert not allows(trust({"Effect": "Allow", "Principal": account,
                             "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}))


def test_an_explicit_deny_wins():
    assert not allows(trust({"Effect": "Allow", "Principal": {"AWS": ACCOUNT}},
                            {"Effect": "Deny", "Principal": {"AWS": CALLER_ROLE}}))


def test_an_operator_the_evaluator_does_not_know_is_not_guessed():
    with pytest.raises(NotImplementedError, match="StringEqualsIfExists"):
        allows(trust({"Effect": "Allow", "Principal": {"AWS": ACCOUNT},
                      "Condition": {"StringEqualsIfExists": {"sts:ExternalId": "x"}}}))
