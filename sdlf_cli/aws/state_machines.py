"""Step Functions: an execution's status and the failure its history records."""
from __future__ import annotations

from sdlf_cli.aws.gateway import Gateway


class StateMachines(Gateway):
    service = "stepfunctions"

    def describe_execution(self, execution_arn: str) -> dict:
        return self._call("describe_execution", executionArn=execution_arn)

    def newest_events(self, execution_arn: str, limit: int = 50) -> list[dict]:
        return self._call("get_execution_history", executionArn=execution_arn, reverseOrder=True,
                          maxResults=limit)["events"]
