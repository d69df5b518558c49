"""Stage A's routing: one Step Functions execution per raw object, idempotently (lambda/routing-a)."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from sdlf_datalake.errors import InvalidInputError, aws_call, error_code
from sdlf_datalake.events import S3ObjectEvent
from sdlf_datalake.executions import execution_name
from sdlf_datalake.keys import dataset_id, object_id, split_key
from sdlf_datalake.support import lazy_client, required_env


@dataclass(frozen=True)
class ObjectRef:
    """The raw object an execution is about (the `object` of the execution input)."""

    bucket: str
    key: str
    team: str
    dataset: str
    pipeline: str
    etag: str | None = None
    version_id: str | None = None
    size: int | None = None
    sequencer: str | None = None

    @property
    def uri(self) -> str:
        return object_id(self.bucket, self.key)

    @property
    def dataset_id(self) -> str:
        return dataset_id(self.team, self.dataset)

    @property
    def content_id(self) -> str:
        """What identifies this content for idempotency: the etag, else the version, else the sequencer."""
        return self.etag or self.version_id or self.sequencer or ""

    def to_input(self) -> dict[str, Any]:
        return {**asdict(self), "uri": self.uri}

    @classmethod
    def from_event(cls, event: S3ObjectEvent, pipeline: str) -> "ObjectRef":
        parts = split_key(event.key)
        if not parts.in_layout:
            raise InvalidInputError(
                f"{event.object_id}: key is not <team>/<dataset>/<file>; stage A cannot tell its dataset"
            )
        return cls(
            bucket=event.bucket,
            key=event.key,
            team=parts.team,
            dataset=parts.dataset,
            pipeline=pipeline,
            etag=event.etag,
            version_id=event.version_id,
            size=event.size,
            sequencer=event.sequencer,
        )

    @classmethod
    def from_input(cls, data: Any, where: str = "$.object") -> "ObjectRef":
        """Validate the execution input's object; InvalidInputError names the bad field."""
        if not isinstance(data, Mapping):
            raise InvalidInputError(f"{where}: expected an object, got {data!r}")
        values: dict[str, Any] = {}
        for name in ("bucket", "key", "team", "dataset", "pipeline"):
            value = data.get(name)
            if not isinstance(value, str) or not value:
                raise InvalidInputError(f"{where}.{name}: expected a non-empty string, got {value!r}")
            values[name] = value
        parts = split_key(values["key"])
        if (parts.team, parts.dataset) != (values["team"], values["dataset"]):
            raise InvalidInputError(
                f"{where}: key {values['key']!r} is not under {values['team']}/{values['dataset']}/"
            )
        for name in ("etag", "version_id", "sequencer"):
            value = data.get(name)
            values[name] = str(value) if value not in (None, "") else None
        size = data.get("size")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise InvalidInputError(f"{where}.size: expected a non-negative integer, got {size!r}")
        values["size"] = size
        return cls(**values)


def execution_input(ref: ObjectRef, name: str) -> dict[str, Any]:
    return {"object": ref.to_input(), "execution": name}


@dataclass(frozen=True)
class RoutingAConfig:
    state_machine_arn: str
    pipeline: str
    team: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "RoutingAConfig":
        env = os.environ if env is None else env
        return cls(*required_env(env, ("STATE_MACHINE_ARN", "PIPELINE", "TEAM"), "routing-a"))


class Router:
    """Starts one stage-A execution per raw object, idempotently."""

    @classmethod
    def from_config(cls, config: RoutingAConfig, client: Any = None) -> "Router":
        return cls(config.state_machine_arn, config.pipeline, config.team, client=client)

    def __init__(self, state_machine_arn: str, pipeline: str, team: str, client: Any = None):
        self.state_machine_arn = state_machine_arn
        self.pipeline = pipeline
        self.team = team
        self._client = client

    client = lazy_client("stepfunctions", "_client")

    def route(self, event: S3ObjectEvent, redrive_of: str | None = None) -> dict[str, Any]:
        """Start the execution for `event`'s object. Returns {"execution", "started": bool}.

        `redrive_of` is the failed execution a replayed DLQ message names: the replay gets its own
        (deterministic) execution name, so a redrive runs again but only once.
        """
        if not event.is_created:
            raise InvalidInputError(f"{event.object_id}: stage A handles 'Object Created', got {event.detail_type!r}")
        if event.key.endswith("/"):
            # A "folder" the S3 console creates: an empty marker, no data to process.
            return {"execution": None, "started": False, "skipped": "folder marker"}
        ref = ObjectRef.from_event(event, self.pipeline)
        if ref.team != self.team:
            raise InvalidInputError(f"{ref.uri}: belongs to team {ref.team!r}, this pipeline is team {self.team!r}'s")
        name = execution_name(ref.dataset, ref.bucket, ref.key, ref.content_id, redrive_of=redrive_of)
        payload = json.dumps(execution_input(ref, name), separators=(",", ":"))
        try:
            with aws_call(f"starting {name} on {self.state_machine_arn}"):
                response = self.client.start_execution(
                    stateMachineArn=self.state_machine_arn, name=name, input=payload
                )
        except Exception as exc:
            if error_code(exc) == "ExecutionAlreadyExists":
                # The same content was already routed (redelivery or identical re-upload).
                return {"execution": name, "started": False}
            raise
        return {"execution": name, "started": True, "execution_arn": response.get("executionArn")}
