"""Stage-B error handler (sm-b's Catch target): every stage object of the batch ends FAILED with a
reason and waits as a replayable message in the dataset's stage-B DLQ, the execution is FAILED and
the team is told. See sdlf_datalake.stage_b.failures.

Environment (read per invocation): CATALOG_TABLE, EXECUTIONS_TABLE, TOPIC_ARN, SSM_PREFIX.
"""
from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger
from sdlf_datalake.stage_b.failures import ErrorHandlerB, ErrorHandlerBConfig

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "error-b")

_handlers: dict[ErrorHandlerBConfig, ErrorHandlerB] = {}


def handler(event: Any, context: Any) -> dict[str, Any]:
    config = ErrorHandlerBConfig.from_env()
    if config not in _handlers:
        _handlers[config] = ErrorHandlerB(config, logger=logger)
    result = _handlers[config].handle(event)
    logger.warning("batch failed", extra=result)
    return result
