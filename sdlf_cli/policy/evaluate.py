"""A small IAM policy evaluator: is one request allowed, given the principal's identity policies, its
permissions boundary and the resource's policy (all in one account)?

What it implements, after AWS's evaluation logic for a single account:
- an explicit Deny in any of the policies wins;
- otherwise the request is allowed when an identity policy allows it and the boundary (if any) allows it,
  or when the resource policy allows this very principal (by its ARN);
- a resource policy's Allow for the account root (`arn:...:root`, as KMS key policies do) delegates to IAM
  and grants nothing by itself;
- Action / NotAction (case-insensitive, `*` and `?` wildcards), Resource / NotResource (case-sensitive),
  Principal / NotPrincipal in resource policies ("*", AWS, Service);
- the condition operators String(Not)Equals, String(Not)Like, Arn(Not)Equals, Arn(Not)Like, Bool, Null,
  and the ForAnyValue: / ForAllValues: set prefixes. A key missing from the request fails every
  operator but the negated ones (which it satisfies) and Null.

What it does not: SCPs, session policies, Lake Formation grants, IfExists suffixes, numeric and date
operators, policy variables. A statement using any of those raises, rather than being guessed at.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

from sdlf_cli.policy.documents import as_list, statements


@dataclass(frozen=True)
class Request:
    principal: str  # the role's ARN
    action: str  # "s3:GetObject"
    resource: str  # the resource's ARN
    context: dict = field(default_factory=dict)  # condition keys -> value or list of values


def _glob(pattern: str, value: str, case: bool) -> bool:
    if "${" in pattern:
        raise NotImplementedError(f"policy variables are not evaluated: {pattern!r}")
    if not case:
        pattern, value = pattern.lower(), value.lower()
    # IAM wildcards are only "*" (any run) and "?" (one character); everything else is literal.
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.S) is not None


def _any_match(patterns, value: str, case: bool) -> bool:
    return any(_glob(p, value, case) for p in as_list(patterns))


def _principal_matches(principal_block, arn: str) -> bool:
    if principal_block == "*":
        return True
    if not isinstance(principal_block, dict):
        return False
    for kind, values in principal_block.items():
        for value in as_list(values):
            if kind == "AWS" and (value == "*" or value == arn):
                return True
    return False


_OPERATORS = {
    "StringEquals": (lambda p, v: p == v, False),
    "StringNotEquals": (lambda p, v: p == v, True),
    "StringEqualsIgnoreCase": (lambda p, v: p.lower() == v.lower(), False),
    "StringLike": (lambda p, v: _glob(p, v, True), False),
    "StringNotLike": (lambda p, v: _glob(p, v, True), True),
    "ArnEquals": (lambda p, v: p == v, False),
    "ArnNotEquals": (lambda p, v: p == v, True),
    "ArnLike": (lambda p, v: _glob(p, v, True), False),
    "ArnNotLike": (lambda p, v: _glob(p, v, True), True),
    "Bool": (lambda p, v: str(p).lower() == str(v).lower(), False),
}


def _condition_holds(operator: str, key: str, expected, context: dict) -> bool:
    present = key in context
    if operator == "Null":
        return (str(expected).lower() == "true") == (not present)
    qualifier, _, base = operator.rpartition(":")
    if base not in _OPERATORS or qualifier not in ("", "ForAnyValue", "ForAllValues"):
        raise NotImplementedError(f"condition operator {operator!r} is not evaluated")
    compare, negated = _OPERATORS[base]
    patterns = [str(p) for p in as_list(expected)]
    if not present:
        return negated or qualifier == "ForAllValues"
    values = [str(v) for v in as_list(context[key])]

    def one(value: str) -> bool:
        hit = any(compare(p, value) for p in patterns)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(one(v) for v in values)
    if qualifier == "ForAnyValue":
        return any(one(v) for v in values)
    if len(values) != 1:
        raise NotImplementedError(f"{operator} on the multivalued key {key!r} needs ForAnyValue/ForAllValues")
    return one(values[0])


def statement_applies(statement: dict, request: Request, resource_policy: bool = False) -> bool:
    """Whether the statement's Principal, Action, Resource and Condition all match the request."""
    if resource_policy:
        if "NotPrincipal" in statement:
            if _principal_matches(statement["NotPrincipal"], request.principal):
                return False
        elif not _principal_matches(statement.get("Principal"), request.principal):
            return False
    if "Action" in statement:
        if not _any_match(statement["Action"], request.action, case=False):
            return False
    elif _any_match(statement["NotAction"], request.action, case=False):
        return False
    if "Resource" in statement:
        if not _any_match(statement["Resource"], request.resource, case=True):
            return False
    elif "NotResource" in statement and _any_match(statement["NotResource"], request.resource, case=True):
        return False
    for operator, pairs in (statement.get("Condition") or {}).items():
        for key, expected in pairs.items():
            if not _condition_holds(operator, key, expected, request.context):
                return False
    return True


def _effects(document: dict | None, request: Request, resource_policy: bool = False) -> set[str]:
    if not document:
        return set()
    return {s["Effect"] for s in statements(document) if statement_applies(s, request, resource_policy)}


def decide(request: Request, identity: Iterable[dict], boundary: dict | None = None,
           resource_policy: dict | None = None) -> str:
    """"Allow", or "Deny" (explicit deny) or "ImplicitDeny", for one request in one account."""
    identity_effects = set().union(*(_effects(d, request) for d in identity))
    boundary_effects = _effects(boundary, request)
    resource_effects = _effects(resource_policy, request, resource_policy=True)
    if "Deny" in identity_effects | boundary_effects | resource_effects:
        return "Deny"
    granted_by_identity = "Allow" in identity_effects and (boundary is None or "Allow" in boundary_effects)
    granted_by_resource = resource_policy is not None and any(
        s["Effect"] == "Allow" and _names_principal(s, request.principal) and statement_applies(s, request, True)
        for s in statements(resource_policy))
    return "Allow" if granted_by_identity or granted_by_resource else "ImplicitDeny"


def _names_principal(statement: dict, arn: str) -> bool:
    """Only an Allow naming the principal itself grants by the resource policy alone (not "*" nor root)."""
    block = statement.get("Principal")
    return isinstance(block, dict) and arn in as_list(block.get("AWS", []))


def allowed(request: Request, identity: Iterable[dict], boundary: dict | None = None,
            resource_policy: dict | None = None) -> bool:
    return decide(request, identity, boundary, resource_policy) == "Allow"
