"""Stage-B transform: the PreUpdate and PostUpdate Task states of sm-b call this function with
{"action": "pre" | "post", "team", "dataset", "batch_id", "manifest", "execution"}.

- pre:  executions row RUNNING (stage "b"), the batch's stage rows RUNNING
- post: reads result.json / quality.json next to the manifest; each input the job rejected parked in the
        dataset's stage-B DLQ and FAILED with the job's reason; analytics rows PROCESSED with lineage
        [the other stage uris], those stage rows PROCESSED, execution SUCCEEDED with counts, team notified

Bad input raises InvalidInputError (not retried); throttling and AWS 5xx raise TransientError
(retried). The logic lives in sdlf_datalake.stage_b.steps.

Environment (read per invocation): CATALOG_TABLE, EXECUTIONS_TABLE, STAGE_BUCKET, ANALYTICS_BUCKET,
TOPIC_ARN, SSM_PREFIX.
"""
from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger
from sdlf_datalake.stage_b.steps import StageB, StageBConfig

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "transform-b")

_stages: dict[StageBConfig, StageB] = {}


def handler(event: dict[str, Any], context: Any) -> Any:
    config = StageBConfig.from_env()
    if config not in _stages:
        _stages[config] = StageB(config)
    details = {k: event.get(k) for k in ("action", "execution", "batch_id")} if isinstance(event, dict) else {}
    logger.info("stage B step", extra=details)
    try:
        result = _stages[config].run(event)
    except Exception as exc:
        logger.exception("stage B step failed", extra={**details, "error": f"{type(exc).__name__}: {exc}"})
        raise
    logger.info("stage B step done", extra={**details, "result": result})
    return result
