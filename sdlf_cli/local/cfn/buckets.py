"""S3 fixes: bucket properties moto's CloudFormation ignores, the S3 -> EventBridge envelope, delete markers.

moto's `AWS::S3::Bucket` applies only BucketEncryption and Tags. The lake relies on versioning, public
access blocks, lifecycle, access logging, ownership controls and, above all, the bucket's EventBridge
notification (without it no event ever reaches the catalog). Those are applied here after moto creates or
updates the bucket, straight on moto's S3 backend.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
import uuid
from typing import Any

from moto.core.common_models import CloudFormationModel

from sdlf_cli.local.cfn._patching import Patch, install, wrap

log = logging.getLogger(__name__)


def _s3_backend(account_id: str, region_name: str):
    from moto.s3.models import s3_backends
    from moto.utilities.utils import get_partition

    return s3_backends[account_id][get_partition(region_name)]


# --- CloudFormation property -> moto backend -------------------------------------------------------
def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """One CloudFormation LifecycleConfiguration rule in the S3 API shape moto's `set_lifecycle` reads."""
    out: dict[str, Any] = {"ID": rule.get("Id", ""), "Status": rule["Status"]}
    tag_filters = rule.get("TagFilters") or []
    prefix = rule.get("Prefix", "")
    if tag_filters:
        out["Filter"] = {"And": {"Prefix": prefix, "Tag": [{"Key": t["Key"], "Value": t["Value"]} for t in tag_filters]}}
    else:
        out["Filter"] = {"Prefix": prefix}
    expiration: dict[str, Any] = {}
    if "ExpirationInDays" in rule:
        expiration["Days"] = int(rule["ExpirationInDays"])
    if "ExpirationDate" in rule:
        expiration["Date"] = rule["ExpirationDate"]
    if "ExpiredObjectDeleteMarker" in rule and not expiration:
        expiration["ExpiredObjectDeleteMarker"] = str(rule["ExpiredObjectDeleteMarker"]).lower()
    if expiration:
        out["Expiration"] = expiration
    transitions = list(rule.get("Transitions") or []) + ([rule["Transition"]] if "Transition" in rule else [])
    if transitions:
        out["Transition"] = [
            {k: v for k, v in {"Days": t.get("TransitionInDays"), "Date": t.get("TransitionDate"),
                                "StorageClass": t["StorageClass"]}.items() if v is not None}
            for t in transitions
        ]
    nve = rule.get("NoncurrentVersionExpiration")
    if nve is None and "NoncurrentVersionExpirationInDays" in rule:
        nve = {"NoncurrentDays": rule["NoncurrentVersionExpirationInDays"]}
    if nve:
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(nve["NoncurrentDays"])}
    nvts = list(rule.get("NoncurrentVersionTransitions") or []) + (
        [rule["NoncurrentVersionTransition"]] if "NoncurrentVersionTransition" in rule else []
    )
    if nvts:
        out["NoncurrentVersionTransition"] = [
            {"NoncurrentDays": int(t["TransitionInDays"]), "StorageClass": t["StorageClass"]} for t in nvts
        ]
    if "AbortIncompleteMultipartUpload" in rule:
        out["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        }
    return out


def _notification_config(cfn: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation NotificationConfiguration -> the dict moto's `set_notification_configuration` takes."""
    out: dict[str, Any] = {}
    if str((cfn.get("EventBridgeConfiguration") or {}).get("EventBridgeEnabled", "false")).lower() == "true":
        out["EventBridgeConfiguration"] = {}
    kinds = (("QueueConfigurations", "QueueConfiguration", "Queue"),
             ("TopicConfigurations", "TopicConfiguration", "Topic"),
             ("LambdaConfigurations", "CloudFunctionConfiguration", "Function"))
    for cfn_key, api_key, arn_key in kinds:
        items = []
        for item in cfn.get(cfn_key) or []:
            entry: dict[str, Any] = {
                "Event": [item["Event"]],
                # moto names the Lambda ARN field after the old API ("CloudFunction").
                ("CloudFunction" if arn_key == "Function" else arn_key): item[arn_key],
            }
            rules = ((item.get("Filter") or {}).get("S3Key") or {}).get("Rules") or []
            if rules:
                entry["Filter"] = {"S3Key": {"FilterRule": [{"Name": r["Name"], "Value": r["Value"]} for r in rules]}}
            items.append(entry)
        if items:
            out[api_key] = items
    return out


def apply_bucket_properties(bucket, properties: dict[str, Any], account_id: str, region_name: str) -> None:
    backend = _s3_backend(account_id, region_name)
    name = bucket.name
    versioning = properties.get("VersioningConfiguration")
    if versioning:
        backend.put_bucket_versioning(name, versioning["Status"])
    pab = properties.get("PublicAccessBlockConfiguration")
    if pab:
        backend.put_public_access_block(name, pab)
    else:
        bucket.public_access_block = None
    lifecycle = (properties.get("LifecycleConfiguration") or {}).get("Rules")
    if lifecycle:
        bucket.set_lifecycle([_lifecycle_rule(r) for r in lifecycle])
    else:
        bucket.delete_lifecycle()
    logging_cfg = properties.get("LoggingConfiguration")
    if logging_cfg:
        # AWS checks delivery permissions when logs are written, not when logging is configured (the
        # target's bucket policy is often created later in the same stack), so only the target is checked.
        target = logging_cfg.get("DestinationBucketName", name)
        backend.get_bucket(target)
        bucket.logging = {"TargetBucket": target, "TargetPrefix": logging_cfg.get("LogFilePrefix", "")}
    else:
        bucket.logging = {}
    ownership = (properties.get("OwnershipControls") or {}).get("Rules")
    bucket.ownership_rule = ownership[0]["ObjectOwnership"] if ownership else None
    notification = properties.get("NotificationConfiguration")
    bucket.set_notification_configuration(_notification_config(notification) if notification else None)


def _make_bucket_create(original):
    create = original.__func__

    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        bucket = create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        apply_bucket_properties(bucket, cloudformation_json.get("Properties") or {}, account_id, region_name)
        return bucket

    return classmethod(create_from_cloudformation_json)


def _make_bucket_update(original):
    update = original.__func__

    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                        account_id, region_name):
        bucket = update(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name)
        if bucket is original_resource:  # replaced buckets went through create (patched above)
            apply_bucket_properties(bucket, cloudformation_json.get("Properties") or {}, account_id, region_name)
        return bucket

    return classmethod(update_from_cloudformation_json)


# --- the S3 -> EventBridge event, as AWS sends it ----------------------------------------------------
_sequencer_lock = threading.Lock()
_last_sequencer = 0


def next_sequencer() -> str:
    """Strictly increasing hex sequencer, like S3's per-key ordering token (moto sends a constant)."""
    global _last_sequencer
    with _sequencer_lock:
        _last_sequencer = max(time.time_ns(), _last_sequencer + 1)
        return f"{_last_sequencer:018X}"


_REASONS = {
    "s3:ObjectCreated:Put": "PutObject",
    "s3:ObjectCreated:Post": "PostObject",
    "s3:ObjectCreated:Copy": "CopyObject",
    "s3:ObjectCreated:CompleteMultipartUpload": "CompleteMultipartUpload",
    "s3:ObjectRemoved:Delete": "DeleteObject",
    "s3:ObjectRemoved:DeleteMarkerCreated": "DeleteObject",
}


def eventbridge_event(account_id: str, bucket, event_name: str, key) -> dict[str, Any]:
    from moto.s3 import notifications

    event_name = str(getattr(event_name, "value", event_name))
    obj: dict[str, Any] = {"key": key.name}
    deletion = event_name.startswith("s3:ObjectRemoved")
    if not deletion:
        obj["size"] = key.size
        obj["etag"] = key.etag.replace('"', "")
    version_id = getattr(key, "version_id", None)
    if version_id not in (None, "null"):
        obj["version-id"] = version_id
    obj["sequencer"] = next_sequencer()
    detail: dict[str, Any] = {
        "version": "0",
        "bucket": {"name": bucket.name},
        "object": obj,
        "request-id": uuid.uuid4().hex[:16].upper(),
        "requester": account_id,
        "source-ip-address": "127.0.0.1",
        "reason": _REASONS.get(event_name, event_name.split(":")[1]),
    }
    if deletion:
        detail["deletion-type"] = (
            "Delete Marker Created" if event_name.endswith("DeleteMarkerCreated") else "Permanently Deleted"
        )
    return {
        "version": "0",
        "id": str(uuid.uuid4()),  # moto reuses one fixed id, which defeats idempotency keyed on it
        "detail-type": notifications._detail_type(event_name),
        "source": "aws.s3",
        "account": account_id,
        "time": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": bucket.region_name,
        "resources": [bucket.arn],
        "detail": detail,
    }


def _send_event_bridge_message(account_id: str, bucket, event_name: str, key) -> None:
    from moto.events.models import events_backends

    try:
        event = eventbridge_event(account_id, bucket, event_name, key)
    except Exception:  # an event type EventBridge does not carry (moto raises ValueError for those)
        log.debug("no EventBridge event for %s", event_name, exc_info=True)
        return
    bus = events_backends[account_id][bucket.region_name].event_buses.get("default")
    if bus is None:
        return
    # One failing rule must not stop delivery to the others (moto wraps them all in one try).
    for rule in list(bus.rules.values()):
        try:
            rule.send_to_targets(event, transform_input=False)
        except Exception:
            log.warning("delivering %s to rule %s failed", event["detail-type"], rule.name, exc_info=True)


def _make_delete_object(original):
    def delete_object(self, bucket_name, key_name, version_id=None, bypass=False):
        bucket = self.get_bucket(bucket_name)
        marker_expected = getattr(bucket, "is_versioned", False) and version_id is None
        result = original(self, bucket_name, key_name, version_id=version_id, bypass=bypass)
        success, meta = result
        # moto sends nothing when a versioned delete only adds a delete marker; AWS sends Object Deleted.
        if success and marker_expected and meta.get("delete-marker") == "true":
            config = bucket.notification_configuration
            if config is not None and config.event_bridge is not None:
                marker = bucket.keys.getlist(key_name)[-1]
                _send_event_bridge_message(self.account_id, bucket, "s3:ObjectRemoved:DeleteMarkerCreated", marker)
        return result

    return delete_object


S3_KEY_LIMIT = 1024  # bytes of UTF-8: AWS answers KeyTooLongError past it; moto stores any key


def _make_key_length_limit(original):
    def check(self, bucket_name, key_name, *args, **kwargs):
        if len(key_name.encode("utf-8")) > S3_KEY_LIMIT:
            from moto.s3.exceptions import S3ClientError

            raise S3ClientError("KeyTooLongError", "Your key is too long")
        return original(self, bucket_name, key_name, *args, **kwargs)

    return check


def _make_copy_key_length_limit(original):
    def copy_object(self, src_key, dest_bucket_name, dest_key_name, *args, **kwargs):
        _make_key_length_limit(lambda *_a, **_k: None)(self, dest_bucket_name, dest_key_name)
        return original(self, src_key, dest_bucket_name, dest_key_name, *args, **kwargs)

    return copy_object


def _get_bucket_notification(self):
    """moto's GetBucketNotificationConfiguration never reports EventBridgeConfiguration; AWS does."""
    from moto.core.responses import ActionResult, EmptyResult

    config = self.backend.get_bucket_notification_configuration(self.bucket_name)
    if not config:
        return self.serialized(EmptyResult())

    def build(item: Any, arn_key: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"Id": item.id, arn_key: item.arn, "Events": item.events}
        if item.filters:
            entry["Filter"] = {"Key": {"FilterRules": item.filters["S3Key"]["FilterRule"]}}
        return entry

    result: dict[str, Any] = {
        "TopicConfigurations": [build(t, "TopicArn") for t in config.topic],
        "QueueConfigurations": [build(q, "QueueArn") for q in config.queue],
        "LambdaFunctionConfigurations": [build(cf, "LambdaFunctionArn") for cf in config.cloud_function],
    }
    if config.event_bridge is not None:
        result["EventBridgeConfiguration"] = {}
    self.data["Action"] = "GetBucketNotificationConfiguration"
    return self.serialized(ActionResult(result))


# --- bucket policy evaluation ---------------------------------------------------------------------------
# What every request to the emulator looks like to a bucket policy condition. Clients reach AWS over TLS;
# the emulator's plain http on 127.0.0.1 stands in for that, so a TLS-only policy must not deny it.
REQUEST_CONTEXT = {"aws:securetransport": "true", "s3:tlsversion": "1.3"}


def _condition_holds(operator: str, key: str, expected: Any) -> bool | None:
    """True/False when the condition can be judged from REQUEST_CONTEXT, None when it cannot."""
    actual = REQUEST_CONTEXT.get(key.lower())
    values = [str(v).lower() for v in (expected if isinstance(expected, list) else [expected])]
    op = operator.removesuffix("IfExists")
    if op == "Null":
        return (actual is None) == (values[0] == "true")
    if actual is None:
        return None
    if op in ("Bool", "StringEquals", "StringEqualsIgnoreCase"):
        return actual in values
    if op in ("StringNotEquals", "StringNotEqualsIgnoreCase"):
        return actual not in values
    if op.startswith("Numeric"):
        number, limits = float(actual), [float(v) for v in values]
        compare = {"NumericEquals": number.__eq__, "NumericNotEquals": number.__ne__,
                   "NumericLessThan": number.__lt__, "NumericLessThanEquals": number.__le__,
                   "NumericGreaterThan": number.__gt__, "NumericGreaterThanEquals": number.__ge__}.get(op)
        return None if compare is None else any(compare(limit) for limit in limits)
    return None


def _statement_applies(statement: dict[str, Any]) -> bool:
    for operator, checks in (statement.get("Condition") or {}).items():
        for key, expected in checks.items():
            if _condition_holds(operator, key, expected) is not True:
                # Unmet, or about request facts the emulator does not model (source ARN, VPC, ...):
                # the statement does not apply, as AWS treats a statement whose condition is false.
                return False
    return True


def _bucket_get_permission(self, action: str, resource: str) -> Any:
    """moto's own check denies whenever a condition uses an operator it does not know (e.g. Bool), so
    the standard TLS-only Deny blocked every request. Statements are judged here with real conditions."""
    from moto.iam.access_control import IAMPolicyStatement, PermissionResult

    if self.policy is None:
        return PermissionResult.NEUTRAL
    statements = json.loads(self.policy.decode()).get("Statement", [])
    permitted = False
    for statement in statements if isinstance(statements, list) else [statements]:
        if not _statement_applies(statement):
            continue
        unconditional = {k: v for k, v in statement.items() if k != "Condition"}
        result = IAMPolicyStatement(unconditional).is_action_permitted(action, resource)
        if result == PermissionResult.DENIED:
            return result
        permitted = permitted or result == PermissionResult.PERMITTED
    return PermissionResult.PERMITTED if permitted else PermissionResult.NEUTRAL


# --- AWS::S3::BucketPolicy -------------------------------------------------------------------------
class BucketPolicy(CloudFormationModel):
    """`AWS::S3::BucketPolicy` (moto skips it): sets the bucket's policy document."""

    def __init__(self, bucket: str, document: Any, account_id: str, region_name: str):
        self.bucket = bucket
        _s3_backend(account_id, region_name).put_bucket_policy(
            bucket, (document if isinstance(document, str) else json.dumps(document)).encode()
        )

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::S3::BucketPolicy"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    @property
    def physical_resource_id(self) -> str:
        return self.bucket

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        return cls(props["Bucket"], props["PolicyDocument"], account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                        account_id, region_name):
        props = cloudformation_json["Properties"]
        if props["Bucket"] != original_resource.bucket:
            original_resource.delete(account_id, region_name)
        return cls(props["Bucket"], props["PolicyDocument"], account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        backend = _s3_backend(account_id, region_name)
        if resource_name in backend.buckets:
            backend.delete_bucket_policy(resource_name)

    def delete(self, account_id: str, region_name: str) -> None:
        self.delete_from_cloudformation_json(self.bucket, {}, account_id, region_name)


PROVIDERS = [BucketPolicy]


def install_bucket_fixes() -> None:
    from moto.s3 import models, notifications

    wrap(models.FakeBucket, "create_from_cloudformation_json", "s3.bucket-cfn-properties.create", _make_bucket_create)
    wrap(models.FakeBucket, "update_from_cloudformation_json", "s3.bucket-cfn-properties.update", _make_bucket_update)
    install(Patch("s3.eventbridge-envelope", notifications, "_send_event_bridge_message", _send_event_bridge_message))
    wrap(models.S3Backend, "delete_object", "s3.delete-marker-event", _make_delete_object)
    install(Patch("s3.bucket-policy-conditions", models.FakeBucket, "get_permission", _bucket_get_permission))
    wrap(models.S3Backend, "put_object", "s3.key-length-limit.put", _make_key_length_limit)
    wrap(models.S3Backend, "create_multipart_upload", "s3.key-length-limit.multipart", _make_key_length_limit)
    wrap(models.S3Backend, "copy_object", "s3.key-length-limit.copy", _make_copy_key_length_limit)
    from moto.s3.responses import S3Response

    install(Patch("s3.get-notification-reports-eventbridge", S3Response, "get_bucket_notification",
                  _get_bucket_notification))
