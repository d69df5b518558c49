"""KMS fix for `AWS::KMS::Key` on moto: the template's `KeyPolicy` (a mapping) was stored as is, where the API
stores the policy document as JSON text, so DescribeKey, ScheduleKeyDeletion and every other call that checks
the policy failed with a 500 on keys CloudFormation made. The policy is stored as JSON text."""
from __future__ import annotations

import json

from sdlf_cli.local.cfn._patching import wrap


def _make_create(original):
    create = original.__func__

    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = cloudformation_json.get("Properties") or {}
        if isinstance(properties.get("KeyPolicy"), dict):
            properties = {**properties, "KeyPolicy": json.dumps(properties["KeyPolicy"])}
            cloudformation_json = {**cloudformation_json, "Properties": properties}
        return create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)

    return classmethod(create_from_cloudformation_json)


def install_key_fixes() -> None:
    from moto.kms.models import Key

    wrap(Key, "create_from_cloudformation_json", "kms.key-policy-as-json-text", _make_create)
