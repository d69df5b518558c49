"""KMS: the account's customer-managed keys, and scheduling one's deletion."""
from __future__ import annotations

from sdlf_cli.aws.gateway import Gateway

_PENDING = ("PendingDeletion", "PendingReplicaDeletion")


class Keys(Gateway):
    service = "kms"

    def live_customer_keys(self) -> dict[str, str]:
        """Customer-managed keys not already pending deletion: key id -> description."""
        out = {}
        for key in self._pages("list_keys", "Keys"):
            meta = self._call("describe_key", KeyId=key["KeyId"])["KeyMetadata"]
            if meta.get("KeyManager") == "CUSTOMER" and meta.get("KeyState") not in _PENDING:
                out[key["KeyId"]] = meta.get("Description", "")
        return out

    def schedule_deletion(self, key_id: str, days: int) -> None:
        self._call("schedule_key_deletion", KeyId=key_id, PendingWindowInDays=days)
