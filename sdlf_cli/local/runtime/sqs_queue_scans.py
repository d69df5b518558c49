"""moto's SQS answers without rescanning the queue for every message it looks at.

moto 5.2.5 builds a queue's whole attribute map (`Queue.attributes`) to read a single attribute, and that map
counts the queue's visible, delayed and in-flight messages in three passes that each read the clock once per
message. ReceiveMessage reads the retention period that way, three times for every message it returns, and
SendMessage reads ContentBasedDeduplication that way: with a backlog of n messages a receive of 10 costs
~120 n clock reads, and a burst of a few hundred objects spent more of the emulator's CPU in these scans than
in anything the lake asked for.

Named patches (`sdlf_cli.local.cfn._patching`), same answers as moto's:
- the retention check reads the queue's retention period itself (what the attribute map holds for
  MessageRetentionPeriod) instead of building the map three times;
- the attribute map counts the three message states in one pass, at one reading of moto's clock, and is
  otherwise built as moto builds it (same keys, same values, booleans as "true"/"false").
"""
from __future__ import annotations

from typing import Any

RETENTION_PATCH = "sqs: the retention check reads the queue's retention period, not its whole attribute map"
ATTRIBUTES_PATCH = "sqs: a queue's attribute map counts its messages in one pass"

_COUNTED = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed",
            "ApproximateNumberOfMessagesNotVisible")


def _retention_period_read(_original: Any) -> Any:
    from moto.sqs import models

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention_period = self.get_queue(queue_name).message_retention_period
        return retention_period + message.sent_timestamp / 1000 > models.unix_time()

    return is_message_valid_based_on_retention_period


def _counted_once(_original: Any) -> Any:
    from moto.core.utils import camelcase_to_underscores
    from moto.sqs import models

    python_names: dict[str, str] = {}

    def python_name(attribute: str) -> str:
        name = python_names.get(attribute)
        if name is None:
            name = python_names[attribute] = camelcase_to_underscores(attribute)
        return name

    def attributes(self: Any) -> dict[str, Any]:
        now = models.unix_time_millis()
        available = delayed = not_visible = 0
        for message in self._messages:
            is_delayed = now < message.delayed_until
            if now > message.visible_at:
                if not is_delayed:
                    available += 1
            else:
                not_visible += 1
            if is_delayed:
                delayed += 1
        counts = dict(zip(_COUNTED, (available, delayed, not_visible)))
        result: dict[str, Any] = {}
        for attribute in self.BASE_ATTRIBUTES:
            result[attribute] = counts[attribute] if attribute in counts else getattr(self, python_name(attribute))
        if self.fifo_queue:
            for attribute in self.FIFO_ATTRIBUTES:
                result[attribute] = getattr(self, python_name(attribute))
        if self.kms_master_key_id:
            for attribute in self.KMS_ATTRIBUTES:
                result[attribute] = getattr(self, python_name(attribute))
        if self.policy:
            result["Policy"] = self.policy
        if self.redrive_policy:
            result["RedrivePolicy"] = models.json.dumps(self.redrive_policy)
        for key in result:
            if isinstance(result[key], bool):
                result[key] = str(result[key]).lower()
        return result

    return property(attributes)


def install() -> None:
    from moto.sqs.models import Queue, SQSBackend

    from sdlf_cli.local.cfn import _patching

    _patching.wrap(SQSBackend, "is_message_valid_based_on_retention_period", RETENTION_PATCH, _retention_period_read)
    _patching.wrap(Queue, "attributes", ATTRIBUTES_PATCH, _counted_once)


def uninstall() -> None:
    from sdlf_cli.local.cfn import _patching

    _patching.uninstall(ATTRIBUTES_PATCH)
    _patching.uninstall(RETENTION_PATCH)
