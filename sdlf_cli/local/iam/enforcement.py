"""Identity-policy enforcement on moto 5.2.5, switched on and off as a set of named patches.

moto checks every request once `settings.INITIAL_NO_AUTH_ACTION_COUNT` requests have passed (0 here), and
only knows two kinds of keys: IAM users' and STS assumed roles'. The patches:
- "iam: enforce from the first request": the setting itself, put back on uninstall;
- "iam: root principal for keys the emulator did not issue": the CLI's and the tests' fixed keys act as the
  account's root (everything allowed, as on AWS), so only the lake's roles, signing with assumed-role keys,
  are checked;
- "iam: IAM action names": a few API operations are authorized under another name (Lambda's `Invoke` is
  `lambda:InvokeFunction`, SQS's `SendMessageBatch` is `sqs:SendMessage`; CloudWatch signs as `monitoring`
  but its actions are `cloudwatch:`);
- "iam: every resource of a request": a request naming several resources (a Glue table is authorized on
  the catalog, its database and itself) is allowed only when each one is;
- "iam: policy documents stored as objects": roles created by CloudFormation keep their inline policies
  as a mapping, which moto's policy reader does not take;
- "iam: a decision is remembered per action, resource and policy documents" (`sdlf_cli.local.iam.decisions`):
  the same request on unchanged policies is not evaluated again;
- "iam: AccessDenied names the resource": the message AWS gives, `User: <arn> is not authorized to perform:
  <action> on resource: <arn> because no identity-based policy allows the <action> action`.
Resource ARNs per service come from `sdlf_cli.local.iam.resources`; `sts:AssumeRole` by a principal of the
emulator is authorized on the target role's ARN (moto's own) and by the role's trust policy
(`sdlf_cli.local.iam.trust`).
"""
from __future__ import annotations

import functools
import re
from typing import Any

ENFORCE = "iam: enforce from the first request"
ROOT = "iam: root principal for keys the emulator did not issue"
ACTION_NAMES = "iam: IAM action names"
EVERY_RESOURCE = "iam: every resource of a request"
DENIED_MESSAGE = "iam: AccessDenied names the resource"
DOCUMENT_OBJECTS = "iam: policy documents stored as objects"

# (signing name, API operation) -> IAM action; a "*" operation renames the whole service prefix.
ACTION_ALIASES = {
    ("lambda", "Invoke"): "lambda:InvokeFunction",
    ("lambda", "InvokeAsync"): "lambda:InvokeFunction",
    ("monitoring", "*"): "cloudwatch",
    # SQS batch operations are authorized as their single-message action.
    ("sqs", "SendMessageBatch"): "sqs:SendMessage",
    ("sqs", "DeleteMessageBatch"): "sqs:DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "sqs:ChangeMessageVisibility",
}
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


def access_key_of(headers: Any) -> str | None:
    authorization = headers.get("Authorization") or headers.get("authorization") or ""
    match = _CREDENTIAL.search(authorization)
    return match.group(1) if match else None


def issued_by_emulator(account_id: str, access_key_id: str) -> bool:
    """Whether the key is an IAM user's or an assumed role's on this emulator (moto checks those)."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    for partition in ("aws",):
        if any(role.access_key_id == access_key_id for role in sts_backends[account_id][partition].assumed_roles):
            return True
        for user in iam_backends[account_id][partition].users.values():
            if any(key.access_key_id == access_key_id for key in user.access_keys):
                return True
    return False


def _root_for_unknown_keys(original: Any) -> Any:
    def _authenticate_and_authorize_action(self: Any, iam_request_cls: type, resource: Any = "*") -> None:
        key = access_key_of(self.headers)
        if key is None or not issued_by_emulator(self.current_account, key):
            return  # the account's root principal (or an unsigned internal call): allowed
        return original(self, iam_request_cls, resource)

    return _authenticate_and_authorize_action


def iam_action(signing_name: str, operation: str) -> str:
    alias = ACTION_ALIASES.get((signing_name, operation))
    if alias:
        return alias
    prefix = ACTION_ALIASES.get((signing_name, "*"), signing_name)
    return f"{prefix}:{operation}"


def _renamed_actions(original: Any) -> Any:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        service, _, operation = self._action.partition(":")
        self._action = iam_action(service, operation)

    return __init__


def _each_resource(original: Any) -> Any:
    def check_action_permitted(self: Any, resource: Any) -> None:
        for one in (resource if isinstance(resource, (list, tuple)) else [resource]):
            self.sdlf_resource = one
            original(self, one)

    return check_action_permitted


def _documents_as_objects(original: Any) -> Any:
    import json

    def __init__(self: Any, policy: Any) -> None:
        if isinstance(policy, dict) and "Statement" in policy:
            policy = json.dumps(policy)
        elif isinstance(policy, dict) and isinstance(policy.get("policy_document"), dict):
            policy = json.dumps(policy["policy_document"])
        original(self, policy)

    return __init__


def denied_message(principal_arn: str, action: str, resource: str, reason: str | None = None) -> str:
    """AWS's words; `reason` is "trust" when the role's trust policy refused (AWS then names no policy), or
    a sentence of the emulator's own."""
    if not resource or resource == "*":
        return f"User: {principal_arn} is not authorized to perform: {action}"
    refused = f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource}"
    if reason == "trust":
        return refused
    if reason:
        return f"{refused} because {reason}"
    return f"{refused} because no identity-based policy allows the {action} action"


def assumed_role_arn(account_id: str, role_arn: str, session_name: str) -> str:
    return f"arn:aws:sts::{account_id}:assumed-role/{role_arn.rsplit('/', 1)[-1]}/{session_name}"


def role_session_allows(account_id: str, keys: Any, action: str, resource: str) -> bool:
    """Whether the identity policies of the role whose session `keys` are allow `action` on `resource`, as moto
    decides for a request signed with them (for the emulator's own service-side calls made without one)."""
    from moto.iam.access_control import AssumedRoleAccessKey, IAMPolicy, PermissionResult

    access_key = AssumedRoleAccessKey(account_id, "aws", keys.access_key_id,
                                      {"X-Amz-Security-Token": keys.session_token})
    permitted = False
    for policy in access_key.collect_policies():
        result = IAMPolicy(policy).is_action_permitted(action, resource)
        if result == PermissionResult.DENIED:
            return False
        permitted = permitted or result == PermissionResult.PERMITTED
    return permitted


_SERVICE_MODELS = {"states": "stepfunctions", "monitoring": "cloudwatch"}  # signing name -> botocore model


@functools.lru_cache(maxsize=None)
def protocol_of(signing_name: str) -> str:
    import botocore.session

    try:
        return botocore.session.get_session().get_service_model(
            _SERVICE_MODELS.get(signing_name, signing_name)).protocol
    except Exception:  # a service botocore does not know: the query protocol's XML error
        return "query"


def _denied_with_resource(original: Any) -> Any:
    from moto.core.exceptions import AccessDeniedError, JsonRESTError

    class AccessDeniedOnResource(AccessDeniedError):
        def __init__(self, message: str):
            super(AccessDeniedError, self).__init__("AccessDenied", message)

    def _raise_access_denied(self: Any) -> None:
        message = denied_message(self._access_key.arn, self._action, getattr(self, "sdlf_resource", "*"),
                                 getattr(self, "sdlf_reason", None))
        protocol = protocol_of(self._service)
        if protocol in ("json", "rest-json"):
            # JSON services answer AccessDeniedException (400 for json, 403 for REST APIs such as Lambda).
            error = JsonRESTError("AccessDeniedException", message)
            error.code = 400 if protocol == "json" else 403
            raise error
        raise AccessDeniedOnResource(message)

    return _raise_access_denied


def install() -> None:
    """Turns enforcement on (idempotent): every patch above plus the per-service resource ARNs."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam.access_control import IAMPolicy, IAMRequest, IAMRequestBase

    from sdlf_cli.local.cfn import _patching
    from sdlf_cli.local.iam import decisions, resources, trust

    _patching.wrap(ActionAuthenticatorMixin, "_authenticate_and_authorize_action", ROOT, _root_for_unknown_keys)
    _patching.wrap(IAMRequestBase, "__init__", ACTION_NAMES, _renamed_actions)
    _patching.wrap(IAMRequestBase, "check_action_permitted", EVERY_RESOURCE, _each_resource)
    decisions.install()  # over EVERY_RESOURCE (same attribute): it comes out first
    _patching.wrap(IAMRequest, "_raise_access_denied", DENIED_MESSAGE, _denied_with_resource)
    _patching.wrap(IAMPolicy, "__init__", DOCUMENT_OBJECTS, _documents_as_objects)
    resources.install()
    trust.install()
    _patching.install(_patching.Patch(ENFORCE, settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0))


def uninstall() -> None:
    from sdlf_cli.local.cfn import _patching
    from sdlf_cli.local.iam import decisions, resources, trust

    _patching.uninstall(ENFORCE)
    trust.uninstall()
    resources.uninstall()
    decisions.uninstall()
    for name in (DOCUMENT_OBJECTS, DENIED_MESSAGE, EVERY_RESOURCE, ACTION_NAMES, ROOT):
        _patching.uninstall(name)


def enforced() -> bool:
    from sdlf_cli.local.cfn import _patching

    return ENFORCE in _patching.installed_names()
