"""Providers for AWS::CodePipeline::Pipeline, AWS::CodeBuild::Project and the CodeConnections /
CodeStar Connections connections (moto has no CloudFormation model for any of them).

Pipelines and projects are written to moto's CodePipeline and CodeBuild backends in the API's shape
(camelCase; `BuildSpec` -> `buildspec`), so `codepipeline:GetPipeline` and `codebuild:BatchGetProjects`
show what the template declared. moto has no connections service: connections live in `CONNECTIONS` and
stay PENDING, as a connection does on AWS until someone completes its handshake with the git host.
"""
from __future__ import annotations

import json
import threading
import uuid
from typing import Any

from moto.core.common_models import CloudFormationModel

from sdlf_cli.local.cfn._provider import NamedInRegion, ProviderMixin


class PipelineDefinitionError(ValueError):
    """A pipeline or project the service would refuse (message names the field)."""


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def api_shape(value: Any, renames: dict[str, str] | None = None, opaque: frozenset[str] = frozenset()) -> Any:
    """CloudFormation's PascalCase properties -> the API's camelCase members; `opaque` members
    (e.g. an action's Configuration) keep their keys."""
    renames = renames or {}
    if isinstance(value, list):
        return [api_shape(v, renames, opaque) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        name = renames.get(key, _camel(key))
        out[name] = item if key in opaque else api_shape(item, renames, opaque)
    return out


def _configuration_value(value: Any) -> str:
    # The API's action configuration is a map of strings; templates often write booleans/numbers.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


# --- AWS::CodePipeline::Pipeline -----------------------------------------------------------------------------
def _codepipeline(account_id: str, region_name: str):
    from moto.codepipeline.models import codepipeline_backends

    return codepipeline_backends[account_id][region_name]


def _trusts(account_id: str, region_name: str, role_arn: str, service: str) -> bool:
    """Whether the role exists and lets `service` assume it (a name or an ARN; Principal as string or list)."""
    from moto.iam.models import iam_backends
    from moto.utilities.utils import get_partition

    backend = iam_backends[account_id][get_partition(region_name)]
    try:
        role = backend.get_role_by_arn(role_arn) if role_arn.startswith("arn:") else backend.get_role(role_arn)
    except Exception:
        return False
    statements = json.loads(role.assume_role_policy_document).get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    for statement in statements:
        services = (statement.get("Principal") or {}).get("Service", [])
        services = [services] if isinstance(services, str) else services
        if statement.get("Effect") == "Allow" and service in services:
            return True
    return False


def pipeline_declaration(name: str, props: dict[str, Any], account_id: str, region_name: str) -> dict[str, Any]:
    """The API's PipelineDeclaration for a template's pipeline properties (validated as AWS does)."""
    if "RoleArn" not in props:
        raise PipelineDefinitionError(f"pipeline {name}: RoleArn is required")
    if not _trusts(account_id, region_name, props["RoleArn"], "codepipeline.amazonaws.com"):
        raise PipelineDefinitionError(
            f"pipeline {name}: CodePipeline is not authorized to perform AssumeRole on role {props['RoleArn']} "
            "(the role must exist and trust codepipeline.amazonaws.com)")
    stages = props.get("Stages") or []
    if len(stages) < 2:
        raise PipelineDefinitionError(f"pipeline {name}: {len(stages)} stage(s); a pipeline needs at least 2")
    if not props.get("ArtifactStore") and not props.get("ArtifactStores"):
        raise PipelineDefinitionError(f"pipeline {name}: ArtifactStore (or ArtifactStores) is required")
    declaration = api_shape({k: v for k, v in props.items()
                             if k not in ("Name", "Tags", "RestartExecutionOnUpdate", "DisableInboundStageTransitions")},
                            opaque=frozenset({"Configuration"}))
    declaration["name"] = name
    declaration.setdefault("pipelineType", "V1")
    declaration.setdefault("executionMode", "SUPERSEDED")
    seen_actions: set[str] = set()
    for stage in declaration["stages"]:
        if not stage.get("actions"):
            raise PipelineDefinitionError(f"pipeline {name}: stage {stage.get('name')} has no actions")
        for action in stage["actions"]:
            action["configuration"] = {k: _configuration_value(v)
                                       for k, v in (action.get("configuration") or {}).items()}
            if "runOrder" in action:
                action["runOrder"] = int(action["runOrder"])
            seen_actions.add(action["name"])
    first = declaration["stages"][0]["actions"]
    if any(a["actionTypeId"]["category"] != "Source" for a in first):
        raise PipelineDefinitionError(f"pipeline {name}: the first stage may contain only Source actions")
    _check_artifacts_and_names(name, declaration)
    if declaration["pipelineType"] != "V2":
        for v2_only in ("variables", "triggers"):
            if declaration.get(v2_only):
                raise PipelineDefinitionError(f"pipeline {name}: {v2_only.title()} need PipelineType V2")
    return declaration


def _check_artifacts_and_names(name: str, declaration: dict[str, Any]) -> None:
    """What CodePipeline validates on create/update: unique stage, action, namespace and output artifact
    names, and every input artifact produced earlier (an earlier stage, or a lower runOrder)."""
    produced: dict[str, tuple[int, int]] = {}  # artifact -> (stage index, runOrder)
    stages: set[str] = set()
    namespaces: set[str] = set()
    for index, stage in enumerate(declaration["stages"]):
        if stage["name"] in stages:
            raise PipelineDefinitionError(f"pipeline {name}: stage name {stage['name']} is used twice")
        stages.add(stage["name"])
        actions: set[str] = set()
        for action in stage["actions"]:
            where = f"pipeline {name}: stage {stage['name']} action {action['name']}"
            if action["name"] in actions:
                raise PipelineDefinitionError(f"{where}: the action name is used twice in the stage")
            actions.add(action["name"])
            namespace = action.get("namespace")
            if namespace:
                if namespace in namespaces or namespace in ("codepipeline", "variables"):
                    raise PipelineDefinitionError(f"{where}: namespace {namespace} is already in use")
                namespaces.add(namespace)
            for artifact in action.get("outputArtifacts") or []:
                if artifact["name"] in produced:
                    raise PipelineDefinitionError(
                        f"{where}: output artifact {artifact['name']} is already produced by another action")
                produced[artifact["name"]] = (index, int(action.get("runOrder", 1)))
    for index, stage in enumerate(declaration["stages"]):
        for action in stage["actions"]:
            order = int(action.get("runOrder", 1))
            for artifact in action.get("inputArtifacts") or []:
                source = produced.get(artifact["name"])
                if source is None or source >= (index, order):
                    raise PipelineDefinitionError(
                        f"pipeline {name}: stage {stage['name']} action {action['name']}: input artifact "
                        f"{artifact['name']} is not the output of an earlier action (an earlier stage, or a "
                        "lower RunOrder in this stage)")


def _tags(props: dict[str, Any]) -> list[dict[str, str]]:
    return [{"key": t["Key"], "value": t["Value"]} for t in props.get("Tags") or []]


class CodePipelinePipeline(NamedInRegion, ProviderMixin, CloudFormationModel):
    TYPE = "AWS::CodePipeline::Pipeline"
    NAME_PROPERTY = "Name"
    ATTRIBUTES = {"Version": lambda self: str(_codepipeline(self.account_id, self.region_name)
                                              .pipelines[self.name].pipeline["version"])}

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        from moto.codepipeline.exceptions import InvalidStructureException
        from moto.codepipeline.models import CodePipeline

        props = cloudformation_json["Properties"]
        backend = _codepipeline(account_id, region_name)
        if resource_name in backend.pipelines:
            raise InvalidStructureException(
                f"A pipeline with the name '{resource_name}' already exists in account '{account_id}'")
        declaration = pipeline_declaration(resource_name, props, account_id, region_name)
        pipeline = CodePipeline(account_id, region_name, declaration)
        tags = _tags(props)
        pipeline.validate_tags(tags)
        pipeline.tags.update({t["key"]: t["value"] for t in tags})
        backend.pipelines[resource_name] = pipeline
        for hook in PIPELINE_CREATED_HOOKS:  # AWS starts a first execution when a pipeline is created
            hook(account_id, region_name, resource_name)
        return cls(resource_name, account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                        account_id, region_name):
        props = cloudformation_json["Properties"]
        name = props.get("Name", original_resource.name)
        new = cls.renamed(original_resource, name, cloudformation_json, account_id, region_name)
        if new is not None:
            return new
        backend = _codepipeline(account_id, region_name)
        declaration = pipeline_declaration(name, props, account_id, region_name)
        current = {k: v for k, v in backend.pipelines[name].pipeline.items() if k != "version"}
        if backend.pipelines[name].add_default_values(json.loads(json.dumps(declaration))) != current:
            backend.update_pipeline(declaration)  # the version moves only when the declaration changes, as on AWS
        pipeline = backend.pipelines[name]
        pipeline.tags = {t["key"]: t["value"] for t in _tags(props)}
        if str(props.get("RestartExecutionOnUpdate", "false")).lower() == "true":
            for hook in PIPELINE_CREATED_HOOKS:
                hook(account_id, region_name, name, "update")
        return original_resource

    def delete(self, account_id: str, region_name: str) -> None:
        _codepipeline(account_id, region_name).delete_pipeline(self.name)


# Called with (account_id, region_name, pipeline name[, "update"]) after a pipeline is created through
# CloudFormation (or updated with RestartExecutionOnUpdate); the runtime's executor starts an execution.
PIPELINE_CREATED_HOOKS: list[Any] = []


# --- AWS::CodeBuild::Project ---------------------------------------------------------------------------------
def _codebuild(account_id: str, region_name: str):
    from moto.codebuild.models import codebuild_backends

    return codebuild_backends[account_id][region_name]


_PROJECT_RENAMES = {"BuildSpec": "buildspec", "S3Logs": "s3Logs"}


def project_fields(name: str, props: dict[str, Any], account_id: str, region_name: str) -> dict[str, Any]:
    """The API's project members for a template's project properties."""
    for required in ("Source", "Artifacts", "Environment", "ServiceRole"):
        if required not in props:
            raise PipelineDefinitionError(f"CodeBuild project {name}: {required} is required")
    shaped = api_shape(props, _PROJECT_RENAMES)
    environment = shaped["environment"]
    for field in ("type", "image", "computeType"):
        if field not in environment:
            raise PipelineDefinitionError(f"CodeBuild project {name}: Environment.{_camel(field).title()} is required")
    for variable in environment.get("environmentVariables") or []:
        variable.setdefault("type", "PLAINTEXT")
        variable["value"] = _configuration_value(variable.get("value", ""))
    cache = shaped.get("cache") or {}
    if cache.get("type") == "S3" and not cache.get("location"):
        raise PipelineDefinitionError(f"CodeBuild project {name}: Cache.Location is required for an S3 cache "
                                      "(bucket or bucket/prefix)")
    source_type = shaped["source"].get("type")
    if not _trusts(account_id, region_name, shaped["serviceRole"], "codebuild.amazonaws.com"):
        raise PipelineDefinitionError(
            f"CodeBuild project {name}: CodeBuild is not authorized to perform: sts:AssumeRole on "
            f"{shaped['serviceRole']} (the role must exist and trust codebuild.amazonaws.com)")
    if source_type == "CODEPIPELINE" and shaped["artifacts"].get("type") != "CODEPIPELINE":
        raise PipelineDefinitionError(
            f"CodeBuild project {name}: a CODEPIPELINE source needs Artifacts.Type CODEPIPELINE")
    return shaped


class CodeBuildProject(NamedInRegion, ProviderMixin, CloudFormationModel):
    TYPE = "AWS::CodeBuild::Project"
    NAME_PROPERTY = "Name"
    ATTRIBUTES = {"Arn": lambda self: _codebuild(self.account_id, self.region_name).codebuild_projects[self.name].arn}

    @staticmethod
    def _write(name: str, props: dict[str, Any], account_id: str, region_name: str) -> None:
        fields = project_fields(name, props, account_id, region_name)
        backend = _codebuild(account_id, region_name)
        history = backend.build_history.get(name, [])
        backend.create_project(
            project_name=name, description=fields.get("description"), project_source=fields["source"],
            artifacts=fields["artifacts"], environment=fields["environment"], service_role=fields["serviceRole"],
            tags=[{"key": t["key"], "value": t["value"]} for t in fields.get("tags") or []],
            cache=fields.get("cache"), timeout=int(fields.get("timeoutInMinutes", 60)),
            queued_timeout=int(fields.get("queuedTimeoutInMinutes", 480)), source_version=fields.get("sourceVersion"),
            logs_config=fields.get("logsConfig"), vpc_config=fields.get("vpcConfig"),
        )
        backend.build_history[name] = history  # an update keeps the project's builds
        metadata = backend.codebuild_projects[name].project_metadata
        if fields.get("encryptionKey"):
            metadata["encryptionKey"] = fields["encryptionKey"]
        for member in ("secondaryArtifacts", "secondarySources", "concurrentBuildLimit", "visibility"):
            if member in fields:
                metadata[member] = fields[member]
        metadata.setdefault("logsConfig", {"cloudWatchLogs": {"status": "ENABLED"},
                                           "s3Logs": {"status": "DISABLED"}})

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        backend = _codebuild(account_id, region_name)
        if resource_name in backend.codebuild_projects:
            from moto.codebuild.exceptions import ResourceAlreadyExistsException

            raise ResourceAlreadyExistsException(f"Project already exists: {resource_name}")
        cls._write(resource_name, cloudformation_json["Properties"], account_id, region_name)
        return cls(resource_name, account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                        account_id, region_name):
        props = cloudformation_json["Properties"]
        name = props.get("Name", original_resource.name)
        new = cls.renamed(original_resource, name, cloudformation_json, account_id, region_name)
        if new is not None:
            return new
        cls._write(name, props, account_id, region_name)
        return original_resource

    def delete(self, account_id: str, region_name: str) -> None:
        _codebuild(account_id, region_name).delete_project(self.name)


# --- connections -----------------------------------------------------------------------------------------------
CONNECTIONS: dict[str, dict[str, Any]] = {}  # connection ARN -> its description (GetConnection's shape)
_connections_lock = threading.Lock()


class _Connection(ProviderMixin):
    SERVICE = ""
    NAME_PROPERTY = ""

    def __init__(self, arn: str):
        self.arn = arn

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        if not props.get("ConnectionName"):
            raise PipelineDefinitionError(f"{cls.TYPE} {resource_name}: ConnectionName is required")
        if not props.get("ProviderType") and not props.get("HostArn"):
            raise PipelineDefinitionError(f"{cls.TYPE} {resource_name}: ProviderType or HostArn is required")
        arn = f"arn:aws:{cls.SERVICE}:{region_name}:{account_id}:connection/{uuid.uuid4()}"
        with _connections_lock:
            CONNECTIONS[arn] = {
                "ConnectionName": props["ConnectionName"], "ConnectionArn": arn,
                "ProviderType": props.get("ProviderType", "GitHubEnterpriseServer"), "OwnerAccountId": account_id,
                "ConnectionStatus": "PENDING", **({"HostArn": props["HostArn"]} if props.get("HostArn") else {}),
            }
        return cls(arn)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                        account_id, region_name):
        props = cloudformation_json["Properties"]
        current = CONNECTIONS.get(original_resource.arn, {})
        if (props.get("ConnectionName"), props.get("ProviderType", current.get("ProviderType"))) == (
                current.get("ConnectionName"), current.get("ProviderType")):
            return original_resource  # only tags changed
        return cls.replace(original_resource, new_resource_name, cloudformation_json, account_id, region_name)

    def delete(self, account_id: str, region_name: str) -> None:
        with _connections_lock:
            CONNECTIONS.pop(self.arn, None)


def _connection_attribute(field: str):
    return lambda self: CONNECTIONS[self.arn][field]


_CONNECTION_ATTRIBUTES = {name: _connection_attribute(name)
                          for name in ("ConnectionArn", "ConnectionStatus", "OwnerAccountId", "ProviderType")}


class CodeConnectionsConnection(_Connection, CloudFormationModel):
    TYPE = "AWS::CodeConnections::Connection"
    SERVICE = "codeconnections"
    ATTRIBUTES = _CONNECTION_ATTRIBUTES


class CodeStarConnectionsConnection(_Connection, CloudFormationModel):
    TYPE = "AWS::CodeStarConnections::Connection"
    SERVICE = "codestar-connections"
    ATTRIBUTES = _CONNECTION_ATTRIBUTES


PROVIDERS = [CodePipelinePipeline, CodeBuildProject, CodeConnectionsConnection, CodeStarConnectionsConnection]
