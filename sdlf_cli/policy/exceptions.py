"""The lake's IAM exceptions, each with its reason, in one place (the tests hold the templates to them).

UNSCOPED_ACTIONS: the only actions a policy of the lake may allow on Resource "*": AWS offers no
resource-level permission for them. KMS key policies are not concerned: there "*" means the key itself.

Every role a team stack creates carries the team's permissions boundary, and every role foundations
creates the lake's. ROLES_WITHOUT_BOUNDARY: the roles that carry none, by logical id, and why.
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
    # Deploying the lake (templates/cicd-target/): account-level calls CloudFormation makes for its stacks.
    "cloudformation:ListStacks": "Lists every stack of the account and region: no resource to scope it to",
    "cloudformation:ValidateTemplate": "Validates a template body, which is not a resource of the account",
    "kms:CreateKey": "A key's ARN does not exist before the key: creating one cannot be scoped to it",
    "lambda:CreateEventSourceMapping": ("A mapping's ARN does not exist before the mapping; the statement "
                                        "scopes it with the lambda:FunctionArn condition instead"),
    **{f"lakeformation:{a}": ("Lake Formation's settings, registrations and grants are account-level APIs "
                              "without resource-level permissions")
       for a in ("DeregisterResource", "DescribeResource", "GetDataLakeSettings", "GrantPermissions",
                 "ListPermissions", "PutDataLakeSettings", "RegisterResource", "RevokePermissions")},
}

_DELIVERY = ("A delivery role: it creates and updates the lake's stacks and roles, so no team or lake data "
             "boundary can bound it. Its own policy is its ceiling, and it may only create roles that carry "
             "a lake or team boundary and never remove one (templates/cicd-target/).")

ROLES_WITHOUT_BOUNDARY: dict[str, str] = {
    "rDeployRole": _DELIVERY,
    "rCfnRole": _DELIVERY,
    "rBuildRole": ("The delivery pipeline's CodeBuild role in the tooling account: it reads the source, writes "
                   "build logs and artifacts, and assumes the target environments' deploy roles; it holds no "
                   "permission on the lake's data."),
    "rPipelineRole": ("The delivery pipeline's CodePipeline role: it moves artifacts, starts the builds and "
                      "publishes approvals; it holds no permission on the lake's data."),
    "rSourceEventsRole": "Lets EventBridge start the delivery pipeline when its source changes; nothing else.",
}
