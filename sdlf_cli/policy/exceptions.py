"""The lake's IAM exceptions, each with its reason, in one place (the tests hold the templates to them).

UNSCOPED_ACTIONS: the only actions a policy of the lake may allow on Resource "*": AWS offers no
resource-level permission for them. KMS key policies are not concerned: there "*" means the key itself.

ROLES_WITHOUT_TEAM_BOUNDARY: roles the lake creates outside any team, which therefore do not carry a
team's permissions boundary, by logical id.
"""
from __future__ import annotations

_LOG_DELIVERY = ("Step Functions sets up log delivery to CloudWatch Logs with account-level APIs that take "
                 "no resource (AWS documents Resource \"*\" for them)")
_XRAY = "X-Ray trace data and sampling rules have no resource-level permissions"

UNSCOPED_ACTIONS: dict[str, str] = {
    "logs:CreateLogDelivery": _LOG_DELIVERY,
    "logs:GetLogDelivery": _LOG_DELIVERY,
    "logs:UpdateLogDelivery": _LOG_DELIVERY,
    "logs:DeleteLogDelivery": _LOG_DELIVERY,
    "logs:ListLogDeliveries": _LOG_DELIVERY,
    "logs:PutResourcePolicy": _LOG_DELIVERY,
    "logs:DescribeResourcePolicies": _LOG_DELIVERY,
    "logs:DescribeLogGroups": _LOG_DELIVERY,
    "xray:PutTraceSegments": _XRAY,
    "xray:PutTelemetryRecords": _XRAY,
    "xray:GetSamplingRules": _XRAY,
    "xray:GetSamplingTargets": _XRAY,
    "lakeformation:GetDataAccess": ("Lake Formation vends credentials for registered locations through one "
                                    "account-level action; what they reach is decided by its grants"),
}

ROLES_WITHOUT_TEAM_BOUNDARY: dict[str, str] = {
    "rCatalogRole": ("The catalog consumer belongs to the lake, not to a team: it records objects of every "
                     "team's prefix. Its own policy is its ceiling: its log group, its queue and DLQ, the "
                     "catalog table, the lake key and the dataset registrations, each by ARN."),
}
