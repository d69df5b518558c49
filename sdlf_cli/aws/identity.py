"""STS: which account the credentials in use belong to."""
from __future__ import annotations

from sdlf_cli.aws.gateway import Gateway


class Identity(Gateway):
    service = "sts"

    def account_id(self) -> str:
        return self._call("get_caller_identity")["Account"]
