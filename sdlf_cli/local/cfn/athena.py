"""Provider for AWS::Athena::WorkGroup (moto skips it), on moto's Athena backend."""
from __future__ import annotations

import copy
import time

from moto.core.common_models import CloudFormationModel

from sdlf_cli.local.cfn._provider import NamedInRegion, ProviderMixin


def _athena(account_id: str, region_name: str):
    from moto.athena.models import athena_backends

    return athena_backends[account_id][region_name]


def _configuration(props: dict) -> dict:
    return copy.deepcopy(props.get("WorkGroupConfiguration") or {})


class AthenaWorkGroup(NamedInRegion, ProviderMixin, CloudFormationModel):
    TYPE = "AWS::Athena::WorkGroup"
    NAME_PROPERTY = "Name"
    ATTRIBUTES = {
        "CreationTime": lambda self: self.creation_time,
        "WorkGroupConfiguration.EngineVersion.EffectiveEngineVersion":
            lambda self: self.work_group().configuration["EngineVersion"]["EffectiveEngineVersion"],
    }

    def __init__(self, name: str, account_id: str, region_name: str):
        super().__init__(name, account_id, region_name)
        self.creation_time = str(int(time.time()))

    def work_group(self):
        return _athena(self.account_id, self.region_name).work_groups[self.name]

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        backend = _athena(account_id, region_name)
        if resource_name in backend.work_groups:
            raise ValueError(f"WorkGroup {resource_name} already exists")
        backend.create_work_group(resource_name, _configuration(props), props.get("Description", ""),
                                  list(props.get("Tags") or []))
        if props.get("State") == "DISABLED":
            backend.work_groups[resource_name].state = "DISABLED"
        return cls(resource_name, account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                        account_id, region_name):
        props = cloudformation_json["Properties"]
        name = props.get("Name", original_resource.name)
        new = cls.renamed(original_resource, name, cloudformation_json, account_id, region_name)
        if new is not None:
            return new
        work_group = original_resource.work_group()
        configuration = _configuration(props)
        # moto fills defaults for these on create; keep them when the template leaves them out.
        for key, value in work_group.configuration.items():
            configuration.setdefault(key, value)
        work_group.configuration = configuration
        work_group.description = props.get("Description", "")
        work_group.state = props.get("State", "ENABLED")
        return original_resource

    def delete(self, account_id: str, region_name: str) -> None:
        _athena(account_id, region_name).delete_work_group(self.name)


PROVIDERS = [AthenaWorkGroup]
