"""DynamoDB fixes for `AWS::DynamoDB::Table` on moto.

moto's create ignores TimeToLiveSpecification and PointInTimeRecoverySpecification and reads SSE under the
API's key (`Enabled`) instead of CloudFormation's (`SSEEnabled`), so the catalog's TTL, PITR and KMS
encryption were silently off. moto has no update for tables either: without one, any change to a table
(a new GSI, a tag) would try to replace it under the same name and fail. Updates are applied in place.
"""
from __future__ import annotations

from typing import Any

from sdlf_cli.local.cfn._patching import wrap


def _backend(account_id: str, region_name: str):
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[account_id][region_name]


def _sse(properties: dict[str, Any]) -> dict[str, Any] | None:
    spec = properties.get("SSESpecification")
    if not spec:
        return None
    out: dict[str, Any] = {"Enabled": str(spec.get("SSEEnabled", False)).lower() == "true",
                           "SSEType": spec.get("SSEType", "KMS")}
    if spec.get("KMSMasterKeyId"):
        out["KMSMasterKeyId"] = spec["KMSMasterKeyId"]
    return out


def _apply_settings(table, properties: dict[str, Any], account_id: str, region_name: str) -> None:
    backend = _backend(account_id, region_name)
    ttl = properties.get("TimeToLiveSpecification")
    if ttl:
        backend.update_time_to_live(table.name, {"AttributeName": ttl["AttributeName"],
                                                 "Enabled": str(ttl.get("Enabled", False)).lower() == "true"})
    pitr = properties.get("PointInTimeRecoverySpecification") or {}
    backend.update_continuous_backups(table.name, {
        "PointInTimeRecoveryEnabled": str(pitr.get("PointInTimeRecoveryEnabled", False)).lower() == "true"})
    sse = _sse(properties)
    if sse is not None:
        table.sse_specification = sse
    if "DeletionProtectionEnabled" in properties:
        table.deletion_protection_enabled = str(properties["DeletionProtectionEnabled"]).lower() == "true"


def _make_create(original):
    create = original.__func__

    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = cloudformation_json["Properties"]
        api_json = dict(cloudformation_json, Properties=dict(properties, SSESpecification=_sse(properties)))
        table = create(cls, resource_name, api_json, account_id, region_name, **kwargs)
        _apply_settings(table, properties, account_id, region_name)
        return table

    return classmethod(create_from_cloudformation_json)


def _gsi_updates(table, wanted: list[dict[str, Any]]) -> list[dict[str, Any]]:
    existing = {index.name for index in table.global_indexes}
    wanted_names = {index["IndexName"] for index in wanted}
    updates: list[dict[str, Any]] = [{"Delete": {"IndexName": name}} for name in existing - wanted_names]
    updates += [{"Create": index} for index in wanted if index["IndexName"] not in existing]
    return updates


def _update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                     account_id, region_name):
    properties = cloudformation_json["Properties"]
    backend = _backend(account_id, region_name)
    name = properties.get("TableName", original_resource.name)
    if name != original_resource.name:
        # A new TableName replaces the table (the old one goes unless the template retains it).
        new = cls.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)
        return new
    billing = "PAY_PER_REQUEST" if properties.get("BillingMode") == "PAY_PER_REQUEST" else "PROVISIONED"
    backend.update_table(
        name=name,
        attr_definitions=properties.get("AttributeDefinitions"),
        global_index=_gsi_updates(original_resource, properties.get("GlobalSecondaryIndexes") or []),
        throughput=properties.get("ProvisionedThroughput"),
        billing_mode=billing,
        stream_spec=None,
        deletion_protection_enabled=None,
        warm_throughput=None,
    )
    _apply_settings(original_resource, properties, account_id, region_name)
    return original_resource


def install_table_fixes() -> None:
    from moto.dynamodb.models.table import Table

    wrap(Table, "create_from_cloudformation_json", "dynamodb.table-ttl-pitr-sse", _make_create)
    wrap(Table, "update_from_cloudformation_json", "dynamodb.table-update-in-place",
         lambda _original: classmethod(_update_from_cloudformation_json))
