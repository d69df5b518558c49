"""The policy evaluator the isolation tests rely on: effects, wildcards, Not- elements, conditions,
boundaries and resource policies, each against what AWS documents."""
from __future__ import annotations

import pytest

from sdlf_cli.policy.evaluate import Request, allowed, decide, statement_applies

ROLE = "arn:aws:iam::123456789012:role/acme-lake-dev-eng-lambda"
OBJECT = "arn:aws:s3:::bucket/eng/ds/file.json"


def doc(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action, resource, **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action, resource, **extra):
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def req(action="s3:GetObject", resource=OBJECT, **context):
    return Request(ROLE, action, resource, context)


def test_nothing_allows_by_default_and_an_allow_allows():
    assert decide(req(), []) == "ImplicitDeny"
    assert allowed(req(), [doc(allow("s3:GetObject", OBJECT))])


def test_explicit_deny_wins_wherever_it_is():
    identity = [doc(allow("s3:*", "*"))]
    assert decide(req(), identity + [doc(deny("s3:GetObject", OBJECT))]) == "Deny"
    assert decide(req(), identity, boundary=doc(allow("*", "*"), deny("s3:Get*", "*"))) == "Deny"
    bucket_policy = doc({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": OBJECT})
    assert decide(req(), identity, resource_policy=bucket_policy) == "Deny"


def test_action_wildcards_are_case_insensitive_and_resources_case_sensitive():
    assert allowed(req("S3:getobject"), [doc(allow("s3:Get*", "*"))])
    assert allowed(req("s3:GetObject"), [doc(allow("s3:GetObjec?", "*"))])
    assert not allowed(req("s3:GetObjectVersion"), [doc(allow("s3:GetObjec?", "*"))])
    assert allowed(req(), [doc(allow("s3:GetObject", "arn:aws:s3:::bucket/eng/*"))])
    assert not allowed(req(), [doc(allow("s3:GetObject", "arn:aws:s3:::bucket/ENG/*"))])
    assert not allowed(req(), [doc(allow("s3:GetObject", "arn:aws:s3:::bucket/mkt/*"))])
    # "*" in a resource spans "/" and ":" (an ARN is a plain string to IAM); "[" is no character class.
    assert allowed(req(resource="arn:aws:s3:::bucket/a[1]"), [doc(allow("s3:GetObject", "arn:aws:s3:::bucket/a[1]"))])
    assert not allowed(req(resource="arn:aws:s3:::bucket/a1"), [doc(allow("s3:GetObject", "arn:aws:s3:::bucket/a[1]"))])


def test_not_action_and_not_resource():
    everything_but_delete = doc({"Effect": "Allow", "NotAction": "s3:Delete*", "Resource": "*"})
    assert allowed(req(), [everything_but_delete])
    assert not allowed(req("s3:DeleteObject"), [everything_but_delete])
    not_mkt = doc({"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::bucket/mkt/*"})
    assert allowed(req(), [not_mkt])
    assert not allowed(req(resource="arn:aws:s3:::bucket/mkt/x"), [not_mkt])


def test_the_boundary_caps_what_identity_policies_allow():
    identity = [doc(allow("s3:GetObject", "arn:aws:s3:::bucket/*"))]
    boundary = doc(allow("s3:GetObject", "arn:aws:s3:::bucket/eng/*"))
    assert allowed(req(), identity, boundary)
    assert not allowed(req(resource="arn:aws:s3:::bucket/mkt/x"), identity, boundary)
    # A boundary grants nothing by itself.
    assert not allowed(req(), [], boundary)


def test_resource_policies_grant_only_to_the_principal_they_name():
    key = "arn:aws:kms:eu-west-1:123456789012:key/k"
    root = doc({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*",
                "Resource": "*"})
    assert not allowed(req("kms:Decrypt", key), [], resource_policy=root)  # delegation to IAM only
    assert allowed(req("kms:Decrypt", key), [doc(allow("kms:Decrypt", key))], resource_policy=root)
    named = doc({"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "kms:Decrypt", "Resource": "*"})
    assert allowed(req("kms:Decrypt", key), [], resource_policy=named)
    service = doc({"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
                   "Resource": "*"})
    assert not allowed(req("sqs:SendMessage", "arn:aws:sqs:eu-west-1:123456789012:q"), [], resource_policy=service)


@pytest.mark.parametrize("condition,context,expected", [
    ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": "false"}, True),
    ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": "true"}, False),
    ({"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}, {}, False),  # missing key fails
    ({"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}, {}, True),  # ... but not negated ones
    ({"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}},
     {"s3:x-amz-server-side-encryption": "AES256"}, True),
    ({"StringLike": {"s3:prefix": ["eng/*", "eng/"]}}, {"s3:prefix": "eng/ds/"}, True),
    ({"StringLike": {"s3:prefix": ["eng/*", "eng/"]}}, {"s3:prefix": "mkt/"}, False),
    ({"StringLike": {"s3:prefix": ["eng/*", "eng/"]}}, {}, False),
    ({"ArnLike": {"aws:SourceArn": "arn:aws:events:*:*:rule/acme-eng-*"}},
     {"aws:SourceArn": "arn:aws:events:eu-west-1:1:rule/acme-eng-ds-a"}, True),
    ({"ArnEquals": {"aws:SourceArn": "arn:aws:events:eu-west-1:1:rule/a"}},
     {"aws:SourceArn": "arn:aws:events:eu-west-1:1:rule/b"}, False),
    ({"Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "true"}}, {}, True),
    ({"Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "true"}},
     {"s3:x-amz-server-side-encryption-aws-kms-key-id": "k"}, False),
    ({"ForAnyValue:StringEquals": {"kms:ResourceAliases": ["alias/a", "alias/b"]}},
     {"kms:ResourceAliases": ["alias/x", "alias/b"]}, True),
    ({"ForAnyValue:StringEquals": {"kms:ResourceAliases": ["alias/a"]}}, {"kms:ResourceAliases": ["alias/x"]}, False),
    ({"ForAllValues:StringEquals": {"kms:ResourceAliases": ["alias/a", "alias/b"]}},
     {"kms:ResourceAliases": ["alias/a", "alias/x"]}, False),
    # Two operators (or keys) in one condition block must all hold.
    ({"StringEquals": {"aws:SourceAccount": "1"}, "ArnLike": {"aws:SourceArn": "arn:aws:s3:::x"}},
     {"aws:SourceAccount": "1", "aws:SourceArn": "arn:aws:s3:::y"}, False),
])
def test_condition_operators(condition, context, expected):
    statement = allow("s3:PutObject", "*", Condition=condition)
    assert statement_applies(statement, req("s3:PutObject", **context)) is expected


def test_what_it_does_not_evaluate_is_refused_not_guessed():
    with pytest.raises(NotImplementedError):
        statement_applies(allow("s3:GetObject", "*", Condition={"NumericLessThan": {"s3:max-keys": "10"}}), req())
    with pytest.raises(NotImplementedError):
        statement_applies(allow("s3:GetObject", "arn:aws:s3:::bucket/${aws:username}/*"), req())
