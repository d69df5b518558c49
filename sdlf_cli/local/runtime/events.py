"""EventBridge delivery fixes.

moto matches schedule-only rules against every event (their empty pattern matches all), raises
NotImplementedError for Lambda and Step Functions targets, and so turns put_events into a 500 and
silently stops S3's fan-out at that rule. We wrap `Rule.send_to_targets`: disabled and schedule-only
rules are skipped, Lambda targets are invoked asynchronously on the warm workers, Step Functions
targets start an execution (deterministic name, so a redelivered event is idempotent), and every
other target type is left to moto (which needs `time` as epoch seconds; S3 events built by
`sdlf_cli.local.cfn.buckets` carry AWS's ISO string, so we convert for moto).
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import time
from datetime import datetime, timezone
from typing import Any

from sdlf_cli.local.runtime.lambda_hook import LambdaRuntime

LOG = logging.getLogger(__name__)

_originals: dict[str, Any] = {}
_state: dict[str, Any] = {}


def is_schedule_only(rule: Any) -> bool:
    return bool(rule.scheduled_expression) and not rule.event_pattern.get_pattern()


def _iso(value: Any) -> Any:
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(float(value), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def _epoch(text: str) -> Any:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return text


def public_event(event: dict) -> dict:
    """The event as AWS delivers it: ISO time, no moto-internal fields."""
    out = {k: v for k, v in event.items() if k != "ingestion-time"}
    if "time" in out:
        out["time"] = _iso(out["time"])
    return out


def _jsonpath_get(document: Any, path: str) -> Any:
    """The simple JSONPath EventBridge InputPath uses: `$`, `$.a.b`, `$.a[0]`."""
    if path in ("$", ""):
        return document
    if not path.startswith("$."):
        raise ValueError(f"unsupported InputPath {path!r}")
    node = document
    for part in path[2:].split("."):
        name, _, index = part.partition("[")
        if name:
            node = node.get(name) if isinstance(node, dict) else None
        if index:
            node = node[int(index.rstrip("]"))] if isinstance(node, list) else None
        if node is None:
            return None
    return node


def target_input(target: dict, event: dict, raw_event: dict) -> Any:
    """Apply a target's Input / InputPath / InputTransformer (one at most, as AWS allows)."""
    if target.get("Input") is not None:
        return json.loads(target["Input"])
    if target.get("InputPath"):
        return _jsonpath_get(event, target["InputPath"])
    transformer = target.get("InputTransformer")
    if transformer:
        from moto.events.utils import EventTemplateParser

        template = transformer.get("InputTemplate", "")
        raw = dict(raw_event, time=event.get("time"))
        raw.setdefault("ingestion-time", time.time())
        try:
            return EventTemplateParser.parse(template, transformer.get("InputPathsMap", {}), raw)
        except ValueError:
            # A template that is a plain string (not JSON) is delivered as that string.
            return template
    return event


def execution_name(rule_arn: str, target_id: str, event_id: str, payload: Any) -> str:
    digest = hashlib.sha256(json.dumps([rule_arn, target_id, event_id, payload], sort_keys=True,
                                       default=str).encode()).hexdigest()
    safe_id = "".join(c if c.isalnum() or c in "-_" else "-" for c in target_id)[:30]
    return f"{safe_id}-{digest[:40]}"


# Other runtime parts deliver to more target services: service -> function(rule, target, arn, event, payload).
TARGET_HANDLERS: dict[str, Any] = {}


def deliver(runtime: LambdaRuntime, rule: Any, raw_event: dict, targets: list[dict]) -> list[dict]:
    """Deliver to the Lambda and Step Functions targets (and those of TARGET_HANDLERS); return the
    targets left for moto."""
    event = public_event(raw_event)
    rest = []
    for target in targets:
        arn = target.get("Arn", "")
        service = arn.split(":")[2] if arn.count(":") >= 5 else ""
        if service not in ("lambda", "states") and service not in TARGET_HANDLERS:
            rest.append(target)
            continue
        try:
            payload = target_input(target, event, raw_event)
            if service in TARGET_HANDLERS:
                TARGET_HANDLERS[service](rule, target, arn, event, payload)
            elif service == "lambda":
                _invoke_lambda_target(runtime, arn, payload)
            else:
                _start_execution_target(rule, target, arn, event, payload)
        except Exception:
            # AWS retries and then drops (or DLQs) a failed delivery; it never fails the publisher.
            LOG.exception("EventBridge rule %s could not deliver to %s", rule.name, arn)
    return rest


def _invoke_lambda_target(runtime: LambdaRuntime, arn: str, payload: Any) -> None:
    from moto.awslambda.utils import get_backend

    parts = arn.split(":")
    account, region = parts[4], parts[3]
    qualifier = parts[7] if len(parts) > 7 else None
    fn = get_backend(account, region).get_function(parts[6], qualifier)
    runtime.invoke_async(fn, payload)


def _start_execution_target(rule: Any, target: dict, arn: str, event: dict, payload: Any) -> None:
    from moto.stepfunctions.responses import get_backend

    parts = arn.split(":")
    backend = get_backend(parts[4], parts[3])
    name = execution_name(rule.arn, target.get("Id", ""), event.get("id", ""), payload)
    text = json.dumps(payload)
    try:
        backend.start_execution(arn, name, text)
    except Exception as exc:
        if type(exc).__name__ != "ExecutionAlreadyExists":
            raise
        LOG.info("execution %s already exists: event delivered before", name)


def _send_to_targets(self: Any, original_event: dict, transform_input: bool = True) -> None:
    if self.state != "ENABLED" or is_schedule_only(self):
        return
    if not self.event_pattern.matches_event(original_event):
        return
    send_event(self, original_event, transform_input)


def send_event(rule: Any, event: dict, transform_input: bool = True) -> None:
    """Deliver one (already matched) event to all of a rule's targets: ours first, then moto's."""
    runtime = _state.get("runtime")
    if runtime is None:
        raise RuntimeError("the emulator's EventBridge delivery is not installed")
    rest = deliver(runtime, rule, event, list(rule.targets))
    if rest:
        clone = copy.copy(rule)
        clone.targets = rest
        for_moto = copy.deepcopy(event)
        if isinstance(for_moto.get("time"), str):
            for_moto["time"] = _epoch(for_moto["time"])
        _originals["send_to_targets"](clone, for_moto, transform_input)


def install(runtime: LambdaRuntime) -> None:
    from moto.events.models import Rule

    _state["runtime"] = runtime
    if "send_to_targets" not in _originals:
        _originals["send_to_targets"] = Rule.send_to_targets
        Rule.send_to_targets = _send_to_targets


def uninstall() -> None:
    from moto.events.models import Rule

    if "send_to_targets" in _originals:
        Rule.send_to_targets = _originals.pop("send_to_targets")
    _state.pop("runtime", None)
