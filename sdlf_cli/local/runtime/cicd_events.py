"""EventBridge for the CI/CD services: the state change events CodePipeline and CodeBuild send to the
default bus, and two target types moto does not deliver to — a pipeline (the rule starts an execution,
trigger CloudWatchEvent) and an SNS topic (the rule publishes its input).
"""
from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timezone
from typing import Any, Callable

LOG = logging.getLogger(__name__)


def envelope(account_id: str, region: str, source: str, detail_type: str, detail: dict[str, Any],
             resources: list[str]) -> dict[str, Any]:
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": source,
            "account": account_id, "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": region, "resources": resources, "detail": detail}


def put_event(account_id: str, region: str, source: str, detail_type: str, detail: dict[str, Any],
              resources: list[str]) -> None:
    """Sends an AWS service event to the rules of the default bus (each rule on its own: one failing rule
    does not keep the event from the others)."""
    from moto.events.models import events_backends

    event = json.loads(json.dumps(envelope(account_id, region, source, detail_type, detail, resources),
                                  default=str))
    bus = events_backends[account_id][region].event_buses.get("default")
    if bus is None:
        return
    for rule in list(bus.rules.values()):
        try:
            rule.send_to_targets(event, transform_input=False)
        except Exception:
            LOG.warning("delivering %s to rule %s failed", detail_type, rule.name, exc_info=True)


def _sns_target(rule: Any, target: dict, arn: str, event: dict, payload: Any) -> None:
    from moto.sns.models import sns_backends

    parts = arn.split(":")
    message = payload if isinstance(payload, str) else json.dumps(payload)
    sns_backends[parts[4]][parts[3]].publish(message=message, arn=arn)


def _pipeline_target(starter: Callable[[str, str, str, str], None]) -> Callable[..., None]:
    def deliver(rule: Any, target: dict, arn: str, event: dict, payload: Any) -> None:
        parts = arn.split(":")
        starter(parts[4], parts[3], parts[5], rule.arn)

    return deliver


def install_targets(start_pipeline: Callable[[str, str, str, str], None]) -> None:
    """`start_pipeline(account, region, pipeline name, rule arn)` starts an execution for a rule."""
    from sdlf_cli.local.runtime import events

    events.TARGET_HANDLERS["codepipeline"] = _pipeline_target(start_pipeline)
    events.TARGET_HANDLERS.setdefault("sns", _sns_target)


def uninstall_targets() -> None:
    from sdlf_cli.local.runtime import events

    events.TARGET_HANDLERS.pop("codepipeline", None)
    if events.TARGET_HANDLERS.get("sns") is _sns_target:
        events.TARGET_HANDLERS.pop("sns")
