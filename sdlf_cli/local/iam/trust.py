"""Role trust policies read as AWS reads them, for `sts:AssumeRole` by a principal of the emulator.

moto authorizes `sts:AssumeRole` on the target role's ARN and then asks the role's trust policy, but its
reader compares the caller's session ARN to the `AWS` principal verbatim (so neither the account root nor
the role ARN, the two forms trust policies use, ever matches), fails on a `Service`-only principal, and
evaluates `StringEquals` only, ignoring other operators. The patch "iam: role trust policies" evaluates
the trust policy with the project's policy evaluator instead:

- Principal `AWS`: `"*"`, the account (`arn:aws:iam::<account>:root` or its id), the caller's role ARN
  (for a role session: every session of that role), the caller's user ARN, or its session ARN;
  `Service` and `Federated` principals never match a caller holding keys;
- Action / NotAction; an explicit Deny wins;
- Condition with the keys `aws:PrincipalArn` (the role's ARN for a role session), `aws:PrincipalAccount`,
  `aws:PrincipalType`, `aws:username`, `sts:RoleSessionName` and `sts:ExternalId`; a key the request has not
  (`aws:SourceAccount` only comes with a service) fails every operator but the negated ones and Null. An
  operator the evaluator does not know refuses the call, naming the role and the operator.

The caller's identity policy must allow the call as well (moto's own check, on the role's ARN). AWS lets a
same-account principal that the trust policy names by its own ARN assume without an identity policy; the
emulator requires both, so it is stricter there. The emulator's services (Lambda, Glue, Step Functions,
CodeBuild) assume roles with the account's root keys, which are never checked.
"""
from __future__ import annotations

import json
import logging
from typing import Any

from sdlf_cli.policy.documents import as_list, statements
from sdlf_cli.policy.evaluate import Request, statement_applies

LOG = logging.getLogger(__name__)
TRUST = "iam: role trust policies"


def caller_principals(arn: str, account_id: str, role_arn: str | None) -> set[str]:
    """Every `AWS` principal value that names the caller: its ARN, its role's ARN, its account."""
    names = {arn, account_id, f"arn:aws:iam::{account_id}:root"}
    if role_arn:
        names.add(role_arn)
    return names


def principal_matches(block: Any, names: set[str]) -> bool:
    if block == "*":
        return True
    if not isinstance(block, dict):
        return False
    return any(value == "*" or value in names for value in as_list(block.get("AWS", [])))


def trust_allows(document: dict, action: str, role_arn: str, principals: set[str], context: dict) -> bool:
    """Whether the trust policy lets one of `principals` perform `action` on the role: an Allow naming it
    applies and no Deny does."""
    request = Request(principal=next(iter(principals)), action=action, resource=role_arn, context=context)
    effects = set()
    for statement in statements(document):
        principal_block = statement.get("Principal")
        if "NotPrincipal" in statement:
            if principal_matches(statement["NotPrincipal"], principals):
                continue
        elif not principal_matches(principal_block, principals):
            continue
        if statement_applies(statement, request):
            effects.add(statement["Effect"])
    return "Allow" in effects and "Deny" not in effects


def _document(value: Any) -> dict:
    return json.loads(value) if isinstance(value, str) else value


def _first(data: dict, name: str) -> str | None:
    value = data.get(name)
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _caller(request: Any) -> tuple[str | None, dict]:
    """The caller's role ARN (None for a user) and the condition keys it brings."""
    key = request._access_key
    context = {"aws:PrincipalAccount": request.account_id}
    data = request._data or {}
    for name, source in (("sts:RoleSessionName", "RoleSessionName"), ("sts:ExternalId", "ExternalId")):
        if _first(data, source) is not None:
            context[name] = _first(data, source)
    role_name = getattr(key, "_owner_role_name", None)
    if role_name:
        role = request.backend.get_role(role_name)
        context.update({"aws:PrincipalArn": role.arn, "aws:PrincipalType": "AssumedRole"})
        return role.arn, context
    context.update({"aws:PrincipalArn": key.arn, "aws:PrincipalType": "User",
                    "aws:username": getattr(key, "_owner_user_name", "")})
    return None, context


def _trust_as_aws_reads_it(_original: Any) -> Any:
    def _check_role_trust_relationship(self: Any, role_arn: str) -> bool:
        role = self.backend.get_role_by_arn(role_arn)
        caller_role, context = _caller(self)
        principals = caller_principals(self._access_key.arn, self.account_id, caller_role)
        try:
            allowed = trust_allows(_document(role.assume_role_policy_document), self._action, role_arn,
                                   principals, context)
        except NotImplementedError as exc:
            LOG.warning("trust policy of %s not evaluated: %s", role_arn, exc)
            self.sdlf_reason = f"the emulator cannot evaluate the trust policy of {role_arn}: {exc}"
            return False
        if not allowed:
            self.sdlf_reason = "trust"
        return allowed

    return _check_role_trust_relationship


def install() -> None:
    from moto.iam.access_control import IAMRequestBase

    from sdlf_cli.local.cfn import _patching

    _patching.wrap(IAMRequestBase, "_check_role_trust_relationship", TRUST, _trust_as_aws_reads_it)


def uninstall() -> None:
    from sdlf_cli.local.cfn import _patching

    _patching.uninstall(TRUST)
