"""Step Functions fixes for `AWS::StepFunctions::StateMachine` on moto.

- The definition may come from `DefinitionString`, `Definition` (an object) or `DefinitionS3Location`, with
  `DefinitionSubstitutions` applied to `${name}` placeholders; moto reads only `DefinitionString`.
- With `execute_state_machine` on, the Step Functions API is served by the interpreter's backend
  (`stepfunctions_parser_backends`), while moto's CloudFormation writes to `stepfunctions_backends`, so
  deployed machines were invisible to StartExecution. Create/update/delete go to the serving backend.
"""
from __future__ import annotations

import json
import re
from typing import Any

from sdlf_cli.local.cfn._patching import wrap

_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


def serving_backend(account_id: str, region_name: str):
    """The Step Functions backend the API answers from (the interpreter's when execution is on)."""
    from moto.stepfunctions.responses import get_backend

    return get_backend(account_id, region_name)


def _s3_text(location: dict[str, Any], account_id: str, region_name: str) -> str:
    from moto.s3.models import s3_backends
    from moto.utilities.utils import get_partition

    backend = s3_backends[account_id][get_partition(region_name)]
    key = backend.get_object(location["Bucket"], location["Key"], version_id=location.get("Version"))
    if key is None:
        raise ValueError(f"DefinitionS3Location s3://{location['Bucket']}/{location['Key']} does not exist")
    return key.value.decode("utf-8")


def resolve_definition(properties: dict[str, Any], account_id: str, region_name: str) -> str:
    """The definition JSON text AWS would store for these template properties."""
    if "DefinitionString" in properties:
        text = properties["DefinitionString"]
    elif "Definition" in properties:
        definition = properties["Definition"]
        text = definition if isinstance(definition, str) else json.dumps(definition)
    elif "DefinitionS3Location" in properties:
        text = _s3_text(properties["DefinitionS3Location"], account_id, region_name)
        try:  # YAML definitions are allowed in S3; the API stores JSON
            json.loads(text)
        except ValueError:
            import yaml

            text = json.dumps(yaml.safe_load(text))
    else:
        raise ValueError("AWS::StepFunctions::StateMachine needs Definition, DefinitionString or DefinitionS3Location")
    substitutions = properties.get("DefinitionSubstitutions") or {}
    if substitutions:
        def substitute(match: re.Match) -> str:
            name = match.group(1)
            if name not in substitutions:
                return match.group(0)  # left for Step Functions (e.g. intrinsic-looking text)
            value = substitutions[name]
            return json.dumps(value) if isinstance(value, (dict, list)) else str(value).lower() if isinstance(value, bool) else str(value)

        text = _PLACEHOLDER.sub(substitute, text)
    return text


def _create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    properties = cloudformation_json["Properties"]
    backend = serving_backend(account_id, region_name)
    return backend.create_state_machine(
        properties.get("StateMachineName", resource_name),
        resolve_definition(properties, account_id, region_name),
        properties.get("RoleArn", ""),
        tags=[{"key": t["Key"], "value": t["Value"]} for t in properties.get("Tags", [])] or None,
        loggingConfiguration=properties.get("LoggingConfiguration"),
        tracingConfiguration=properties.get("TracingConfiguration"),
        encryptionConfiguration=properties.get("EncryptionConfiguration"),
        sm_type=properties.get("StateMachineType", "STANDARD"),
    )


def _delete(cls, resource_name, cloudformation_json, account_id, region_name):
    serving_backend(account_id, region_name).delete_state_machine(resource_name)


def _update(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
    properties = cloudformation_json.get("Properties", {})
    name = properties.get("StateMachineName", original_resource.name)
    if name != original_resource.name:  # replacement
        new = _create(cls, name, cloudformation_json, account_id, region_name)
        _delete(cls, original_resource.arn, cloudformation_json, account_id, region_name)
        return new
    backend = serving_backend(account_id, region_name)
    machine = backend.update_state_machine(
        original_resource.arn,
        definition=resolve_definition(properties, account_id, region_name),
        role_arn=properties.get("RoleArn") or None,
        logging_configuration=properties.get("LoggingConfiguration"),
        tracing_configuration=properties.get("TracingConfiguration"),
    )
    tags = [{"key": t["Key"], "value": t["Value"]} for t in properties.get("Tags", [])]
    if tags:
        backend.tagger.tag_resource(machine.arn, tags)
    return machine


def install_state_machine_fixes() -> None:
    from moto.stepfunctions import models

    sm = models.StateMachine
    wrap(sm, "create_from_cloudformation_json", "sfn.definition-and-backend.create", lambda _orig: classmethod(_create))
    wrap(sm, "update_from_cloudformation_json", "sfn.definition-and-backend.update", lambda _orig: classmethod(_update))
    wrap(sm, "delete_from_cloudformation_json", "sfn.definition-and-backend.delete", lambda _orig: classmethod(_delete))
