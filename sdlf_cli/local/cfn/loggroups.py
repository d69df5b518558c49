"""CloudWatch Logs fixes for `AWS::Logs::LogGroup` on moto: the KMS key is read under the API's key
(`kmsKeyId`) so `KmsKeyId` from a template was dropped, and there is no update (a changed retention would
try to recreate the group under the same name and fail). Updates are applied in place."""
from __future__ import annotations

from sdlf_cli.local.cfn._patching import wrap


def _apply(group, properties: dict) -> None:
    group.kms_key_id = properties.get("KmsKeyId")
    retention = properties.get("RetentionInDays")
    group.retention_in_days = int(retention) if retention is not None else None


def _make_create(original):
    create = original.__func__

    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        group = create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        _apply(group, cloudformation_json["Properties"])
        return group

    return classmethod(create_from_cloudformation_json)


def _update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                     account_id, region_name):
    properties = cloudformation_json["Properties"]
    if properties.get("LogGroupName", original_resource.name) != original_resource.name:
        new = cls.create_from_cloudformation_json(properties["LogGroupName"], cloudformation_json, account_id,
                                                  region_name)
        original_resource.delete(account_id, region_name)
        return new
    _apply(original_resource, properties)
    return original_resource


def install_log_group_fixes() -> None:
    from moto.logs.models import LogGroup

    wrap(LogGroup, "create_from_cloudformation_json", "logs.group-kms-key", _make_create)
    wrap(LogGroup, "update_from_cloudformation_json", "logs.group-update-in-place",
         lambda _original: classmethod(_update_from_cloudformation_json))
