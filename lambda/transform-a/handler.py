"""Stage-A transform: the three Task states of the stage-A state machine call this function with
{"action": "pre" | "transform" | "post", "object": {...}, "execution": "<name>", ...}.

- pre:       catalog row RUNNING (+ execution), executions row RUNNING; the dataset must be registered
- transform: read the raw object, run the dataset's light transform, write JSON lines to the stage
             bucket; returns the outputs [{"bucket", "key", "uri", "etag", "records", "size"}]
- post:      stage rows PROCESSED with lineage, one stage-B message per output, raw row PROCESSED,
             execution SUCCEEDED
An object deleted before stage A read it is skipped by every step: no output, its row stays DELETED,
nothing goes to the DLQ (there is nothing to replay) and the execution SUCCEEDED with "skipped".

Bad input raises InvalidInputError (the state machine does not retry it); throttling and AWS 5xx
raise TransientError (retried). The logic lives in sdlf_datalake.stage_a.steps.

Environment (read per invocation): CATALOG_TABLE, EXECUTIONS_TABLE, STAGE_BUCKET, SSM_PREFIX, TEAM,
optional MAX_OBJECT_BYTES, REGISTRATION_TTL_SECONDS.
"""
from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger
from sdlf_datalake.registry import DEFAULT_TTL_SECONDS, RegistrationReader
from sdlf_datalake.stage_a.steps import StageA, StageAConfig

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "transform-a")

# One StageA per configuration, kept by a warm container: its clients and the registration cache
# (entries live REGISTRATION_TTL_SECONDS) survive between invocations.
_stages: dict[StageAConfig, StageA] = {}


def handler(event: dict[str, Any], context: Any) -> Any:
    stage = _stage()
    details = _details(event)
    logger.info("stage A step", extra=details)
    try:
        result = stage.run(event)
    except Exception as exc:
        logger.exception("stage A step failed", extra={**details, "error": f"{type(exc).__name__}: {exc}"})
        raise
    logger.info("stage A step done", extra={**details, "result": result if not isinstance(result, list) else {"outputs": len(result)}})
    return result


def _stage() -> StageA:
    config = StageAConfig.from_env()
    if config not in _stages:
        raw_ttl = os.environ.get("REGISTRATION_TTL_SECONDS") or str(DEFAULT_TTL_SECONDS)
        try:
            ttl = float(raw_ttl)
        except ValueError:
            raise RuntimeError(f"transform-a: REGISTRATION_TTL_SECONDS must be a number, got {raw_ttl!r}") from None
        _stages[config] = StageA(config, registrations=RegistrationReader(config.ssm_prefix, ttl_seconds=ttl))
    return _stages[config]


def _details(event: Any) -> dict[str, Any]:
    if not isinstance(event, dict):
        return {"action": None}
    obj = event.get("object") if isinstance(event.get("object"), dict) else {}
    return {"action": event.get("action"), "execution": event.get("execution"), "object_id": obj.get("uri")}
