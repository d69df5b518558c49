"""Team notifications on SNS: a short subject line and a JSON message people and machines can read."""
from __future__ import annotations

import json
import re
from typing import Any

from sdlf_datalake.errors import aws_call
from sdlf_datalake.support import lazy_client

SUBJECT_LIMIT = 100  # SNS: at most 100 printable ASCII characters, no line breaks
_NOT_PRINTABLE = re.compile(r"[^\x20-\x7e]")


def subject_line(text: str) -> str:
    cleaned = _NOT_PRINTABLE.sub("?", " ".join(text.split()))
    if len(cleaned) > SUBJECT_LIMIT:
        cleaned = cleaned[: SUBJECT_LIMIT - 3] + "..."
    return cleaned or "sdlf notification"


class Notifier:
    def __init__(self, topic_arn: str, client: Any = None):
        if not topic_arn:
            raise ValueError("Notifier needs a topic ARN")
        self.topic_arn = topic_arn
        self._client = client

    client = lazy_client("sns", "_client")

    def publish(self, subject: str, message: dict[str, Any], event: str) -> str:
        """Publish; `event` (e.g. "object-failed") is a message attribute subscribers can filter on."""
        with aws_call(f"publishing to {self.topic_arn}"):
            response = self.client.publish(
                TopicArn=self.topic_arn,
                Subject=subject_line(subject),
                Message=json.dumps(message, indent=2, sort_keys=True, default=str),
                MessageAttributes={"event": {"DataType": "String", "StringValue": event}},
            )
        return response["MessageId"]
