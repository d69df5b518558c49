"""A small typed gateway over one boto3 CloudFormation client.

This is the only module that knows botocore's response and error shapes: it returns frozen
dataclasses and raises `CloudFormationError` (a `DeployError`, exit 1) or `NoChangesError`.
The client is injected (built by `aws.session.Clients`), so tests pass a client wrapped in a
botocore Stubber and the emulator is reached through the same code as AWS.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from sdlf_cli.errors import DeployError

# What AWS (FAILED change set) and the emulator (synchronous ValidationError) say when a
# change set would change nothing. Both mean "unchanged", never an error.
NO_CHANGES_MARKERS = (
    "didn't contain changes",
    "No updates are to be performed",
)


# Transport-level failures. ResponseParserError is not a BotoCoreError; the emulator triggers it by
# answering some failures with JSON where botocore expects XML.
_BOTO_ERRORS = (BotoCoreError, ResponseParserError)


class CloudFormationError(DeployError):
    """A CloudFormation call failed; the message names the operation, the stack and AWS's reason."""

    def __init__(self, operation: str, target: str, code: str, message: str):
        self.operation = operation
        self.target = target
        self.code = code
        self.reason = message
        super().__init__(f"{operation} {target}: {code}: {message}")


class NoChangesError(Exception):
    """create_change_set was refused because the template, parameters and tags equal the stack's."""


@dataclass(frozen=True)
class StackInfo:
    name: str
    stack_id: str
    status: str
    status_reason: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    last_updated: datetime | None = None
    termination_protection: bool = False


@dataclass(frozen=True)
class StackResource:
    logical_id: str
    resource_type: str
    physical_id: str | None
    status: str


@dataclass(frozen=True)
class StackEvent:
    event_id: str
    stack_name: str
    logical_id: str
    resource_type: str
    status: str
    reason: str | None
    timestamp: datetime
    physical_id: str | None = None

    @property
    def is_stack_level(self) -> bool:
        return self.resource_type == "AWS::CloudFormation::Stack" and self.logical_id == self.stack_name


@dataclass(frozen=True)
class ResourceChange:
    action: str  # Add | Modify | Remove | Import | Dynamic
    logical_id: str
    resource_type: str
    replacement: str | None = None  # "True" | "False" | "Conditional" (Modify only)
    physical_id: str | None = None
    changed_properties: tuple[str, ...] = ()  # Details' Target.Name (or Attribute), in order
    recreates: tuple[str, ...] = ()  # those whose RequiresRecreation is Always or Conditionally


@dataclass(frozen=True)
class ChangeSetInfo:
    change_set_id: str
    name: str
    stack_id: str
    status: str  # CREATE_PENDING | CREATE_IN_PROGRESS | CREATE_COMPLETE | FAILED | DELETE_*
    execution_status: str | None
    status_reason: str | None
    changes: tuple[ResourceChange, ...] = ()

    @property
    def has_no_changes(self) -> bool:
        return self.status == "FAILED" and is_no_changes_message(self.status_reason or "")


def is_no_changes_message(message: str) -> bool:
    return any(marker in message for marker in NO_CHANGES_MARKERS)


def _client_error(operation: str, target: str, err: Exception) -> CloudFormationError:
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        return CloudFormationError(operation, target, error.get("Code", "Error"), error.get("Message", str(err)))
    # The emulator answers some failures with a JSON body botocore cannot parse as XML
    # (ResponseParserError); the useful part is the "message" inside that body.
    text = str(err)
    match = re.search(r'"message"\s*:\s*"((?:[^"\\]|\\.)*)"', text)
    if match:
        try:
            message = json.loads(f'"{match.group(1)}"')
        except ValueError:
            message = match.group(1)
        code_match = re.search(r'"__type"\s*:\s*"([^"]+)"', text)
        return CloudFormationError(operation, target, code_match.group(1) if code_match else type(err).__name__, message)
    return CloudFormationError(operation, target, type(err).__name__, text)


def _detail_names(details: list[dict]) -> dict[str, tuple[str, ...]]:
    changed: list[str] = []
    recreates: list[str] = []
    for detail in details:
        target = detail.get("Target") or {}
        name = target.get("Name") or target.get("Attribute")
        if not name:
            continue
        if name not in changed:
            changed.append(name)
        if target.get("RequiresRecreation") in ("Always", "Conditionally") and name not in recreates:
            recreates.append(name)
    return {"changed_properties": tuple(changed), "recreates": tuple(recreates)}


def _is_missing_stack(err: ClientError) -> bool:
    error = err.response.get("Error", {})
    return error.get("Code") == "ValidationError" and "does not exist" in error.get("Message", "")


def _stack_info(raw: dict) -> StackInfo:
    return StackInfo(
        name=raw["StackName"],
        stack_id=raw["StackId"],
        status=raw["StackStatus"],
        status_reason=raw.get("StackStatusReason"),
        tags={t["Key"]: t["Value"] for t in raw.get("Tags") or []},
        outputs={o["OutputKey"]: o.get("OutputValue", "") for o in raw.get("Outputs") or []},
        parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in raw.get("Parameters") or []},
        last_updated=raw.get("LastUpdatedTime") or raw.get("CreationTime"),
        termination_protection=bool(raw.get("EnableTerminationProtection")),
    )


class CloudFormationGateway:
    def __init__(self, client: Any):
        self._client = client

    # --- stacks ------------------------------------------------------------------------
    def describe_stack(self, name_or_id: str) -> StackInfo | None:
        """The stack, or None when no live stack has that name (a deleted one counts as absent)."""
        try:
            response = self._client.describe_stacks(StackName=name_or_id)
        except ClientError as err:
            if _is_missing_stack(err):
                return None
            raise _client_error("DescribeStacks", name_or_id, err) from err
        except _BOTO_ERRORS as err:
            raise _client_error("DescribeStacks", name_or_id, err) from err
        stacks = response.get("Stacks", [])
        if not stacks:
            return None
        raw = stacks[0]
        if raw["StackStatus"] == "DELETE_COMPLETE":
            return None
        return _stack_info(raw)

    def update_termination_protection(self, name_or_id: str, enabled: bool) -> None:
        try:
            self._client.update_termination_protection(StackName=name_or_id, EnableTerminationProtection=enabled)
        except (ClientError, *_BOTO_ERRORS) as err:
            raise _client_error("UpdateTerminationProtection", name_or_id, err) from err

    def outputs(self, name_or_id: str) -> dict[str, str]:
        stack = self.describe_stack(name_or_id)
        if stack is None:
            raise CloudFormationError("DescribeStacks", name_or_id, "ValidationError", "stack does not exist")
        return dict(stack.outputs)

    def delete_stack(self, name_or_id: str) -> None:
        try:
            self._client.delete_stack(StackName=name_or_id)
        except (ClientError, *_BOTO_ERRORS) as err:
            raise _client_error("DeleteStack", name_or_id, err) from err

    def describe_stack_events(self, name_or_id: str, stop_at_event_id: str | None = None) -> list[StackEvent]:
        """Events newest first. With `stop_at_event_id`, only the events newer than that one
        (pagination stops there, so a long-lived stack does not cost its whole history)."""
        events: list[StackEvent] = []
        try:
            paginator = self._client.get_paginator("describe_stack_events")
            for page in paginator.paginate(StackName=name_or_id):
                for raw in page.get("StackEvents", []):
                    if stop_at_event_id is not None and raw["EventId"] == stop_at_event_id:
                        return events
                    events.append(
                        StackEvent(
                            event_id=raw["EventId"],
                            stack_name=raw["StackName"],
                            logical_id=raw.get("LogicalResourceId", ""),
                            resource_type=raw.get("ResourceType", ""),
                            status=raw.get("ResourceStatus", ""),
                            reason=raw.get("ResourceStatusReason"),
                            timestamp=raw["Timestamp"],
                            physical_id=raw.get("PhysicalResourceId"),
                        )
                    )
        except ClientError as err:
            if _is_missing_stack(err):
                return events
            raise _client_error("DescribeStackEvents", name_or_id, err) from err
        except _BOTO_ERRORS as err:
            raise _client_error("DescribeStackEvents", name_or_id, err) from err
        return events

    def latest_event_id(self, name_or_id: str) -> str | None:
        """Id of the newest event, used as the marker before which events are old news."""
        try:
            response = self._client.describe_stack_events(StackName=name_or_id)
        except ClientError as err:
            if _is_missing_stack(err):
                return None
            raise _client_error("DescribeStackEvents", name_or_id, err) from err
        except _BOTO_ERRORS as err:
            raise _client_error("DescribeStackEvents", name_or_id, err) from err
        events = response.get("StackEvents", [])
        return events[0]["EventId"] if events else None

    def list_stacks(self, name_prefix: str | None = None) -> list[StackInfo]:
        """Every live stack of the account and region (deleted ones left out), with tags.

        With `name_prefix`, only the stacks whose name starts with it, each described by name: DescribeStacks
        without a stack is authorized on every stack (`stack/*/*`), which a principal allowed only its lake's
        stacks (`stack/<prefix>*/*`, as the delivery pipeline's deploy role) is refused; ListStacks is not."""
        if name_prefix is not None:
            return self._stacks_named(name_prefix)
        stacks: list[StackInfo] = []
        try:
            for page in self._client.get_paginator("describe_stacks").paginate():
                stacks.extend(_stack_info(raw) for raw in page.get("Stacks", []) if raw["StackStatus"] != "DELETE_COMPLETE")
        except (ClientError, *_BOTO_ERRORS) as err:
            raise _client_error("DescribeStacks", "(all stacks)", err) from err
        return stacks

    def _stacks_named(self, name_prefix: str) -> list[StackInfo]:
        names: list[str] = []
        try:
            for page in self._client.get_paginator("list_stacks").paginate():
                names.extend(summary["StackName"] for summary in page.get("StackSummaries", [])
                             if summary["StackStatus"] != "DELETE_COMPLETE"
                             and summary["StackName"].startswith(name_prefix))
        except (ClientError, *_BOTO_ERRORS) as err:
            raise _client_error("ListStacks", f"(stacks named {name_prefix}*)", err) from err
        found = (self.describe_stack(name) for name in dict.fromkeys(names))
        return [stack for stack in found if stack is not None]  # one deleted since it was listed is gone

    def exports(self) -> dict[str, str]:
        """Every export of the account and region: name -> value (what `Fn::ImportValue` resolves to)."""
        found: dict[str, str] = {}
        try:
            for page in self._client.get_paginator("list_exports").paginate():
                found.update({e["Name"]: e["Value"] for e in page.get("Exports", [])})
        except (ClientError, *_BOTO_ERRORS) as err:
            raise _client_error("ListExports", "(all exports)", err) from err
        return found

    def template(self, name_or_id: str) -> dict:
        """The stack's current template, parsed (YAML with short-form intrinsics, or JSON)."""
        from cfn_tools import load_yaml

        try:
            body = self._client.get_template(StackName=name_or_id, TemplateStage="Original")["TemplateBody"]
        except (ClientError, *_BOTO_ERRORS) as err:
            raise _client_error("GetTemplate", name_or_id, err) from err
        return dict(body) if isinstance(body, dict) else (load_yaml(body) or {})

    def resources(self, name_or_id: str) -> list[StackResource]:
        out: list[StackResource] = []
        try:
            for page in self._client.get_paginator("list_stack_resources").paginate(StackName=name_or_id):
                for raw in page.get("StackResourceSummaries", []):
                    out.append(StackResource(raw["LogicalResourceId"], raw["ResourceType"],
                                             raw.get("PhysicalResourceId"), raw.get("ResourceStatus", "")))
        except (ClientError, *_BOTO_ERRORS) as err:
            raise _client_error("ListStackResources", name_or_id, err) from err
        return out

    # --- change sets ---------------------------------------------------------------------
    def create_change_set(
        self,
        *,
        stack_name: str,
        change_set_name: str,
        change_set_type: str,
        parameters: dict[str, str],
        tags: dict[str, str],
        capabilities: tuple[str, ...],
        template_body: str | None = None,
        template_url: str | None = None,
        description: str | None = None,
        role_arn: str | None = None,
    ) -> tuple[str, str]:
        """Returns (change set id, stack id). Raises NoChangesError for the emulator's synchronous
        "No updates are to be performed." refusal."""
        if (template_body is None) == (template_url is None):
            raise ValueError("exactly one of template_body and template_url is required")
        kwargs: dict[str, Any] = {
            "StackName": stack_name,
            "ChangeSetName": change_set_name,
            "ChangeSetType": change_set_type,
            "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(parameters.items())],
            "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())],
            "Capabilities": list(capabilities),
        }
        if template_url is not None:
            kwargs["TemplateURL"] = template_url
        else:
            kwargs["TemplateBody"] = template_body
        if description:
            kwargs["Description"] = description
        if role_arn:
            kwargs["RoleARN"] = role_arn
        try:
            response = self._client.create_change_set(**kwargs)
        except ClientError as err:
            if is_no_changes_message(err.response.get("Error", {}).get("Message", "")):
                raise NoChangesError(err.response["Error"]["Message"]) from err
            raise _client_error("CreateChangeSet", stack_name, err) from err
        except _BOTO_ERRORS as err:
            raise _client_error("CreateChangeSet", stack_name, err) from err
        return response["Id"], response.get("StackId", "")

    def describe_change_set(self, change_set_id: str, include_changes: bool = True) -> ChangeSetInfo:
        changes: list[ResourceChange] = []
        kwargs: dict[str, Any] = {"ChangeSetName": change_set_id}
        try:
            while True:
                response = self._client.describe_change_set(**kwargs)
                for raw in response.get("Changes") or []:
                    rc = raw.get("ResourceChange")
                    if raw.get("Type") != "Resource" or not rc:
                        continue
                    changes.append(
                        ResourceChange(
                            action=rc.get("Action", ""),
                            logical_id=rc.get("LogicalResourceId", ""),
                            resource_type=rc.get("ResourceType", ""),
                            replacement=rc.get("Replacement"),
                            physical_id=rc.get("PhysicalResourceId"),
                            **_detail_names(rc.get("Details") or []),
                        )
                    )
                token = response.get("NextToken")
                if not include_changes or not token:
                    break
                kwargs["NextToken"] = token
        except (ClientError, *_BOTO_ERRORS) as err:
            raise _client_error("DescribeChangeSet", change_set_id, err) from err
        return ChangeSetInfo(
            change_set_id=response.get("ChangeSetId", change_set_id),
            name=response.get("ChangeSetName", ""),
            stack_id=response.get("StackId", ""),
            status=response.get("Status", ""),
            execution_status=response.get("ExecutionStatus"),
            status_reason=response.get("StatusReason"),
            changes=tuple(changes) if include_changes else (),
        )

    def execute_change_set(self, change_set_id: str) -> None:
        try:
            self._client.execute_change_set(ChangeSetName=change_set_id)
        except (ClientError, *_BOTO_ERRORS) as err:
            raise _client_error("ExecuteChangeSet", change_set_id, err) from err

    def delete_change_set(self, change_set_id: str) -> None:
        try:
            self._client.delete_change_set(ChangeSetName=change_set_id)
        except (ClientError, *_BOTO_ERRORS) as err:
            raise _client_error("DeleteChangeSet", change_set_id, err) from err
