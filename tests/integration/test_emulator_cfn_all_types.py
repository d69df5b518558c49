"""One template with every resource type the lake's templates use must deploy CREATE_COMPLETE on the
emulator, with the settings that matter applied (a moto upgrade that drops one fails here)."""
from __future__ import annotations

from tests.integration.test_emulator_cfn_helpers import client, delete, deploy, outputs, unique, zip_bytes

ACCOUNT = "123456789012"


def _template(p: str) -> dict:
    arn = lambda name: {"Fn::GetAtt": [name, "Arn"]}  # noqa: E731
    ref = lambda name: {"Ref": name}  # noqa: E731
    kms = {"Fn::GetAtt": ["Key", "Arn"]}
    assume = lambda service: {"Version": "2012-10-17", "Statement": [  # noqa: E731
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}
    return {
        "Parameters": {"pArtifactsBucket": {"Type": "String"}, "pCodeCatalogKey": {"Type": "String"},
                       "pLayerDatalakeKey": {"Type": "String"}},
        "Resources": {
            "Key": {"Type": "AWS::KMS::Key", "Properties": {"EnableKeyRotation": True, "KeyPolicy": {
                "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                                                        "Action": "kms:*", "Resource": "*"}]}}},
            "KeyAlias": {"Type": "AWS::KMS::Alias", "Properties": {"AliasName": f"alias/{p}", "TargetKeyId": ref("Key")}},
            "Logs": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": f"{p}-logs",
                     "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerPreferred"}]}}},
            "Raw": {"Type": "AWS::S3::Bucket", "Properties": {
                "BucketName": f"{p}-raw",
                "BucketEncryption": {"ServerSideEncryptionConfiguration": [{"BucketKeyEnabled": True,
                    "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms}}]},
                "VersioningConfiguration": {"Status": "Enabled"},
                "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                                   "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
                "LoggingConfiguration": {"DestinationBucketName": ref("Logs"), "LogFilePrefix": "raw/"},
                "LifecycleConfiguration": {"Rules": [{"Id": "expire", "Status": "Enabled", "ExpirationInDays": 365,
                                                      "Transitions": [{"StorageClass": "STANDARD_IA", "TransitionInDays": 30}]}]},
                "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                "NotificationConfiguration": {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}}},
            "RawPolicy": {"Type": "AWS::S3::BucketPolicy", "Properties": {"Bucket": ref("Raw"), "PolicyDocument": {
                "Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                    "Resource": [{"Fn::Sub": "arn:aws:s3:::${Raw}"}, {"Fn::Sub": "arn:aws:s3:::${Raw}/*"}],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}}},
            "Catalog": {"Type": "AWS::DynamoDB::Table", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
                        "Properties": {
                "TableName": f"{p}-catalog", "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"},
                                         {"AttributeName": "dataset_id", "AttributeType": "S"},
                                         {"AttributeName": "updated_at", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                "GlobalSecondaryIndexes": [{"IndexName": "by-dataset", "Projection": {"ProjectionType": "ALL"},
                    "KeySchema": [{"AttributeName": "dataset_id", "KeyType": "HASH"},
                                  {"AttributeName": "updated_at", "KeyType": "RANGE"}]}],
                "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": kms},
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True}}},
            "Dlq": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": f"{p}-dlq", "KmsMasterKeyId": ref("Key")}},
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {
                "QueueName": f"{p}-queue", "KmsMasterKeyId": ref("Key"), "VisibilityTimeout": 180,
                "RedrivePolicy": {"deadLetterTargetArn": arn("Dlq"), "maxReceiveCount": 5}}},
            "Rule": {"Type": "AWS::Events::Rule", "Properties": {
                "EventPattern": {"source": ["aws.s3"], "detail-type": ["Object Created"],
                                 "detail": {"bucket": {"name": [ref("Raw")]}}},
                "Targets": [{"Id": "queue", "Arn": arn("Queue")}]}},
            "QueuePolicy": {"Type": "AWS::SQS::QueuePolicy", "Properties": {"Queues": [ref("Queue")], "PolicyDocument": {
                "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage", "Resource": arn("Queue"),
                    "Condition": {"ArnEquals": {"aws:SourceArn": arn("Rule")}}}]}}},
            "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": assume("lambda.amazonaws.com"),
                     "ManagedPolicyArns": ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]}},
            "Policy": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {"Roles": [ref("Role")], "PolicyDocument": {
                "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["dynamodb:PutItem"],
                                                        "Resource": arn("Catalog")}]}}},
            "LogGroup": {"Type": "AWS::Logs::LogGroup", "Properties": {
                "LogGroupName": f"/aws/lambda/{p}-catalog", "RetentionInDays": 30, "KmsKeyId": kms}},
            "Layer": {"Type": "AWS::Lambda::LayerVersion", "Properties": {"LayerName": f"{p}-datalake",
                      "Content": {"S3Bucket": ref("pArtifactsBucket"), "S3Key": ref("pLayerDatalakeKey")}}},
            "Function": {"Type": "AWS::Lambda::Function", "Properties": {
                "FunctionName": f"{p}-catalog", "Runtime": "python3.12", "Handler": "handler.handler",
                "Role": arn("Role"), "Layers": [ref("Layer")], "Timeout": 30, "KmsKeyArn": kms,
                "Environment": {"Variables": {"CATALOG_TABLE": ref("Catalog")}},
                "Code": {"S3Bucket": ref("pArtifactsBucket"), "S3Key": ref("pCodeCatalogKey")}}},
            "Mapping": {"Type": "AWS::Lambda::EventSourceMapping", "Properties": {
                "EventSourceArn": arn("Queue"), "FunctionName": ref("Function"), "BatchSize": 10,
                "FunctionResponseTypes": ["ReportBatchItemFailures"]}},
            "Permission": {"Type": "AWS::Lambda::Permission", "Properties": {
                "FunctionName": ref("Function"), "Action": "lambda:InvokeFunction",
                "Principal": "events.amazonaws.com", "SourceArn": arn("Rule")}},
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": f"{p}-notifications", "KmsMasterKeyId": ref("Key")}},
            "TopicPolicy": {"Type": "AWS::SNS::TopicPolicy", "Properties": {"Topics": [ref("Topic")], "PolicyDocument": {
                "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                                                        "Action": "sns:Publish", "Resource": ref("Topic")}]}}},
            "Subscription": {"Type": "AWS::SNS::Subscription", "Properties": {
                "TopicArn": ref("Topic"), "Protocol": "sqs", "Endpoint": arn("Dlq")}},
            "Param": {"Type": "AWS::SSM::Parameter", "Properties": {"Name": f"/{p}/tables/catalog", "Type": "String",
                      "Value": ref("Catalog")}},
            "StateMachine": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
                "StateMachineName": f"{p}-stage-a", "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/states",
                "Definition": {"StartAt": "Go", "States": {"Go": {"Type": "Task", "Resource": "${Fn}", "End": True}}},
                "DefinitionSubstitutions": {"Fn": arn("Function")}}},
            "Workgroup": {"Type": "AWS::Athena::WorkGroup", "Properties": {"Name": f"{p}-wg",
                          "WorkGroupConfiguration": {"ResultConfiguration": {"OutputLocation": {"Fn::Sub": "s3://${Logs}/athena/"}}}}},
            "Database": {"Type": "AWS::Glue::Database", "Properties": {"CatalogId": ACCOUNT,
                         "DatabaseInput": {"Name": p.replace("-", "_")}}},
            "Table": {"Type": "AWS::Glue::Table", "Properties": {"CatalogId": ACCOUNT, "DatabaseName": ref("Database"),
                      "TableInput": {"Name": "objects", "StorageDescriptor": {"Columns": [{"Name": "id", "Type": "string"}]}}}},
            "Job": {"Type": "AWS::Glue::Job", "Properties": {"Name": f"{p}-job", "Role": arn("Role"), "GlueVersion": "4.0",
                    "Command": {"Name": "glueetl", "ScriptLocation": {"Fn::Sub": "s3://${pArtifactsBucket}/glue/job.py"}}}},
            "Crawler": {"Type": "AWS::Glue::Crawler", "Properties": {"Name": f"{p}-crawler", "Role": arn("Role"),
                        "DatabaseName": ref("Database"), "Targets": {"S3Targets": [{"Path": {"Fn::Sub": "s3://${Raw}/"}}]}}},
            "LakeSettings": {"Type": "AWS::LakeFormation::DataLakeSettings", "Properties": {
                "Admins": [{"DataLakePrincipalIdentifier": arn("Role")}], "MutationType": "APPEND"}},
            "LakeLocation": {"Type": "AWS::LakeFormation::Resource", "Properties": {
                "ResourceArn": {"Fn::Sub": "arn:aws:s3:::${Raw}"}, "UseServiceLinkedRole": True}},
            "LakeGrant": {"Type": "AWS::LakeFormation::Permissions", "Properties": {
                "DataLakePrincipal": {"DataLakePrincipalIdentifier": arn("Role")},
                "Resource": {"TableResource": {"CatalogId": ACCOUNT, "DatabaseName": ref("Database"), "TableWildcard": {}}},
                "Permissions": ["SELECT"]}},
            "LakePrincipalGrant": {"Type": "AWS::LakeFormation::PrincipalPermissions", "Properties": {
                "Principal": {"DataLakePrincipalIdentifier": arn("Role")},
                "Resource": {"Database": {"CatalogId": ACCOUNT, "Name": ref("Database")}},
                "Permissions": ["DESCRIBE"], "PermissionsWithGrantOption": []}},
        },
        "Outputs": {"KmsKeyArn": {"Value": kms}, "RawBucket": {"Value": ref("Raw")},
                    "CatalogTable": {"Value": ref("Catalog")}, "CatalogQueueUrl": {"Value": ref("Queue")},
                    "TopicArn": {"Value": ref("Topic")}, "LayerArn": {"Value": ref("Layer")},
                    "Workgroup": {"Value": ref("Workgroup")}, "StateMachine": {"Value": ref("StateMachine")}},
    }


def test_template_with_every_type_the_lake_uses_creates_complete(emulator):
    p = unique("all")
    s3 = client(emulator, "s3")
    artifacts = f"{p}-artifacts"
    s3.create_bucket(Bucket=artifacts)
    s3.put_object(Bucket=artifacts, Key="code.zip", Body=zip_bytes({"handler.py": "def handler(e, c):\n    return {}\n"}))
    s3.put_object(Bucket=artifacts, Key="layer.zip", Body=zip_bytes({"python/sdlf_datalake/__init__.py": ""}))
    stack = deploy(emulator, p, _template(p), {"pArtifactsBucket": artifacts, "pCodeCatalogKey": "code.zip",
                                               "pLayerDatalakeKey": "layer.zip"})
    events = client(emulator, "cloudformation").describe_stack_events(StackName=p)["StackEvents"]
    assert stack["StackStatus"] == "CREATE_COMPLETE", [e.get("ResourceStatusReason") for e in events]
    values = outputs(stack)
    assert set(values) == {"KmsKeyArn", "RawBucket", "CatalogTable", "CatalogQueueUrl", "TopicArn", "LayerArn",
                           "Workgroup", "StateMachine"}
    assert all(values.values()), values

    ddb = client(emulator, "dynamodb")
    table = ddb.describe_table(TableName=f"{p}-catalog")["Table"]
    assert table["SSEDescription"]["Status"] == "ENABLED"
    assert table["GlobalSecondaryIndexes"][0]["IndexName"] == "by-dataset"
    assert ddb.describe_continuous_backups(TableName=f"{p}-catalog")["ContinuousBackupsDescription"][
        "PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    assert ddb.describe_time_to_live(TableName=f"{p}-catalog")["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    sqs = client(emulator, "sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=values["CatalogQueueUrl"], AttributeNames=["All"])["Attributes"]
    assert '"maxReceiveCount": 5' in attributes["RedrivePolicy"] or '"maxReceiveCount":5' in attributes["RedrivePolicy"]
    assert attributes["KmsMasterKeyId"] and "Policy" in attributes
    assert client(emulator, "kms").get_key_rotation_status(KeyId=values["KmsKeyArn"])["KeyRotationEnabled"] is True
    group = client(emulator, "logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{p}-catalog")["logGroups"][0]
    assert group["retentionInDays"] == 30 and group.get("kmsKeyId") == values["KmsKeyArn"]
    mapping = client(emulator, "lambda").list_event_source_mappings(FunctionName=f"{p}-catalog")["EventSourceMappings"][0]
    assert mapping["BatchSize"] == 10 and mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert client(emulator, "ssm").get_parameter(Name=f"/{p}/tables/catalog")["Parameter"]["Value"] == f"{p}-catalog"

    # a second deploy with new Lambda code and a changed retention updates in place
    s3.put_object(Bucket=artifacts, Key="code2.zip", Body=zip_bytes({"handler.py": "def handler(e, c):\n    return 2\n"}))
    template = _template(p)
    template["Resources"]["LogGroup"]["Properties"]["RetentionInDays"] = 90
    updated = deploy(emulator, p, template, {"pArtifactsBucket": artifacts, "pCodeCatalogKey": "code2.zip",
                                             "pLayerDatalakeKey": "layer.zip"})
    assert updated["StackStatus"] == "UPDATE_COMPLETE"
    group = client(emulator, "logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{p}-catalog")["logGroups"][0]
    assert group["retentionInDays"] == 90

    delete(emulator, p)
    assert client(emulator, "cloudformation").describe_stacks(StackName=stack["StackId"])["Stacks"][0][
        "StackStatus"] == "DELETE_COMPLETE"
    # DeletionPolicy Retain keeps the catalog table
    assert ddb.describe_table(TableName=f"{p}-catalog")["Table"]["TableName"] == f"{p}-catalog"
