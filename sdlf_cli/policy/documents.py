"""The policy documents a parsed template holds (cfn-flip's loader: short tags as {"Ref": ...})."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PolicyDocument:
    resource: str  # logical id of the resource that holds it
    kind: str  # "identity", "boundary", "trust", "resource" (bucket, queue, topic) or "key"
    document: dict


def documents(template: dict) -> list[PolicyDocument]:
    found: list[PolicyDocument] = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        kind, props = resource.get("Type"), resource.get("Properties") or {}
        if kind == "AWS::IAM::Role":
            found.append(PolicyDocument(logical_id, "trust", props["AssumeRolePolicyDocument"]))
            found += [PolicyDocument(logical_id, "identity", p["PolicyDocument"]) for p in props.get("Policies", [])]
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            found.append(PolicyDocument(logical_id, "identity", props["PolicyDocument"]))
        elif kind in ("AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"):
            found.append(PolicyDocument(logical_id, "resource", props["PolicyDocument"]))
        elif kind == "AWS::KMS::Key":
            found.append(PolicyDocument(logical_id, "key", props["KeyPolicy"]))
    return found


def statements(document: dict) -> list[dict]:
    value = document.get("Statement", [])
    return value if isinstance(value, list) else [value]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]
