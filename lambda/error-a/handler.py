"""Stage-A error handler (the state machine's Catch target): the raw object ends FAILED with a
reason, a replayable "Object Created" message goes to the stage-A DLQ, the team topic is told and
the execution is marked FAILED. See sdlf_datalake.stage_a.failures.

Environment (read per invocation): CATALOG_TABLE, EXECUTIONS_TABLE, DLQ_URL, TOPIC_ARN, TEAM.
"""
from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger
from sdlf_datalake.stage_a.failures import ErrorHandlerA, ErrorHandlerAConfig

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "error-a")

_handlers: dict[ErrorHandlerAConfig, ErrorHandlerA] = {}


def handler(event: Any, context: Any) -> dict[str, Any]:
    config = ErrorHandlerAConfig.from_env()
    if config not in _handlers:
        _handlers[config] = ErrorHandlerA(config, logger=logger)
    account, region = _account_region(context)
    result = _handlers[config].handle(event, account=account, region=region)
    logger.warning("object failed", extra=result)
    return result


def _account_region(context: Any) -> tuple[str | None, str | None]:
    # arn:aws:lambda:<region>:<account>:function:<name>
    arn = getattr(context, "invoked_function_arn", None) or ""
    parts = arn.split(":")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if len(parts) >= 5:
        return parts[4] or None, parts[3] or region
    return None, region
