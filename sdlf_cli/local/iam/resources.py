"""The resource ARN(s) a request acts on, per service, for moto's access control.

moto authorizes every service but S3 and SQS against resource `"*"`, so a statement scoped to a table, key
or state machine never matches and the call is refused. moto asks a response class for
`_determine_resource()` when it has one; each patch here ("iam resource: <service>") adds it to one
service. A tuple means several resources, each of which must be allowed (as AWS authorizes a Glue table
on the catalog, its database and the table). A request whose resource cannot be told is checked against
`"*"`, which only a `Resource: "*"` statement allows.
"""
from __future__ import annotations

import json
import re
from typing import Any, Callable
from urllib.parse import unquote

Resource = str | tuple[str, ...]


def _param(self: Any, name: str) -> Any:
    for source in (lambda: getattr(self, "params", None) or {}, lambda: json.loads(self.body or "{}")):
        try:
            value = source().get(name)
        except Exception:  # an unparsable body: not this source
            continue
        if value is not None:
            return value
    try:
        return self._get_param(name)
    except Exception:
        return None


def _arn(self: Any, service: str, resource: str) -> str:
    return f"arn:aws:{service}:{self.region}:{self.current_account}:{resource}"


def dynamodb_resource(self: Any) -> Resource:
    items = _param(self, "RequestItems")
    if isinstance(items, dict) and items:
        return tuple(_arn(self, "dynamodb", f"table/{name}") for name in items)
    table = _param(self, "TableName")
    if not table:
        return "*"
    if table.startswith("arn:"):
        return table
    index = _param(self, "IndexName")
    return _arn(self, "dynamodb", f"table/{table}" + (f"/index/{index}" if index else ""))


def sqs_resource(self: Any) -> Resource:
    """The queue of QueueUrl, or of QueueName (GetQueueUrl, CreateQueue), which moto's own version misses."""
    url = _param(self, "QueueUrl")
    name = url.rstrip("/").rsplit("/", 1)[-1] if url else _param(self, "QueueName")
    return _arn(self, "sqs", name) if name else "*"


def kms_resource(self: Any) -> Resource:
    key_id = _param(self, "KeyId")
    if not key_id:
        return "*"
    try:
        from moto.kms.models import kms_backends

        return kms_backends[self.current_account][self.region].describe_key(key_id).arn
    except Exception:  # an unknown key: the call fails on its own with NotFound once allowed
        return key_id if key_id.startswith("arn:") else _arn(self, "kms", f"key/{key_id}")


def sns_resource(self: Any) -> Resource:
    return _param(self, "TopicArn") or _param(self, "TargetArn") or "*"


def _ssm_parameter(self: Any, name: str) -> str:
    if name.startswith("arn:"):
        return name
    return _arn(self, "ssm", "parameter" + (name if name.startswith("/") else f"/{name}"))


def ssm_resource(self: Any) -> Resource:
    names = _param(self, "Names")
    if isinstance(names, list) and names:
        return tuple(_ssm_parameter(self, name) for name in names)
    name = _param(self, "Name") or _param(self, "Path")
    return _ssm_parameter(self, name) if name else "*"


def states_resource(self: Any) -> Resource:
    return _param(self, "executionArn") or _param(self, "stateMachineArn") or "*"


_GLUE_TABLE_OPERATIONS = ("Partition", "Table")


def glue_resource(self: Any) -> Resource:
    operation = self._get_action() or ""
    job = _param(self, "JobName")
    if job:
        return _arn(self, "glue", f"job/{job}")
    if "Crawler" in operation and _param(self, "Name"):
        return _arn(self, "glue", f"crawler/{_param(self, 'Name')}")
    catalog = _arn(self, "glue", "catalog")
    if operation in ("GetDatabase", "CreateDatabase", "UpdateDatabase", "DeleteDatabase"):
        name = _param(self, "Name") or (_param(self, "DatabaseInput") or {}).get("Name")
        return (catalog, _arn(self, "glue", f"database/{name}")) if name else catalog
    database = _param(self, "DatabaseName")
    if not database:
        return catalog
    db = _arn(self, "glue", f"database/{database}")
    if not any(word in operation for word in _GLUE_TABLE_OPERATIONS):
        return catalog, db
    if operation == "GetTables":
        return catalog, db, _arn(self, "glue", f"table/{database}/*")
    table = _param(self, "TableName") or _param(self, "Name") or (_param(self, "TableInput") or {}).get("Name")
    return (catalog, db, _arn(self, "glue", f"table/{database}/{table}")) if table else (catalog, db)


_LAMBDA_FUNCTION = re.compile(r"/functions/([^/?]+)")


def lambda_resource(self: Any) -> Resource:
    match = _LAMBDA_FUNCTION.search(self.path or "")
    if not match:
        return "*"
    name = unquote(match.group(1))
    if name.startswith("arn:"):
        return name
    name, _, qualifier = name.partition(":")
    qualifier = qualifier or (self.querystring.get("Qualifier") or [""])[0]
    return _arn(self, "lambda", f"function:{name}" + (f":{qualifier}" if qualifier else ""))


def events_resource(self: Any) -> Resource:
    entries = _param(self, "Entries")
    if isinstance(entries, list) and entries:
        buses = {entry.get("EventBusName") or "default" for entry in entries}
    else:
        buses = {_param(self, "EventBusName") or _param(self, "Name") or "default"}
    return tuple(bus if bus.startswith("arn:") else _arn(self, "events", f"event-bus/{bus}") for bus in sorted(buses))


def _stack_arn(self: Any, name: str) -> str:
    """The stack's ARN; `stack/<name>/*` for a stack that does not exist yet (what CreateChangeSet of a
    new stack is authorized on: a policy's `stack/<name>/*` matches it)."""
    if name.startswith("arn:"):
        return name
    from moto.cloudformation.models import cloudformation_backends

    backend = cloudformation_backends[self.current_account][self.region]
    for stack in list(backend.stacks.values()):
        if stack.name == name and stack.status != "DELETE_COMPLETE":
            return stack.stack_id
    return _arn(self, "cloudformation", f"stack/{name}/*")


# Without a stack, these are authorized on every stack, as AWS words it (`... on resource: ...:stack/*/*`).
_EVERY_STACK_OPERATIONS = ("DescribeStacks", "ListStacks")


def cloudformation_resource(self: Any) -> Resource:
    """The stack a request names (StackName, or the stack of a change set given by its ARN)."""
    name = _param(self, "StackName")
    if name:
        return _stack_arn(self, name)
    change_set = _param(self, "ChangeSetName")
    if change_set and change_set.startswith("arn:"):
        from moto.cloudformation.models import cloudformation_backends

        found = cloudformation_backends[self.current_account][self.region].change_sets.get(change_set)
        if found is not None:
            return found.stack_id
    if (self._get_action() or "") in _EVERY_STACK_OPERATIONS:
        return _arn(self, "cloudformation", "stack/*/*")
    return "*"


def _responses() -> dict[str, tuple[type, Callable[[Any], Resource]]]:
    from moto.awslambda.responses import LambdaResponse
    from moto.cloudformation.responses import CloudFormationResponse
    from moto.dynamodb.responses import DynamoHandler
    from moto.events.responses import EventsHandler
    from moto.glue.responses import GlueResponse
    from moto.kms.responses import KmsResponse
    from moto.sns.responses import SNSResponse
    from moto.sqs.responses import SQSResponse
    from moto.ssm.responses import SimpleSystemManagerResponse
    from moto.stepfunctions.responses import StepFunctionResponse

    return {
        "dynamodb": (DynamoHandler, dynamodb_resource),
        "sqs": (SQSResponse, sqs_resource),
        "kms": (KmsResponse, kms_resource),
        "sns": (SNSResponse, sns_resource),
        "ssm": (SimpleSystemManagerResponse, ssm_resource),
        "states": (StepFunctionResponse, states_resource),
        "glue": (GlueResponse, glue_resource),
        "lambda": (LambdaResponse, lambda_resource),
        "events": (EventsHandler, events_resource),
        "cloudformation": (CloudFormationResponse, cloudformation_resource),
    }


def patch_name(service: str) -> str:
    return f"iam resource: {service}"


def _safe(resolve: Callable[[Any], Resource]) -> Callable[[Any], Resource]:
    def _determine_resource(self: Any) -> Resource:
        try:
            return resolve(self)
        except Exception:  # a request we cannot read is checked against "*" (a Resource "*" statement)
            return "*"

    return _determine_resource


def install() -> None:
    from sdlf_cli.local.cfn import _patching

    for service, (response, resolve) in _responses().items():
        _patching.install(_patching.Patch(patch_name(service), response, "_determine_resource", _safe(resolve)))


def uninstall() -> None:
    from sdlf_cli.local.cfn import _patching

    for service in _responses():
        _patching.uninstall(patch_name(service))
