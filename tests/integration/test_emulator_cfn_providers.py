"""Each provider for a type moto skips: create, Ref/GetAtt, update, delete (through stack delete)."""
from __future__ import annotations

import json

from tests.integration.test_emulator_cfn_helpers import ROLE_ARN, client, delete, deploy, outputs, unique

ACCOUNT = "123456789012"


def _glue_template(db: str, table: str, job: str, crawler: str, description: str, workers: int) -> dict:
    return {"Resources": {
        "Db": {"Type": "AWS::Glue::Database", "Properties": {
            "CatalogId": {"Ref": "AWS::AccountId"}, "DatabaseInput": {"Name": db, "Description": description}}},
        "Table": {"Type": "AWS::Glue::Table", "Properties": {
            "CatalogId": {"Ref": "AWS::AccountId"}, "DatabaseName": {"Ref": "Db"},
            "TableInput": {"Name": table, "TableType": "EXTERNAL_TABLE", "Description": description,
                           "StorageDescriptor": {"Columns": [{"Name": "id", "Type": "string"}],
                                                 "Location": "s3://bucket/team/dataset/"}}}},
        "Job": {"Type": "AWS::Glue::Job", "Properties": {
            "Name": job, "Role": ROLE_ARN, "GlueVersion": "4.0", "WorkerType": "G.1X", "NumberOfWorkers": workers,
            "Command": {"Name": "glueetl", "ScriptLocation": "s3://artifacts/glue/job.py", "PythonVersion": "3"},
            "DefaultArguments": {"--job-bookmark-option": "job-bookmark-enable"}, "Tags": {"team": "t"}}},
        "Crawler": {"Type": "AWS::Glue::Crawler", "Properties": {
            "Name": crawler, "Role": ROLE_ARN, "DatabaseName": {"Ref": "Db"}, "Description": description,
            "Targets": {"S3Targets": [{"Path": "s3://bucket/team/dataset/"}]},
            "SchemaChangePolicy": {"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "LOG"}}},
        "Security": {"Type": "AWS::Glue::SecurityConfiguration", "Properties": {
            "Name": f"{job}-sec", "EncryptionConfiguration": {"S3Encryptions": [{"S3EncryptionMode": "SSE-S3"}]}}},
    }, "Outputs": {k: {"Value": {"Ref": k}} for k in ("Db", "Table", "Job", "Crawler", "Security")}}


def test_glue_providers(emulator):
    glue = client(emulator, "glue")
    db, table, job, crawler = unique("db").replace("-", "_"), "events", unique("job"), unique("crawler")
    stack = unique("glue")
    created = deploy(emulator, stack, _glue_template(db, table, job, crawler, "first", 2))
    assert created["StackStatus"] == "CREATE_COMPLETE"
    assert outputs(created) == {"Db": db, "Table": table, "Job": job, "Crawler": crawler, "Security": f"{job}-sec"}
    assert glue.get_database(Name=db)["Database"]["Description"] == "first"
    assert glue.get_table(DatabaseName=db, Name=table)["Table"]["StorageDescriptor"]["Columns"] == [
        {"Name": "id", "Type": "string"}]
    described_job = glue.get_job(JobName=job)["Job"]
    assert described_job["NumberOfWorkers"] == 2 and described_job["Command"]["ScriptLocation"].endswith("job.py")
    assert glue.get_crawler(Name=crawler)["Crawler"]["Targets"]["S3Targets"][0]["Path"] == "s3://bucket/team/dataset/"
    assert glue.get_security_configuration(Name=f"{job}-sec")["SecurityConfiguration"]["Name"] == f"{job}-sec"

    updated = deploy(emulator, stack, _glue_template(db, table, job, crawler, "second", 5))
    assert updated["StackStatus"] == "UPDATE_COMPLETE"
    assert glue.get_database(Name=db)["Database"]["Description"] == "second"
    assert glue.get_table(DatabaseName=db, Name=table)["Table"]["Description"] == "second"
    assert glue.get_job(JobName=job)["Job"]["NumberOfWorkers"] == 5
    assert glue.get_crawler(Name=crawler)["Crawler"]["Description"] == "second"

    delete(emulator, stack)
    assert db not in {d["Name"] for d in glue.get_databases()["DatabaseList"]}
    assert job not in glue.list_jobs()["JobNames"]
    assert crawler not in glue.list_crawlers()["CrawlerNames"]


def _lf_template(role: str, admin: str, bucket_arn: str, db: str, permissions: list[str]) -> dict:
    return {"Resources": {
        "Settings": {"Type": "AWS::LakeFormation::DataLakeSettings", "Properties": {
            "Admins": [{"DataLakePrincipalIdentifier": admin}]}},
        "Location": {"Type": "AWS::LakeFormation::Resource", "Properties": {
            "ResourceArn": bucket_arn, "RoleArn": role, "UseServiceLinkedRole": False}},
        "Db": {"Type": "AWS::Glue::Database", "Properties": {"CatalogId": ACCOUNT, "DatabaseInput": {"Name": db}}},
        "Grant": {"Type": "AWS::LakeFormation::Permissions", "Properties": {
            "DataLakePrincipal": {"DataLakePrincipalIdentifier": role},
            "Resource": {"DatabaseResource": {"CatalogId": ACCOUNT, "Name": {"Ref": "Db"}}},
            "Permissions": permissions}},
        "PrincipalGrant": {"Type": "AWS::LakeFormation::PrincipalPermissions", "Properties": {
            "Principal": {"DataLakePrincipalIdentifier": role},
            "Resource": {"DataLocation": {"CatalogId": ACCOUNT, "ResourceArn": bucket_arn}},
            "Permissions": ["DATA_LOCATION_ACCESS"], "PermissionsWithGrantOption": []}},
    }, "Outputs": {"Location": {"Value": {"Ref": "Location"}},
                   "Principal": {"Value": {"Fn::GetAtt": ["PrincipalGrant", "PrincipalIdentifier"]}}}}


def _granted(lf, role: str) -> list[dict]:
    return [p for p in lf.list_permissions()["PrincipalResourcePermissions"]
            if p["Principal"]["DataLakePrincipalIdentifier"] == role]


def test_lake_formation_providers(emulator):
    lf = client(emulator, "lakeformation")
    role, admin = f"arn:aws:iam::{ACCOUNT}:role/{unique('team')}", f"arn:aws:iam::{ACCOUNT}:role/admin"
    bucket_arn, db, stack = f"arn:aws:s3:::{unique('raw')}", unique("lfdb").replace("-", "_"), unique("lf")
    created = deploy(emulator, stack, _lf_template(role, admin, bucket_arn, db, ["DESCRIBE"]))
    assert created["StackStatus"] == "CREATE_COMPLETE"
    assert outputs(created) == {"Location": bucket_arn, "Principal": role}
    assert lf.get_data_lake_settings()["DataLakeSettings"]["DataLakeAdmins"] == [{"DataLakePrincipalIdentifier": admin}]
    assert bucket_arn in {r["ResourceArn"] for r in lf.list_resources()["ResourceInfoList"]}
    grants = _granted(lf, role)
    assert {p for g in grants if "Database" in g["Resource"] for p in g["Permissions"]} == {"DESCRIBE"}
    assert any("DataLocation" in g["Resource"] for g in grants)

    updated = deploy(emulator, stack, _lf_template(role, admin, bucket_arn, db, ["DESCRIBE", "CREATE_TABLE"]))
    assert updated["StackStatus"] == "UPDATE_COMPLETE"
    grants = _granted(lf, role)
    assert {p for g in grants if "Database" in g["Resource"] for p in g["Permissions"]} == {"DESCRIBE", "CREATE_TABLE"}

    delete(emulator, stack)
    assert _granted(lf, role) == []
    assert bucket_arn not in {r["ResourceArn"] for r in lf.list_resources()["ResourceInfoList"]}


def _workgroup_template(name: str, output: str, state: str) -> dict:
    return {"Resources": {"Wg": {"Type": "AWS::Athena::WorkGroup", "Properties": {
        "Name": name, "Description": output, "State": state,
        "WorkGroupConfiguration": {"EnforceWorkGroupConfiguration": True,
                                   "ResultConfiguration": {"OutputLocation": output}}}}},
        "Outputs": {"Name": {"Value": {"Ref": "Wg"}},
                    "Engine": {"Value": {"Fn::GetAtt": ["Wg", "WorkGroupConfiguration.EngineVersion.EffectiveEngineVersion"]}}}}


def test_athena_workgroup_provider(emulator):
    athena = client(emulator, "athena")
    name, stack = unique("wg"), unique("athena")
    created = deploy(emulator, stack, _workgroup_template(name, "s3://athena/one/", "ENABLED"))
    assert created["StackStatus"] == "CREATE_COMPLETE"
    assert outputs(created) == {"Name": name, "Engine": "Athena engine version 3"}
    described = athena.get_work_group(WorkGroup=name)["WorkGroup"]
    assert described["Configuration"]["ResultConfiguration"]["OutputLocation"] == "s3://athena/one/"
    deploy(emulator, stack, _workgroup_template(name, "s3://athena/two/", "DISABLED"))
    described = athena.get_work_group(WorkGroup=name)["WorkGroup"]
    assert described["Configuration"]["ResultConfiguration"]["OutputLocation"] == "s3://athena/two/"
    assert described["State"] == "DISABLED"
    delete(emulator, stack)
    assert name not in {w["Name"] for w in athena.list_work_groups()["WorkGroups"]}


def test_a_new_name_replaces_the_work_group_and_the_glue_job(emulator):
    athena, glue = client(emulator, "athena"), client(emulator, "glue")
    stack, first, second = unique("renamed"), unique("wg"), unique("wg")
    db = unique("db").replace("-", "_")

    def template(name: str) -> dict:
        work_group = _workgroup_template(name, "s3://athena/one/", "ENABLED")
        glue_resources = _glue_template(db, "events", f"{name}-job", f"{db}-crawler", "d", 2)["Resources"]
        return {"Resources": {**work_group["Resources"], **glue_resources}, "Outputs": work_group["Outputs"]}

    deploy(emulator, stack, template(first))
    updated = deploy(emulator, stack, template(second))
    assert updated["StackStatus"] == "UPDATE_COMPLETE" and outputs(updated)["Name"] == second
    work_groups = {w["Name"] for w in athena.list_work_groups()["WorkGroups"]}
    assert second in work_groups and first not in work_groups
    jobs = glue.list_jobs()["JobNames"]
    assert f"{second}-job" in jobs and f"{first}-job" not in jobs
    delete(emulator, stack)


def _messaging_template(queue: str, topic: str, sid: str, raw: bool) -> dict:
    return {"Resources": {
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": queue}},
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": topic}},
        "QueuePolicy": {"Type": "AWS::SQS::QueuePolicy", "Properties": {"Queues": [{"Ref": "Queue"}], "PolicyDocument": {
            "Version": "2012-10-17", "Statement": [{"Sid": sid, "Effect": "Allow",
                                                    "Principal": {"Service": "sns.amazonaws.com"},
                                                    "Action": "sqs:SendMessage",
                                                    "Resource": {"Fn::GetAtt": ["Queue", "Arn"]}}]}}},
        "TopicPolicy": {"Type": "AWS::SNS::TopicPolicy", "Properties": {"Topics": [{"Ref": "Topic"}], "PolicyDocument": {
            "Version": "2012-10-17", "Statement": [{"Sid": sid, "Effect": "Allow",
                                                    "Principal": {"Service": "events.amazonaws.com"},
                                                    "Action": "sns:Publish", "Resource": {"Ref": "Topic"}}]}}},
        "Subscription": {"Type": "AWS::SNS::Subscription", "Properties": {
            "TopicArn": {"Ref": "Topic"}, "Protocol": "sqs", "Endpoint": {"Fn::GetAtt": ["Queue", "Arn"]},
            "RawMessageDelivery": raw}},
    }, "Outputs": {"Subscription": {"Value": {"Ref": "Subscription"}},
                   "SubscriptionArn": {"Value": {"Fn::GetAtt": ["Subscription", "Arn"]}},
                   "QueuePolicy": {"Value": {"Ref": "QueuePolicy"}}}}


def test_queue_policy_topic_policy_and_subscription_providers(emulator):
    sqs, sns = client(emulator, "sqs"), client(emulator, "sns")
    queue, topic, stack = unique("q"), unique("topic"), unique("messaging")
    created = deploy(emulator, stack, _messaging_template(queue, topic, "first", False))
    assert created["StackStatus"] == "CREATE_COMPLETE"
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    topic_arn = f"arn:aws:sns:us-east-1:{ACCOUNT}:{topic}"

    def queue_sid() -> str | None:
        policy = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"].get("Policy")
        return json.loads(policy)["Statement"][0]["Sid"] if policy else None

    def topic_sid() -> str:
        return json.loads(sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"]["Policy"])["Statement"][0]["Sid"]

    assert queue_sid() == "first" and topic_sid() == "first"
    subscription_arn = outputs(created)["Subscription"]
    assert outputs(created)["SubscriptionArn"] == subscription_arn and subscription_arn.startswith(topic_arn)
    assert outputs(created)["QueuePolicy"]
    sns.publish(TopicArn=topic_arn, Message="hello")
    body = json.loads(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"][0]["Body"])
    assert body["Message"] == "hello"

    updated = deploy(emulator, stack, _messaging_template(queue, topic, "second", True))
    assert updated["StackStatus"] == "UPDATE_COMPLETE"
    assert queue_sid() == "second" and topic_sid() == "second"
    attributes = sns.get_subscription_attributes(SubscriptionArn=subscription_arn)["Attributes"]
    assert attributes["RawMessageDelivery"] == "true"

    delete(emulator, stack)
    assert subscription_arn not in {s["SubscriptionArn"] for s in sns.list_subscriptions()["Subscriptions"]}
