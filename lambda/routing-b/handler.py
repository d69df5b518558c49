"""Stage-B routing: invoked by the dataset's schedule rule with {"team", "dataset"} (or by
`sdlf run-stage-b` with "force": true). Takes a batch from the dataset's stage-B queue, writes its
manifest, starts sm-b and only then deletes the messages; a batch below batch.min_items is released
untouched. See sdlf_datalake.stage_b.routing.BatchRouter.

Environment (read per invocation): STATE_MACHINE_ARN, SSM_PREFIX, STAGE_BUCKET, ANALYTICS_BUCKET,
QUALITY_TABLE, CATALOG_TABLE (hand-offs already in analytics are recognised there), EXECUTIONS_TABLE (the
dataset's batch lease: one batch at a time), optional REGISTRATION_TTL_SECONDS.
"""
from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger
from sdlf_datalake.registry import DEFAULT_TTL_SECONDS, RegistrationReader
from sdlf_datalake.stage_b.routing import BatchRouter, RoutingBConfig

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "routing-b")

# One router per configuration, kept by a warm container (clients, registration cache).
_routers: dict[RoutingBConfig, BatchRouter] = {}


def handler(event: Any, context: Any) -> dict[str, Any]:
    router = _router()
    details = {k: event.get(k) for k in ("team", "dataset", "force")} if isinstance(event, dict) else {}
    try:
        result = router.route(event, **_lease_time(context))
    except Exception as exc:
        logger.exception("stage-B routing failed", extra={**details, "error": f"{type(exc).__name__}: {exc}"})
        raise
    logger.info("batch started" if result["started"] else "no batch started", extra={**details, **result})
    return result


def _lease_time(context: Any) -> dict[str, float]:
    """The lease lapses when this invocation is sure to be over (its remaining time, and a margin)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    try:
        return {"lease_seconds": remaining() / 1000.0 + 5.0} if callable(remaining) else {}
    except (TypeError, ValueError):
        return {}


def _router() -> BatchRouter:
    config = RoutingBConfig.from_env()
    if config not in _routers:
        raw_ttl = os.environ.get("REGISTRATION_TTL_SECONDS") or str(DEFAULT_TTL_SECONDS)
        try:
            ttl = float(raw_ttl)
        except ValueError:
            raise RuntimeError(f"routing-b: REGISTRATION_TTL_SECONDS must be a number, got {raw_ttl!r}") from None
        _routers[config] = BatchRouter(
            config, registrations=RegistrationReader(config.ssm_prefix, ttl_seconds=ttl), logger=logger
        )
    return _routers[config]
