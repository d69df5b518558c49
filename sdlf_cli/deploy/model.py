"""What the deploy engine works on (StackSpec) and what it hands back (StackResult).

Plain frozen dataclasses: the planner builds specs, the deployer turns each into one result,
and the UI and `--output json` render results. Nothing here talks to AWS.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

FINGERPRINT_TAG = "sdlf:fingerprint"

DEFAULT_CAPABILITIES = ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND")

Status = Literal["created", "updated", "unchanged", "failed", "skipped", "planned", "deleted"]

# Resource types whose change alters who may do what: flagged in plans like CDK's IAM diff.
PERMISSION_TYPES = frozenset(
    {
        "AWS::Lambda::Permission",
        "AWS::S3::BucketPolicy",
        "AWS::SQS::QueuePolicy",
        "AWS::SNS::TopicPolicy",
        "AWS::Events::EventBusPolicy",
        "AWS::LakeFormation::Permissions",
        "AWS::LakeFormation::PrincipalPermissions",
    }
)


# Resources of other types whose named property is a permission policy: changing it is an IAM change.
POLICY_PROPERTIES = {"AWS::KMS::Key": frozenset({"KeyPolicy"})}

# Types that hold the lake's data (or the key that reads it): removing or replacing one loses what it holds
# (or, with UpdateReplacePolicy Retain, leaves it outside the lake).
DATA_TYPES = frozenset(
    {
        "AWS::DynamoDB::Table",
        "AWS::S3::Bucket",
        "AWS::KMS::Key",
        "AWS::Glue::Database",
        "AWS::Glue::Table",
        "AWS::SQS::Queue",
        "AWS::Logs::LogGroup",
    }
)


def is_iam_type(resource_type: str) -> bool:
    return resource_type.startswith("AWS::IAM::") or resource_type in PERMISSION_TYPES


def is_iam_change(action: str, resource_type: str, changed_properties: tuple[str, ...] = ()) -> bool:
    """IAM by type, or a change (add, remove, or modification of its policy) of a resource with a policy."""
    if is_iam_type(resource_type):
        return True
    policy = POLICY_PROPERTIES.get(resource_type)
    return bool(policy) and (action != "Modify" or bool(policy & set(changed_properties)))


@dataclass(frozen=True)
class StackSpec:
    name: str
    layer: str
    template_body: str
    parameters: dict[str, str]
    tags: dict[str, str]
    depends_on: tuple[str, ...] = ()
    # For templates over the 51,200-byte TemplateBody limit: the uploaded copy's URL.
    # The fingerprint still hashes template_body, which must be the same text.
    template_url: str | None = None
    capabilities: tuple[str, ...] = DEFAULT_CAPABILITIES
    # What CloudFormation resolves at deploy time (see deploy/inputs.py): the SSM-typed parameters
    # (logical id -> SSM name), the exports it imports, where the SSM values it reads come from (known
    # before deploying), and - filled just before deploying - the values then.
    ssm_parameters: dict[str, str] = field(default_factory=dict)
    imports: tuple[str, ...] = ()
    upstream: dict[str, Any] = field(default_factory=dict)
    resolved: dict[str, Any] | None = None
    # CloudFormation's execution role (RoleARN of the change sets); None: the caller's credentials.
    # Not part of the fingerprint: who deploys does not change what is deployed.
    role_arn: str | None = None
    # CloudFormation's termination protection, set after each deploy; None leaves the stack's as it is.
    # A stack attribute, not part of the template: not in the fingerprint.
    termination_protection: bool | None = None

    def fingerprint(self) -> str:
        """sha256 over template body, parameters and tags (not the fingerprint tag itself), and the
        inputs CloudFormation resolves at deploy time when the stack has any."""
        payload: dict[str, Any] = {
            "template": self.template_body,
            "parameters": dict(sorted(self.parameters.items())),
            "tags": {k: v for k, v in sorted(self.tags.items()) if k != FINGERPRINT_TAG},
        }
        if self.ssm_parameters or self.imports or self.upstream:
            payload["inputs"] = {"upstream": self.upstream, "resolved": self.resolved}
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Change:
    action: str  # Add | Modify | Remove | Import | Dynamic
    logical_id: str
    resource_type: str
    replacement: str | None  # "True" | "False" | "Conditional" | None
    is_iam: bool
    # The changed properties that require recreation (change set Details, RequiresRecreation Always or
    # Conditionally): why the resource is (or may be) replaced.
    recreates: tuple[str, ...] = ()

    @property
    def destructive(self) -> bool:
        """Data may be lost: the resource is removed or replaced by a new physical resource."""
        return self.action == "Remove" or self.replacement == "True"

    @property
    def may_replace(self) -> bool:
        return self.replacement == "Conditional"

    @property
    def data_bearing(self) -> bool:
        return self.resource_type in DATA_TYPES

    @property
    def data_at_risk(self) -> bool:
        """A resource holding data is removed, replaced, or may be replaced."""
        return self.data_bearing and (self.destructive or self.may_replace)

    def to_dict(self) -> dict:
        return {
            "action": self.action,
            "logical_id": self.logical_id,
            "resource_type": self.resource_type,
            "replacement": self.replacement,
            "is_iam": self.is_iam,
            "destructive": self.destructive,
            "data_bearing": self.data_bearing,
            "data_at_risk": self.data_at_risk,
            "recreates": list(self.recreates),
        }


@dataclass(frozen=True)
class Failure:
    logical_id: str
    resource_type: str
    status: str
    reason: str

    def __str__(self) -> str:
        return f"{self.logical_id} ({self.resource_type}) {self.status}: {self.reason}"

    def to_dict(self) -> dict:
        return {
            "logical_id": self.logical_id,
            "resource_type": self.resource_type,
            "status": self.status,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class StackResult:
    name: str
    layer: str
    status: Status
    outputs: dict[str, str] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    failure: Failure | None = None
    duration: float = 0.0
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status not in ("failed", "skipped")

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "layer": self.layer,
            "status": self.status,
            "outputs": dict(self.outputs),
            "changes": [c.to_dict() for c in self.changes],
            "failure": self.failure.to_dict() if self.failure else None,
            "duration": round(self.duration, 3),
            "message": self.message,
        }
