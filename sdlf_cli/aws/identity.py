"""STS: which account, and which IAM principal, the credentials in use belong to."""
from __future__ import annotations

import re

from sdlf_cli.aws.gateway import Gateway
from sdlf_cli.errors import UsageError

# arn:<partition>:sts::<account>:assumed-role/<role name>/<session>
_ASSUMED_ROLE = re.compile(r"arn:(?P<partition>[\w-]+):sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/.+")


class Identity(Gateway):
    service = "sts"

    def account_id(self) -> str:
        return self._call("get_caller_identity")["Account"]

    def principal_arn(self) -> str:
        """The IAM role or user the credentials act as (an assumed-role session gives its role's ARN)."""
        return iam_principal(self._call("get_caller_identity")["Arn"])


def iam_principal(caller_arn: str) -> str:
    """The IAM ARN policies and Lake Formation name a caller by. A role with a path cannot be recovered from its
    session ARN: name such roles in the parameters instead."""
    match = _ASSUMED_ROLE.fullmatch(caller_arn)
    if match:
        return f"arn:{match['partition']}:iam::{match['account']}:role/{match['role']}"
    if caller_arn.endswith(":root"):
        raise UsageError(f"the credentials in use are the account's root user ({caller_arn}), which cannot be a Lake "
                         "Formation administrator: deploy as an IAM role or user, or list the administrators under "
                         "lake_formation_admins in the parameters file")
    return caller_arn
