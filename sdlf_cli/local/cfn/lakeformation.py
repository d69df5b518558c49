"""Providers for AWS::LakeFormation::DataLakeSettings, Resource, Permissions, PrincipalPermissions.

moto skips them; these write to moto's Lake Formation backend so `GetDataLakeSettings`, `ListResources` and
`ListPermissions` show what the templates granted. (moto does not enforce grants; neither do we.)
"""
from __future__ import annotations

import copy
import json
from typing import Any

from moto.core.common_models import CloudFormationModel

from sdlf_cli.local.cfn._provider import ProviderMixin


def _lf(account_id: str, region_name: str):
    from moto.lakeformation.models import lakeformation_backends

    return lakeformation_backends[account_id][region_name]


# --- AWS::LakeFormation::DataLakeSettings ------------------------------------------------------------------
_SETTING_FIELDS = (
    "CreateDatabaseDefaultPermissions", "CreateTableDefaultPermissions", "TrustedResourceOwners",
    "AllowExternalDataFiltering", "ExternalDataFilteringAllowList", "AuthorizedSessionTagValueList",
    "Parameters", "AllowFullTableExternalDataAccess", "ReadOnlyAdmins",
)


class DataLakeSettings(ProviderMixin, CloudFormationModel):
    TYPE = "AWS::LakeFormation::DataLakeSettings"
    ATTRIBUTES: dict = {}

    def __init__(self, resource_name: str, account_id: str, previous: dict[str, Any] | None):
        self.resource_name = resource_name
        self.account_id = account_id
        self.previous = previous  # restored on delete

    @property
    def physical_resource_id(self) -> str:
        return self.resource_name

    @staticmethod
    def _apply(props: dict[str, Any], account_id: str, region_name: str) -> None:
        backend = _lf(account_id, region_name)
        current = copy.deepcopy(backend.settings.get(account_id) or {})
        admins = [a if isinstance(a, dict) else {"DataLakePrincipalIdentifier": a} for a in props.get("Admins") or []]
        if props.get("MutationType", "REPLACE") == "APPEND":
            known = {a["DataLakePrincipalIdentifier"] for a in current.get("DataLakeAdmins", [])}
            admins = current.get("DataLakeAdmins", []) + [a for a in admins if a["DataLakePrincipalIdentifier"] not in known]
            settings = current
        else:
            settings = {}
        settings["DataLakeAdmins"] = admins
        for field in _SETTING_FIELDS:
            if field in props:
                value = props[field]
                settings[field] = json.loads(value) if field == "Parameters" and isinstance(value, str) else value
        backend.put_data_lake_settings(account_id, settings)

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        previous = copy.deepcopy(_lf(account_id, region_name).settings.get(account_id))
        cls._apply(cloudformation_json["Properties"], account_id, region_name)
        return cls(resource_name, account_id, previous)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                        account_id, region_name):
        cls._apply(cloudformation_json["Properties"], account_id, region_name)
        return original_resource

    def delete(self, account_id: str, region_name: str) -> None:
        backend = _lf(account_id, region_name)
        if self.previous is None:
            backend.settings.pop(account_id, None)
        else:
            backend.put_data_lake_settings(account_id, self.previous)


# --- AWS::LakeFormation::Resource ----------------------------------------------------------------------------
class LakeFormationResource(ProviderMixin, CloudFormationModel):
    TYPE = "AWS::LakeFormation::Resource"
    ATTRIBUTES: dict = {}

    def __init__(self, resource_arn: str):
        self.resource_arn = resource_arn

    @property
    def physical_resource_id(self) -> str:
        return self.resource_arn

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        role_arn = props.get("RoleArn")
        if not role_arn and str(props.get("UseServiceLinkedRole", "false")).lower() == "true":
            role_arn = f"arn:aws:iam::{account_id}:role/aws-service-role/lakeformation.amazonaws.com/AWSServiceRoleForLakeFormationDataAccess"
        _lf(account_id, region_name).register_resource(props["ResourceArn"], role_arn)
        return cls(props["ResourceArn"])

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                        account_id, region_name):
        return cls.replace(original_resource, new_resource_name, cloudformation_json, account_id, region_name)

    def delete(self, account_id: str, region_name: str) -> None:
        backend = _lf(account_id, region_name)
        if self.resource_arn in backend.resources:
            backend.deregister_resource(self.resource_arn)


# --- grants -----------------------------------------------------------------------------------------------------
def api_resource(cfn: dict[str, Any], account_id: str) -> dict[str, Any]:
    """AWS::LakeFormation::Permissions `Resource` (…Resource keys) -> the Lake Formation API shape."""
    if "DatabaseResource" in cfn:
        db = cfn["DatabaseResource"]
        return {"Database": {"CatalogId": db.get("CatalogId", account_id), "Name": db["Name"]}}
    if "TableResource" in cfn:
        t = cfn["TableResource"]
        table: dict[str, Any] = {"CatalogId": t.get("CatalogId", account_id), "DatabaseName": t["DatabaseName"]}
        if "TableWildcard" in t:
            table["TableWildcard"] = {}
        else:
            table["Name"] = t["Name"]
        return {"Table": table}
    if "TableWithColumnsResource" in cfn:
        t = cfn["TableWithColumnsResource"]
        out = {"CatalogId": t.get("CatalogId", account_id), "DatabaseName": t["DatabaseName"], "Name": t["Name"]}
        if "ColumnNames" in t:
            out["ColumnNames"] = t["ColumnNames"]
        if "ColumnWildcard" in t:
            out["ColumnWildcard"] = t["ColumnWildcard"] or {}
        return {"TableWithColumns": out}
    if "DataLocationResource" in cfn:
        loc = cfn["DataLocationResource"]
        return {"DataLocation": {"CatalogId": loc.get("CatalogId", account_id), "ResourceArn": loc["S3Resource"]}}
    raise ValueError(f"unsupported Lake Formation resource {sorted(cfn)}")


class _Grant:
    """One (principal, resource, permissions) grant held by a stack."""

    def __init__(self, resource_id: str, catalog_id: str, principal: dict[str, str], resource: dict[str, Any],
                 permissions: list[str], grantable: list[str]):
        self.resource_id = resource_id
        self.catalog_id = catalog_id
        self.principal = principal
        self.resource = resource
        self.permissions = permissions
        self.grantable = grantable

    @property
    def physical_resource_id(self) -> str:
        return self.resource_id

    @classmethod
    def granted(cls, resource_id: str, catalog_id: str, principal: dict[str, str], resource: dict[str, Any],
                props: dict[str, Any], account_id: str, region_name: str) -> "_Grant":
        """The grant of the template's Permissions / PermissionsWithGrantOption, made in Lake Formation."""
        grant = cls(
            resource_id, catalog_id, principal, resource,
            list(props.get("Permissions") or []), list(props.get("PermissionsWithGrantOption") or []),
        )
        grant.grant(account_id, region_name)
        return grant

    def grant(self, account_id: str, region_name: str) -> None:
        _lf(account_id, region_name).grant_permissions(
            self.catalog_id, self.principal, copy.deepcopy(self.resource), list(self.permissions), list(self.grantable)
        )

    def delete(self, account_id: str, region_name: str) -> None:
        _lf(account_id, region_name).revoke_permissions(
            self.catalog_id, self.principal, copy.deepcopy(self.resource), list(self.permissions), list(self.grantable)
        )


class LakeFormationPermissions(_Grant, ProviderMixin, CloudFormationModel):
    TYPE = "AWS::LakeFormation::Permissions"
    ATTRIBUTES: dict = {}

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        return cls.granted(
            resource_name, account_id, dict(props["DataLakePrincipal"]), api_resource(props["Resource"], account_id),
            props, account_id, region_name,
        )

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                        account_id, region_name):
        return cls.replace(original_resource, original_resource.resource_id, cloudformation_json, account_id, region_name)


class LakeFormationPrincipalPermissions(_Grant, ProviderMixin, CloudFormationModel):
    TYPE = "AWS::LakeFormation::PrincipalPermissions"
    ATTRIBUTES = {
        "PrincipalIdentifier": lambda self: self.principal["DataLakePrincipalIdentifier"],
        "ResourceIdentifier": lambda self: json.dumps(self.resource, sort_keys=True),
    }

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        resource = copy.deepcopy(props["Resource"])  # already in the API shape
        principal = dict(props["Principal"])
        return cls.granted(
            f"{principal['DataLakePrincipalIdentifier']}|{json.dumps(resource, sort_keys=True)}",
            props.get("Catalog", account_id), principal, resource, props, account_id, region_name,
        )

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                        account_id, region_name):
        # Every property requires replacement in AWS.
        return cls.replace(original_resource, new_resource_name, cloudformation_json, account_id, region_name)


PROVIDERS = [DataLakeSettings, LakeFormationResource, LakeFormationPermissions, LakeFormationPrincipalPermissions]
