"""An identity-policy decision is remembered per action, resource and the very policy documents it was made on.

moto evaluates a request's identity policies from scratch: it reads the role's inline and attached policies,
parses each document from its JSON text (the emulator's CloudFormation roles keep theirs as mappings, so they
are first written to text, `enforcement.DOCUMENT_OBJECTS`) and matches every statement. The lake's functions
make the same few calls over and over (their role, the same tables, queues and buckets), and that work was ~4 %
of a busy emulator's single interpreter. The decision - allowed, or refused - depends only on the action, the
resource and the documents (moto passes no condition values here), so one named patch remembers it under the
identity of the documents evaluated: the objects moto stores (it replaces a role's document on every
PutRolePolicy, and a managed policy's default version is a new document), which the memo holds so their
identity cannot be reused. A changed policy is a new key: it is evaluated afresh. Role assumption
(`sts:AssumeRole`, whose trust check depends on more than the caller's documents) and `sts:GetCallerIdentity`
(which moto allows before reading any policy) are never remembered, and a request whose policies cannot be
read (the role is gone) is left to moto.
"""
from __future__ import annotations

from typing import Any

from sdlf_cli.local.runtime.bounded_memo import BoundedMemo

PATCH_NAME = "iam: a decision is remembered per action, resource and policy documents"
MAX_DECISIONS = 4096
_ALLOWED, _DENIED = "allowed", "denied"
# Role assumption's trust check depends on more than the caller's documents; moto allows GetCallerIdentity
# before reading any policy (the caller's role may not even exist).
_NOT_REMEMBERED = ("sts:AssumeRole", "sts:GetCallerIdentity")


def _document_of(policy: Any) -> Any:
    """What moto's IAMPolicy reads from one collected policy: a managed policy's default version's document."""
    versions = getattr(policy, "versions", None)
    if versions is not None:
        return next((version.document for version in versions if version.is_default), policy)
    return policy


def _remembered(original: Any) -> Any:
    decisions = BoundedMemo(MAX_DECISIONS)

    def check_action_permitted(self: Any, resource: Any) -> None:
        action = self._action
        if action in _NOT_REMEMBERED:
            return original(self, resource)
        resources = tuple(resource) if isinstance(resource, (list, tuple)) else (resource,)
        try:
            documents = tuple(_document_of(policy) for policy in self._access_key.collect_policies())
        except Exception:  # e.g. keys of a role deleted since: moto's own evaluation answers (or raises)
            return original(self, resource)
        key = (action, resources, tuple(map(id, documents)))

        def decide() -> tuple[str, Any, tuple]:
            try:
                original(self, resource)
            except Exception as refused:
                # Only a refusal is a decision; anything else is raised every time.
                if getattr(refused, "error_type", None) not in ("AccessDenied", "AccessDeniedException"):
                    raise
                # The resource refused (a request can name several) is the one its message names.
                return _DENIED, getattr(self, "sdlf_resource", resource), documents
            return _ALLOWED, None, documents  # the documents stay referenced: their ids stay theirs

        verdict, refused_resource, _ = decisions.get(key, decide)
        if verdict == _DENIED:
            self.sdlf_resource = refused_resource
            self._raise_access_denied()

    return check_action_permitted


def install() -> None:
    from moto.iam.access_control import IAMRequestBase

    from sdlf_cli.local.cfn import _patching

    _patching.wrap(IAMRequestBase, "check_action_permitted", PATCH_NAME, _remembered)


def uninstall() -> None:
    from sdlf_cli.local.cfn import _patching

    _patching.uninstall(PATCH_NAME)
