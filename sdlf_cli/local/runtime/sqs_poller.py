"""SQS -> Lambda event source mappings, polled like Lambda's own poller does.

moto runs a queue's mappings inside SendMessage, once per message, ignoring BatchSize and never
retrying. We hide the mappings from the queue (so SendMessage only stores the message) and poll every
enabled SQS mapping from one thread: up to BatchSize messages per invoke, successes deleted, failures
left to reappear after the visibility timeout. moto's ReceiveMessage already moves a message to the
DLQ once its receive count reaches the redrive policy's maxReceiveCount (checked in the tests), so
the DLQ comes for free.

The polling thread only receives; the invokes run on a pool, so a slow or hung function never holds up
the other mappings. Each mapping has at most `min(ScalingConfig.MaximumConcurrency, MAX_BATCHES_PER_MAPPING)`
batches in flight (one without ScalingConfig: one), so a batch that outlives a short visibility timeout is
not received again by a second poller while it runs. A message sent to any queue wakes the poller (a named patch on moto's
SendMessage); the idle sleep only matters for messages that become visible again by themselves.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from sdlf_cli.local.runtime.lambda_hook import LambdaRuntime

LOG = logging.getLogger(__name__)

IDLE_SLEEP_S = 0.15
# Most batches of one mapping in flight at once, whatever its ScalingConfig.MaximumConcurrency. Lambda would
# scale out, but here every extra concurrent batch means another cold worker process per function (~1 s of
# CPU each): on a 2-core machine one batch of up to BatchSize messages at a time per mapping is faster.
MAX_BATCHES_PER_MAPPING = 1
WAKE_PATCH = "sqs: a message sent wakes the event source mapping poller"
_wakers: list[threading.Event] = []


def install_wake_on_send() -> None:
    """SendMessage (SendMessageBatch goes through it) sets every running poller's wake event."""
    from moto.sqs.models import SQSBackend

    from sdlf_cli.local.cfn import _patching

    def make(original: Any) -> Any:
        def send_message(self: Any, *args: Any, **kwargs: Any) -> Any:
            message = original(self, *args, **kwargs)
            for event in list(_wakers):
                event.set()
            return message
        return send_message

    _patching.wrap(SQSBackend, "send_message", WAKE_PATCH, make)


def uninstall_wake_on_send() -> None:
    from sdlf_cli.local.cfn import _patching

    _patching.uninstall(WAKE_PATCH)


class _AlwaysEmpty(dict):
    """A dict that forgets whatever is stored in it."""

    def __setitem__(self, key: Any, value: Any) -> None:
        pass


def install_mapping_takeover() -> None:
    """Make every SQS queue's `lambda_event_source_mappings` forget its entries, so moto never runs them."""
    from moto.sqs.models import Queue

    if getattr(Queue, "_sdlf_mapping_takeover", False):
        return

    def _get(self: Any) -> dict:
        return _AlwaysEmpty()

    def _set(self: Any, value: Any) -> None:
        pass

    Queue.lambda_event_source_mappings = property(_get, _set)
    Queue._sdlf_mapping_takeover = True


def _sqs_record(message: Any, queue_arn: str, region: str) -> dict:
    attributes = {
        "ApproximateReceiveCount": str(message.approximate_receive_count),
        "SentTimestamp": str(message.sent_timestamp),
        "SenderId": "AIDAIT2UOQQY3AUEKVGXU",
        "ApproximateFirstReceiveTimestamp": str(message.approximate_first_receive_timestamp),
    }
    if getattr(message, "group_id", None):
        attributes["MessageGroupId"] = message.group_id
    if getattr(message, "deduplication_id", None):
        attributes["MessageDeduplicationId"] = message.deduplication_id
    if getattr(message, "sequence_number", None):
        attributes["SequenceNumber"] = str(message.sequence_number)
    message_attributes = {}
    for name, value in (message.message_attributes or {}).items():
        data_type = value.get("data_type") or value.get("DataType", "String")
        entry = {"dataType": data_type, "stringListValues": [], "binaryListValues": []}
        if "string_value" in value or "StringValue" in value:
            entry["stringValue"] = value.get("string_value", value.get("StringValue"))
        if "binary_value" in value or "BinaryValue" in value:
            entry["binaryValue"] = value.get("binary_value", value.get("BinaryValue"))
        message_attributes[name] = entry
    return {
        "messageId": message.id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.body_md5,
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def _enabled(value: Any) -> bool:
    # Through CloudFormation, `Enabled` can arrive as the string "false".
    if isinstance(value, str):
        return value.strip().lower() != "false"
    return bool(value)


def failed_message_ids(payload: str, records: list[dict], report_item_failures: bool) -> set[str] | None:
    """Which message ids failed, per Lambda's partial batch response rules (None = the whole batch)."""
    if not report_item_failures:
        return set()
    try:
        response = json.loads(payload)
    except ValueError:
        return None
    if response is None or response == {} or not isinstance(response, dict):
        return set()
    failures = response.get("batchItemFailures")
    if failures is None or failures == []:
        return set()
    ids = {r["messageId"] for r in records}
    failed = set()
    for item in failures:
        item_id = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not item_id or item_id not in ids:
            # Lambda treats an unknown or empty identifier as a failure of the whole batch.
            return None
        failed.add(item_id)
    return failed


class SqsPoller:
    def __init__(self, runtime: LambdaRuntime, account_id: str, idle_sleep: float = IDLE_SLEEP_S,
                 sleep: Callable[[float], None] | None = None, max_batches_per_mapping: int = MAX_BATCHES_PER_MAPPING):
        self.runtime = runtime
        self.account_id = account_id
        self.idle_sleep = idle_sleep
        self.max_batches_per_mapping = max_batches_per_mapping
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = {}  # mapping uuid -> batches being invoked
        self._batch_started: dict[str, float] = {}  # mapping uuid -> when a partial batch was first seen
        self.batches: list[tuple[str, int]] = []  # (mapping uuid, batch size) of recent invokes, for tests

    def start(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="sdlf-sqs-batch")
        _wakers.append(self._wake)
        self._thread = threading.Thread(target=self._loop, name="sdlf-sqs-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._wake in _wakers:
            _wakers.remove(self._wake)
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            # Cleared before the pass: a message sent during it sets the event again, so it is never missed.
            self._wake.clear()
            try:
                worked = self.poll_once()
            except Exception:
                LOG.exception("SQS poller iteration failed")
                worked = False
            if not worked:
                self._wake.wait(self.idle_sleep)

    def _mappings(self) -> list[tuple[Any, Any]]:
        """(lambda backend, mapping) for every enabled SQS mapping in every region in use."""
        from moto.awslambda.utils import get_backend
        from moto.core.config import default_user_config

        if default_user_config.get("lambda", {}).get("use_docker", True) is False:
            from moto.awslambda_simple.models import lambda_simple_backends as backends
        else:
            from moto.awslambda.models import lambda_backends as backends
        found = []
        account = backends.get(self.account_id) if hasattr(backends, "get") else None
        if not account:
            return found
        for region in list(account.keys()):
            backend = get_backend(self.account_id, region)
            for esm in list(backend._event_source_mappings.values()):
                if _enabled(esm.enabled) and esm.event_source_arn.split(":")[2] == "sqs":
                    found.append((backend, esm))
        return found

    def poll_once(self) -> bool:
        """One pass over all mappings, receiving a batch for each that has room; True if any was received.
        Without a pool (not started) the batches are invoked in this thread, one after the other."""
        worked = False
        for backend, esm in self._mappings():
            if self._stop.is_set():
                break
            try:
                worked |= self._poll_mapping(backend, esm)
            except Exception:
                LOG.exception("polling mapping %s (%s) failed", esm.uuid, esm.event_source_arn)
        return worked

    def _concurrency(self, esm: Any) -> int:
        scaling = getattr(esm, "scaling_config", None) or {}
        maximum = scaling.get("MaximumConcurrency") if isinstance(scaling, dict) else None
        return max(1, min(int(maximum), self.max_batches_per_mapping)) if maximum else 1

    def _poll_mapping(self, lambda_backend: Any, esm: Any) -> bool:
        from moto.sqs.models import sqs_backends

        with self._lock:
            if self._in_flight.get(esm.uuid, 0) >= self._concurrency(esm):
                return False
        _, _, _, region, account, queue_name = esm.event_source_arn.split(":")
        sqs = sqs_backends[account][region]
        queue = sqs.queues.get(queue_name)
        if queue is None:
            return False
        batch_size = int(esm.batch_size or 10)
        window = float(esm.max_batch_window or 0)
        if window and len(queue.messages) < batch_size:
            # MaximumBatchingWindowInSeconds, loosely: wait for a full batch up to the window.
            first_seen = self._batch_started.setdefault(esm.uuid, time.monotonic())
            if not queue.messages or time.monotonic() - first_seen < window:
                return False
        self._batch_started.pop(esm.uuid, None)
        messages = sqs.receive_message(queue_name, batch_size,
                                       0, int(queue.visibility_timeout))
        if not messages:
            return False
        fn = lambda_backend.get_function(esm.function_arn)
        records = [_sqs_record(m, queue.queue_arn, region) for m in messages]
        with self._lock:
            self.batches.append((esm.uuid, len(records)))
            del self.batches[:-200]
            self._in_flight[esm.uuid] = self._in_flight.get(esm.uuid, 0) + 1
        if self._pool is None:
            self._invoke(sqs, queue_name, esm, fn, records)
        else:
            try:
                self._pool.submit(self._invoke, sqs, queue_name, esm, fn, records)
            except RuntimeError:  # stopping: the messages come back after their visibility timeout
                self._done(esm.uuid)
        return True

    def _done(self, mapping_uuid: str) -> None:
        with self._lock:
            left = self._in_flight.get(mapping_uuid, 1) - 1
            if left > 0:
                self._in_flight[mapping_uuid] = left
            else:
                self._in_flight.pop(mapping_uuid, None)
        self._wake.set()  # room for another batch of this mapping

    def _invoke(self, sqs: Any, queue_name: str, esm: Any, fn: Any, records: list[dict]) -> None:
        try:
            result = self.runtime.run(fn, {"Records": records})
            report = "ReportBatchItemFailures" in (esm.function_response_types or [])
            failed = None if result.errored else failed_message_ids(result.payload, records, report)
            for record in records:
                if failed is None or record["messageId"] in failed:
                    continue  # left in flight: visible again after the visibility timeout, then retried or DLQ'd
                try:
                    sqs.delete_message(queue_name, record["receiptHandle"])
                except Exception:
                    LOG.exception("could not delete message %s from %s", record["messageId"], queue_name)
        except Exception:
            LOG.exception("invoking %s for mapping %s failed", getattr(fn, "function_name", fn), esm.uuid)
        finally:
            self._done(esm.uuid)
