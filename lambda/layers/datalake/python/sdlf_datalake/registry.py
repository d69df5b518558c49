"""Dataset registrations: the JSON String SSM parameter `<ssm prefix>/datasets/<team>/<dataset>`
that each dataset stack publishes. Read per object, cached per warm container for a short time
(so a changed setting reaches running functions within `ttl` seconds)."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from sdlf_datalake.errors import InvalidInputError, aws_call, error_code
from sdlf_datalake.support import lazy_client

DEFAULT_TTL_SECONDS = 60.0
DEFAULT_TRANSFORM = "default"


@dataclass(frozen=True)
class DatasetRegistration:
    team: str
    dataset: str
    pipeline: str | None
    transform: str
    stage_b_queue_url: str | None
    stage_b_dlq_url: str | None = None
    glue_database: str | None = None
    engine: str | None = None
    schedule: str | None = None
    batch: dict[str, Any] = field(default_factory=dict)
    partition_by: Any = None
    quality: Any = None
    parameter: str = ""  # the SSM parameter it was read from
    # Stage-B resources of the dataset (Glue jobs, crawler, table name); None before stage B existed.
    job: str | None = None
    quality_job: str | None = None
    crawler: str | None = None
    table: str | None = None

    @property
    def dataset_id(self) -> str:
        return f"{self.team}/{self.dataset}"

    @classmethod
    def from_json(cls, text: str, parameter: str) -> "DatasetRegistration":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidInputError(f"SSM parameter {parameter}: registration is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidInputError(f"SSM parameter {parameter}: registration must be a JSON object")
        for required in ("team", "dataset"):
            if not isinstance(data.get(required), str) or not data[required]:
                raise InvalidInputError(
                    f"SSM parameter {parameter}: field {required!r} must be a non-empty string, got {data.get(required)!r}"
                )
        transform = data.get("transform") or DEFAULT_TRANSFORM
        if not isinstance(transform, str):
            raise InvalidInputError(f"SSM parameter {parameter}: field 'transform' must be a string, got {transform!r}")
        batch = data.get("batch") or {}
        return cls(
            team=data["team"],
            dataset=data["dataset"],
            pipeline=data.get("pipeline"),
            transform=transform,
            stage_b_queue_url=data.get("stage_b_queue_url") or None,
            stage_b_dlq_url=data.get("stage_b_dlq_url") or None,
            glue_database=data.get("glue_database"),
            engine=data.get("engine"),
            schedule=data.get("schedule"),
            batch=batch if isinstance(batch, dict) else {},
            partition_by=data.get("partition_by"),
            quality=data.get("quality"),
            parameter=parameter,
            job=data.get("job") or None,
            quality_job=data.get("quality_job") or None,
            crawler=data.get("crawler") or None,
            table=data.get("table") or None,
        )


def registration_parameter(ssm_prefix: str, team: str, dataset: str) -> str:
    return f"{ssm_prefix.rstrip('/')}/datasets/{team}/{dataset}"


class RegistrationReader:
    def __init__(
        self,
        ssm_prefix: str,
        client: Any = None,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        if not ssm_prefix or not ssm_prefix.startswith("/"):
            raise ValueError(f"SSM prefix must start with '/', got {ssm_prefix!r}")
        self.ssm_prefix = ssm_prefix.rstrip("/")
        self._client = client
        self._ttl = ttl_seconds
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, DatasetRegistration]] = {}

    client = lazy_client("ssm", "_client")

    def get(self, team: str, dataset: str) -> DatasetRegistration:
        name = registration_parameter(self.ssm_prefix, team, dataset)
        cached = self._cache.get(name)
        now = self._monotonic()
        if cached and now - cached[0] < self._ttl:
            return cached[1]
        try:
            with aws_call(f"reading SSM parameter {name}"):
                value = self.client.get_parameter(Name=name)["Parameter"]["Value"]
        except Exception as exc:
            if error_code(exc) == "ParameterNotFound":
                raise InvalidInputError(
                    f"dataset {team}/{dataset} is not registered: no SSM parameter {name}"
                    f" (registrations live under {self.ssm_prefix}/datasets/; deploy the dataset stack)"
                ) from None
            raise
        registration = DatasetRegistration.from_json(value, name)
        if (registration.team, registration.dataset) != (team, dataset):
            raise InvalidInputError(
                f"SSM parameter {name} registers {registration.dataset_id}, not {team}/{dataset}"
            )
        self._cache[name] = (now, registration)
        return registration

    def clear(self) -> None:
        self._cache.clear()
