"""SQS: queue URLs, counts, and moving messages (receive, send, delete, release)."""
from __future__ import annotations

from email.utils import parsedate_to_datetime
from typing import Any

from sdlf_cli.aws.gateway import Gateway
from sdlf_cli.errors import AwsError, NotFound

BATCH = 10  # SQS's maximum per receive and per batch call


class Queues(Gateway):
    service = "sqs"

    def url_of(self, name: str) -> str | None:
        """The queue's URL, or None when no queue has this name."""
        try:
            return self._call("get_queue_url", QueueName=name)["QueueUrl"]
        except NotFound:
            return None

    def counts(self, url: str) -> tuple[int, int]:
        """(waiting, in flight): approximate numbers of visible and received-but-not-deleted messages."""
        attrs = self._call("get_queue_attributes", QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]).get("Attributes", {})
        return int(attrs.get("ApproximateNumberOfMessages", 0)), int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0))

    def server_time_ms(self, url: str) -> int | None:
        """The SQS server's clock (its Date header, whole seconds) in ms, or None when it sent none."""
        response = self._call("get_queue_attributes", QueueUrl=url, AttributeNames=["QueueArn"])
        date = (response.get("ResponseMetadata", {}).get("HTTPHeaders") or {}).get("date")
        try:
            return int(parsedate_to_datetime(date).timestamp()) * 1000
        except (TypeError, ValueError):
            return None

    def receive(self, url: str, *, max_messages: int, visibility: int, wait_seconds: int) -> list[dict]:
        return self._call("receive_message", QueueUrl=url, MaxNumberOfMessages=max_messages,
                          VisibilityTimeout=visibility, WaitTimeSeconds=wait_seconds, MessageAttributeNames=["All"],
                          AttributeNames=["SentTimestamp"]).get("Messages", [])

    def peek(self, url: str, limit: int = 1000, visibility: int = 30) -> list[dict]:
        """Up to `limit` messages, received and then made visible again: a look that moves nothing. Messages
        stay hidden from other consumers until released at the end (at most `visibility` seconds)."""
        waiting, in_flight = self.counts(url)
        if waiting == 0:
            return []
        seen: dict[str, dict] = {}
        idle = 0
        try:
            while len(seen) < min(limit, waiting) and idle < 2:
                batch = self.receive(url, max_messages=min(BATCH, limit - len(seen)), visibility=visibility,
                                     wait_seconds=0 if idle == 0 else 1)
                fresh = [m for m in batch if m["MessageId"] not in seen]
                seen.update((m["MessageId"], m) for m in fresh)
                idle = 0 if fresh else idle + 1
        finally:
            self.release(url, [m["ReceiptHandle"] for m in seen.values()])
        return list(seen.values())

    def pending(self, url: str) -> int:
        """Messages waiting, in flight or delayed (approximate)."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                 "ApproximateNumberOfMessagesDelayed"]
        attrs = self._call("get_queue_attributes", QueueUrl=url, AttributeNames=names).get("Attributes", {})
        return sum(int(attrs.get(name, 0)) for name in names)

    def send(self, url: str, body: str, attributes: dict[str, Any] | None = None) -> str:
        kwargs: dict[str, Any] = {"QueueUrl": url, "MessageBody": body}
        if attributes:
            kwargs["MessageAttributes"] = attributes
        return self._call("send_message", **kwargs)["MessageId"]

    def delete(self, url: str, receipt_handle: str) -> None:
        self._call("delete_message", QueueUrl=url, ReceiptHandle=receipt_handle)

    def release(self, url: str, receipt_handles: list[str]) -> None:
        """Make received messages visible again. Best effort: they reappear anyway when their visibility
        timeout ends, so a failure here loses nothing."""
        for start in range(0, len(receipt_handles), BATCH):
            chunk = receipt_handles[start:start + BATCH]
            try:
                self._call("change_message_visibility_batch", QueueUrl=url, Entries=[
                    {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0} for i, handle in enumerate(chunk)])
            except AwsError:
                pass
