"""Provider for AWS::CloudWatch::Alarm (moto skips it), on moto's CloudWatch backend, so the DLQ alarms
the templates declare exist locally and `describe_alarms` shows them."""
from __future__ import annotations

from moto.core.common_models import CloudFormationModel

from sdlf_cli.local.cfn._provider import ProviderMixin


def _cloudwatch(account_id: str, region_name: str):
    from moto.cloudwatch.models import cloudwatch_backends

    return cloudwatch_backends[account_id][region_name]


def _put(name: str, props: dict, account_id: str, region_name: str) -> None:
    _cloudwatch(account_id, region_name).put_metric_alarm(
        name=name,
        namespace=props.get("Namespace"),
        metric_name=props.get("MetricName"),
        comparison_operator=props["ComparisonOperator"],
        evaluation_periods=int(props["EvaluationPeriods"]),
        period=int(props.get("Period") or 60),
        threshold=float(props.get("Threshold") or 0),
        statistic=props.get("Statistic"),
        description=props.get("AlarmDescription", ""),
        dimensions=[{"Name": d["Name"], "Value": d["Value"]} for d in props.get("Dimensions") or []],
        alarm_actions=list(props.get("AlarmActions") or []),
        ok_actions=list(props.get("OKActions") or []),
        insufficient_data_actions=list(props.get("InsufficientDataActions") or []),
        treat_missing_data=props.get("TreatMissingData"),
        actions_enabled=str(props.get("ActionsEnabled", True)).lower() != "false",
    )


class CloudWatchAlarm(ProviderMixin, CloudFormationModel):
    TYPE = "AWS::CloudWatch::Alarm"
    NAME_PROPERTY = "AlarmName"
    ATTRIBUTES = {"Arn": lambda self: f"arn:aws:cloudwatch:{self.region_name}:{self.account_id}:alarm:{self.name}"}

    def __init__(self, name: str, account_id: str, region_name: str):
        self.name, self.account_id, self.region_name = name, account_id, region_name

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        _put(resource_name, cloudformation_json["Properties"], account_id, region_name)
        return cls(resource_name, account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                        account_id, region_name):
        props = cloudformation_json["Properties"]
        name = props.get("AlarmName", original_resource.name)
        if name != original_resource.name:
            original_resource.delete(account_id, region_name)
        _put(name, props, account_id, region_name)
        return cls(name, account_id, region_name)

    def delete(self, account_id: str, region_name: str) -> None:
        _cloudwatch(account_id, region_name).delete_alarms([self.name])


PROVIDERS = [CloudWatchAlarm]
