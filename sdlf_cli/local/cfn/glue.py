"""Providers for AWS::Glue::Database, Table, Job, Crawler and SecurityConfiguration (moto skips them).

They write to moto's Glue backend, so `glue:GetDatabase`, `StartJobRun`, `StartCrawler` etc. see what the
template declared. moto's backend has no UpdateJob/UpdateCrawler: updates set the stored fields in place
(jobs keep their run history) or recreate the crawler.
"""
from __future__ import annotations

from typing import Any, ClassVar

from moto.core.common_models import CloudFormationModel

from sdlf_cli.local.cfn._provider import NamedInRegion, ProviderMixin, tags_dict


def _glue(account_id: str, region_name: str):
    from moto.glue.models import glue_backends

    return glue_backends[account_id][region_name]


class _NamedGlueResource(ProviderMixin):
    """A Glue resource known by its `Name`, kept in the backend's COLLECTION and removed by its DELETE
    method. An update replaces it (subclasses that can update in place override that)."""

    NAME_PROPERTY = "Name"
    ATTRIBUTES: dict = {}
    COLLECTION: ClassVar[str] = ""
    DELETE: ClassVar[str] = ""

    def __init__(self, name: str):
        self.name = name

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                        account_id, region_name):
        name = cloudformation_json["Properties"].get("Name", original_resource.name)
        return cls.replace(original_resource, name, cloudformation_json, account_id, region_name)

    def delete(self, account_id: str, region_name: str) -> None:
        backend = _glue(account_id, region_name)
        if self.name in getattr(backend, self.COLLECTION):
            getattr(backend, self.DELETE)(self.name)


class GlueDatabase(NamedInRegion, ProviderMixin, CloudFormationModel):
    TYPE = "AWS::Glue::Database"
    ATTRIBUTES: dict = {}

    @staticmethod
    def _input(props: dict[str, Any], resource_name: str) -> tuple[str, dict[str, Any]]:
        database_input = dict(props.get("DatabaseInput") or {})
        name = props.get("DatabaseName") or database_input.get("Name") or resource_name.replace("-", "_").lower()
        database_input["Name"] = name
        return name, database_input

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        name, database_input = cls._input(cloudformation_json["Properties"], resource_name)
        _glue(account_id, region_name).create_database(name, database_input)
        return cls(name, account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                        account_id, region_name):
        name, database_input = cls._input(cloudformation_json["Properties"], original_resource.name)
        new = cls.renamed(original_resource, name, cloudformation_json, account_id, region_name)
        if new is not None:
            return new
        _glue(account_id, region_name).update_database(name, database_input)
        return original_resource

    def delete(self, account_id: str, region_name: str) -> None:
        backend = _glue(account_id, region_name)
        if self.name in backend.databases:
            backend.delete_database(self.name)


class GlueTable(ProviderMixin, CloudFormationModel):
    TYPE = "AWS::Glue::Table"
    ATTRIBUTES: dict = {}

    def __init__(self, database: str, name: str):
        self.database = database
        self.name = name

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @staticmethod
    def _input(props: dict[str, Any], resource_name: str) -> tuple[str, str, dict[str, Any]]:
        table_input = dict(props["TableInput"])
        name = table_input.get("Name") or resource_name.replace("-", "_").lower()
        table_input["Name"] = name
        return props["DatabaseName"], name, table_input

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        database, name, table_input = cls._input(props, resource_name)
        _glue(account_id, region_name).create_table(database, name, table_input, props.get("OpenTableFormatInput"))
        return cls(database, name)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                        account_id, region_name):
        database, name, table_input = cls._input(cloudformation_json["Properties"], original_resource.name)
        if (database, name) != (original_resource.database, original_resource.name):
            new = cls.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)
            original_resource.delete(account_id, region_name)
            return new
        _glue(account_id, region_name).update_table(database, name, table_input)
        return original_resource

    def delete(self, account_id: str, region_name: str) -> None:
        backend = _glue(account_id, region_name)
        database = backend.databases.get(self.database)
        if database is not None and self.name in database.tables:
            backend.delete_table(self.database, self.name)


# CloudFormation property -> (create_job keyword, FakeJob attribute)
_JOB_FIELDS = {
    "Role": "role", "Command": "command", "Description": "description", "LogUri": "log_uri",
    "ExecutionProperty": "execution_property", "DefaultArguments": "default_arguments",
    "NonOverridableArguments": "non_overridable_arguments", "Connections": "connections",
    "MaxRetries": "max_retries", "AllocatedCapacity": "allocated_capacity", "Timeout": "timeout",
    "MaxCapacity": "max_capacity", "SecurityConfiguration": "security_configuration",
    "NotificationProperty": "notification_property", "GlueVersion": "glue_version",
    "NumberOfWorkers": "number_of_workers", "WorkerType": "worker_type", "ExecutionClass": "execution_class",
}


class GlueJob(_NamedGlueResource, CloudFormationModel):
    TYPE = "AWS::Glue::Job"
    COLLECTION, DELETE = "jobs", "delete_job"

    @staticmethod
    def _fields(props: dict[str, Any]) -> dict[str, Any]:
        fields = {attr: props.get(prop) for prop, attr in _JOB_FIELDS.items()}
        for number in ("max_retries", "allocated_capacity", "timeout", "number_of_workers"):
            if fields[number] is not None:
                fields[number] = int(fields[number])
        if fields["max_capacity"] is not None:
            fields["max_capacity"] = float(fields["max_capacity"])
        return fields

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        backend = _glue(account_id, region_name)
        if resource_name in backend.jobs:
            from moto.glue.exceptions import AlreadyExistsException

            raise AlreadyExistsException(f"Job {resource_name} already exists")
        backend.create_job(
            name=resource_name, tags=tags_dict(props.get("Tags")), code_gen_configuration_nodes=None,
            source_control_details=None, **cls._fields(props),
        )
        return cls(resource_name)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                        account_id, region_name):
        props = cloudformation_json["Properties"]
        name = props.get("Name", original_resource.name)
        new = cls.renamed(original_resource, name, cloudformation_json, account_id, region_name)
        if new is not None:
            return new
        job = _glue(account_id, region_name).get_job(name)
        from moto.core.utils import utcnow

        for attr, value in cls._fields(props).items():
            if value is None and attr in ("execution_property", "default_arguments"):
                value = {}  # what moto's FakeJob stores for "not set"
            setattr(job, attr, value)
        job.execution_class = job.execution_class or "STANDARD"
        job.last_modified_on = utcnow()
        return original_resource


class GlueCrawler(_NamedGlueResource, CloudFormationModel):
    TYPE = "AWS::Glue::Crawler"
    COLLECTION, DELETE = "crawlers", "delete_crawler"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        _glue(account_id, region_name).create_crawler(
            name=resource_name,
            role=props["Role"],
            database_name=props.get("DatabaseName"),
            description=props.get("Description"),
            targets=props["Targets"],
            schedule=(props.get("Schedule") or {}).get("ScheduleExpression"),
            classifiers=props.get("Classifiers") or [],
            table_prefix=props.get("TablePrefix"),
            schema_change_policy=props.get("SchemaChangePolicy"),
            recrawl_policy=props.get("RecrawlPolicy"),
            lineage_configuration=None,
            configuration=props.get("Configuration"),
            crawler_security_configuration=props.get("CrawlerSecurityConfiguration"),
            tags=tags_dict(props.get("Tags")),
        )
        return cls(resource_name)


class GlueSecurityConfiguration(_NamedGlueResource, CloudFormationModel):
    """Every property of a security configuration requires replacement in AWS."""

    TYPE = "AWS::Glue::SecurityConfiguration"
    COLLECTION, DELETE = "security_configurations", "delete_security_configuration"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        _glue(account_id, region_name).create_security_configuration(resource_name, props["EncryptionConfiguration"])
        return cls(resource_name)


PROVIDERS = [GlueDatabase, GlueTable, GlueJob, GlueCrawler, GlueSecurityConfiguration]
