"""Seam: AWS::CloudWatch::Alarm, which moto's CloudFormation skips, is created, updated and deleted."""
import json

import boto3

TEMPLATE = {
    "Resources": {
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "alarm-seam-dlq"}},
        "Alarm": {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmName": "alarm-seam-dlq-not-empty",
                "AlarmDescription": "first",
                "Namespace": "AWS/SQS",
                "MetricName": "ApproximateNumberOfMessagesVisible",
                "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["Queue", "QueueName"]}}],
                "Statistic": "Maximum",
                "Period": 300,
                "EvaluationPeriods": 1,
                "Threshold": 0,
                "ComparisonOperator": "GreaterThanThreshold",
                "TreatMissingData": "notBreaching",
            },
        },
    },
    "Outputs": {"AlarmArn": {"Value": {"Fn::GetAtt": ["Alarm", "Arn"]}}},
}


def test_alarm_provider_create_update_delete(emulator):
    kwargs = dict(endpoint_url=emulator.endpoint_url, region_name="us-east-1",
                  aws_access_key_id="x", aws_secret_access_key="x")
    cfn, cloudwatch = boto3.client("cloudformation", **kwargs), boto3.client("cloudwatch", **kwargs)
    cfn.create_stack(StackName="alarm-seam", TemplateBody=json.dumps(TEMPLATE))
    alarms = cloudwatch.describe_alarms(AlarmNames=["alarm-seam-dlq-not-empty"])["MetricAlarms"]
    assert alarms and alarms[0]["Dimensions"] == [{"Name": "QueueName", "Value": "alarm-seam-dlq"}]
    outputs = cfn.describe_stacks(StackName="alarm-seam")["Stacks"][0]["Outputs"]
    assert outputs[0]["OutputValue"].endswith(":alarm:alarm-seam-dlq-not-empty")

    TEMPLATE["Resources"]["Alarm"]["Properties"]["AlarmDescription"] = "second"
    cfn.update_stack(StackName="alarm-seam", TemplateBody=json.dumps(TEMPLATE))
    alarms = cloudwatch.describe_alarms(AlarmNames=["alarm-seam-dlq-not-empty"])["MetricAlarms"]
    assert alarms[0]["AlarmDescription"] == "second"

    cfn.delete_stack(StackName="alarm-seam")
    assert not cloudwatch.describe_alarms(AlarmNames=["alarm-seam-dlq-not-empty"])["MetricAlarms"]
