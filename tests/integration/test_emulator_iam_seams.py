"""IAM enforcement on the emulator, one seam per service: a role allowed one resource is allowed it and
refused its neighbour, with AWS's AccessDenied message; the CLI's own keys stay admitted as the root."""
from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from sdlf_cli.local.iam import enforcement, resources, trust
from tests.integration.test_emulator_runtime_helpers import REGION, client, role_arn, unique, zip_bytes

ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def enforced(emulator):
    was_on = enforcement.enforced()
    enforcement.install()
    yield emulator
    if not was_on:
        enforcement.uninstall()


def as_role(emulator, statements: list[dict]):
    """A new role with one inline policy, and a factory of clients signed with its assumed-role keys."""
    iam = client(emulator, "iam")
    name = unique("iam-seam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "lambda.amazonaws.com"}}]}
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="seam",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    keys = client(emulator, "sts").assume_role(RoleArn=arn, RoleSessionName="seam")["Credentials"]

    def make(service: str):
        return boto3.client(service, endpoint_url=emulator.endpoint_url, region_name=REGION,
                            aws_access_key_id=keys["AccessKeyId"], aws_secret_access_key=keys["SecretAccessKey"],
                            aws_session_token=keys["SessionToken"])

    return make, f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/seam"


def allow(action: str, resource: str | list[str]) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def assert_denied(call, principal: str, action: str, resource: str) -> None:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    assert error["Code"] in ("AccessDenied", "AccessDeniedException"), error
    assert error["Message"] == (f"User: {principal} is not authorized to perform: {action} on resource: {resource} "
                                f"because no identity-based policy allows the {action} action")


def arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"


def test_the_cli_keys_act_as_root_and_enforcement_is_named_patches(enforced):
    assert enforcement.enforced()
    client(enforced, "dynamodb").list_tables()  # the fixed test keys: the account's root, allowed
    from sdlf_cli.local.cfn import _patching

    names = _patching.installed_names()
    for name in (enforcement.ENFORCE, enforcement.ROOT, enforcement.ACTION_NAMES, enforcement.EVERY_RESOURCE,
                 trust.TRUST,
                 *(resources.patch_name(s) for s in ("dynamodb", "kms", "sns", "ssm", "states", "glue", "lambda",
                                                     "events", "cloudformation"))):
        assert name in names


def test_an_unknown_signed_key_that_claims_a_session_is_refused(enforced):
    # Keys the emulator issued are checked; a forged session token on an issued key is rejected.
    make, _ = as_role(enforced, [allow("dynamodb:ListTables", "*")])
    keys = make("dynamodb")._request_signer._credentials
    forged = boto3.client("dynamodb", endpoint_url=enforced.endpoint_url, region_name=REGION,
                          aws_access_key_id=keys.access_key, aws_secret_access_key=keys.secret_key,
                          aws_session_token="forged")
    with pytest.raises(ClientError):
        forged.list_tables()


def test_dynamodb_table(enforced):
    ddb = client(enforced, "dynamodb")
    tables = [unique("seam-table") for _ in range(2)]
    for table in tables:
        ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                         BillingMode="PAY_PER_REQUEST")
    make, principal = as_role(enforced, [allow("dynamodb:GetItem", arn("dynamodb", f"table/{tables[0]}"))])
    role_ddb = make("dynamodb")
    assert "Item" not in role_ddb.get_item(TableName=tables[0], Key={"id": {"S": "x"}})
    assert_denied(lambda: role_ddb.get_item(TableName=tables[1], Key={"id": {"S": "x"}}), principal,
                  "dynamodb:GetItem", arn("dynamodb", f"table/{tables[1]}"))


def test_sqs_queue(enforced):
    sqs = client(enforced, "sqs")
    urls = [sqs.create_queue(QueueName=unique("seam-queue"))["QueueUrl"] for _ in range(2)]
    names = [url.rsplit("/", 1)[1] for url in urls]
    make, principal = as_role(enforced, [allow("sqs:SendMessage", arn("sqs", names[0]))])
    role_sqs = make("sqs")
    role_sqs.send_message(QueueUrl=urls[0], MessageBody="ok")
    assert_denied(lambda: role_sqs.send_message(QueueUrl=urls[1], MessageBody="no"), principal,
                  "sqs:SendMessage", arn("sqs", names[1]))


def test_kms_key_by_id_and_alias(enforced):
    kms = client(enforced, "kms")
    keys = [kms.create_key()["KeyMetadata"] for _ in range(2)]
    alias = f"alias/{unique('seam')}"
    kms.create_alias(AliasName=alias, TargetKeyId=keys[1]["KeyId"])
    make, principal = as_role(enforced, [allow("kms:DescribeKey", keys[0]["Arn"])])
    role_kms = make("kms")
    assert role_kms.describe_key(KeyId=keys[0]["KeyId"])["KeyMetadata"]["Arn"] == keys[0]["Arn"]
    assert_denied(lambda: role_kms.describe_key(KeyId=alias), principal, "kms:DescribeKey", keys[1]["Arn"])


def test_sns_topic(enforced):
    sns = client(enforced, "sns")
    topics = [sns.create_topic(Name=unique("seam-topic"))["TopicArn"] for _ in range(2)]
    make, principal = as_role(enforced, [allow("sns:Publish", topics[0])])
    role_sns = make("sns")
    role_sns.publish(TopicArn=topics[0], Message="ok")
    assert_denied(lambda: role_sns.publish(TopicArn=topics[1], Message="no"), principal, "sns:Publish", topics[1])


def test_ssm_parameter_and_path(enforced):
    ssm = client(enforced, "ssm")
    prefix = f"/{unique('seam')}"
    for name in ("allowed/one", "other/one"):
        ssm.put_parameter(Name=f"{prefix}/{name}", Value="v", Type="String")
    make, principal = as_role(enforced, [allow(["ssm:GetParameter", "ssm:GetParametersByPath", "ssm:GetParameters"],
                                               arn("ssm", f"parameter{prefix}/allowed*"))])
    role_ssm = make("ssm")
    assert role_ssm.get_parameter(Name=f"{prefix}/allowed/one")["Parameter"]["Value"] == "v"
    assert len(role_ssm.get_parameters_by_path(Path=f"{prefix}/allowed")["Parameters"]) == 1
    assert_denied(lambda: role_ssm.get_parameter(Name=f"{prefix}/other/one"), principal, "ssm:GetParameter",
                  arn("ssm", f"parameter{prefix}/other/one"))
    # Several parameters in one call: each one must be allowed.
    assert_denied(lambda: role_ssm.get_parameters(Names=[f"{prefix}/allowed/one", f"{prefix}/other/one"]),
                  principal, "ssm:GetParameters", arn("ssm", f"parameter{prefix}/other/one"))


def test_step_functions_state_machine_and_execution(enforced):
    sfn = client(enforced, "stepfunctions")
    definition = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
    machines = [sfn.create_state_machine(name=unique("seam-sm"), definition=definition,
                                         roleArn=f"arn:aws:iam::{ACCOUNT}:role/seam")["stateMachineArn"]
                for _ in range(2)]
    execution = sfn.start_execution(stateMachineArn=machines[1], name=unique("run"))["executionArn"]
    make, principal = as_role(enforced, [allow("states:DescribeStateMachine", machines[0])])
    role_sfn = make("stepfunctions")
    role_sfn.describe_state_machine(stateMachineArn=machines[0])
    assert_denied(lambda: role_sfn.describe_state_machine(stateMachineArn=machines[1]), principal,
                  "states:DescribeStateMachine", machines[1])
    assert_denied(lambda: role_sfn.describe_execution(executionArn=execution), principal,
                  "states:DescribeExecution", execution)


def test_glue_catalog_job_and_crawler(enforced):
    glue = client(enforced, "glue")
    dbs = [unique("seam_db").replace("-", "_") for _ in range(2)]
    for db in dbs:
        glue.create_database(DatabaseInput={"Name": db})
        glue.create_table(DatabaseName=db, TableInput={"Name": "t"})
    job = unique("seam-job")
    glue.create_job(Name=job, Role="seam", Command={"Name": "pythonshell", "ScriptLocation": "s3://b/k.py"})
    crawler = unique("seam-crawler")
    glue.create_crawler(Name=crawler, Role="seam", DatabaseName=dbs[0], Targets={"S3Targets": [{"Path": "s3://b/p"}]})
    make, principal = as_role(enforced, [
        allow(["glue:GetTable", "glue:GetDatabase"],
              [arn("glue", "catalog"), arn("glue", f"database/{dbs[0]}"), arn("glue", f"table/{dbs[0]}/*")]),
        allow(["glue:GetJob", "glue:GetCrawler"], [arn("glue", f"job/{job}"), arn("glue", f"crawler/{crawler}")]),
    ])
    role_glue = make("glue")
    assert role_glue.get_table(DatabaseName=dbs[0], Name="t")["Table"]["Name"] == "t"
    assert role_glue.get_job(JobName=job)["Job"]["Name"] == job
    assert role_glue.get_crawler(Name=crawler)["Crawler"]["Name"] == crawler
    # A table is authorized on the catalog, its database and itself: the other database is refused.
    assert_denied(lambda: role_glue.get_table(DatabaseName=dbs[1], Name="t"), principal, "glue:GetTable",
                  arn("glue", f"database/{dbs[1]}"))
    assert_denied(lambda: role_glue.get_job(JobName="other-job"), principal, "glue:GetJob", arn("glue", "job/other-job"))
    assert_denied(lambda: role_glue.get_crawler(Name="other"), principal, "glue:GetCrawler", arn("glue", "crawler/other"))


def test_lambda_function_invoke_is_authorized_as_invoke_function(enforced):
    lam = client(enforced, "lambda")
    names = [unique("seam-fn") for _ in range(2)]
    for name in names:
        lam.create_function(FunctionName=name, Runtime="python3.12", Role=role_arn(enforced),
                            Handler="handler.handler",
                            Code={"ZipFile": zip_bytes({"handler.py": "def handler(e, c):\n    return 1\n"})})
    make, principal = as_role(enforced, [allow("lambda:InvokeFunction", arn("lambda", f"function:{names[0]}"))])
    role_lambda = make("lambda")
    assert role_lambda.invoke(FunctionName=names[0], InvocationType="DryRun", Payload=b"{}")["StatusCode"] in (200, 204)
    assert_denied(lambda: role_lambda.invoke(FunctionName=names[1], InvocationType="DryRun", Payload=b"{}"), principal,
                  "lambda:InvokeFunction", arn("lambda", f"function:{names[1]}"))


def test_events_bus(enforced):
    events = client(enforced, "events")
    bus = unique("seam-bus")
    events.create_event_bus(Name=bus)
    make, principal = as_role(enforced, [allow("events:PutEvents", arn("events", f"event-bus/{bus}"))])
    role_events = make("events")
    entry = {"Source": "seam", "DetailType": "t", "Detail": "{}"}
    assert role_events.put_events(Entries=[{**entry, "EventBusName": bus}])["FailedEntryCount"] == 0
    assert_denied(lambda: role_events.put_events(Entries=[entry]), principal, "events:PutEvents",
                  arn("events", "event-bus/default"))


def test_s3_object_is_checked_by_moto_itself(enforced):
    s3 = client(enforced, "s3")
    bucket = unique("seam-bucket")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="a/x", Body=b"1")
    s3.put_object(Bucket=bucket, Key="b/x", Body=b"1")
    make, _ = as_role(enforced, [allow("s3:GetObject", f"arn:aws:s3:::{bucket}/a/*")])
    role_s3 = make("s3")
    assert role_s3.get_object(Bucket=bucket, Key="a/x")["Body"].read() == b"1"
    with pytest.raises(ClientError) as caught:
        role_s3.get_object(Bucket=bucket, Key="b/x")
    assert caught.value.response["Error"]["Code"] == "AccessDenied"


def role_trusting(emulator, statement: dict) -> str:
    """A role whose trust policy is the one statement (Action sts:AssumeRole)."""
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", **statement}]}
    return client(emulator, "iam").create_role(RoleName=unique("iam-target"),
                                               AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def caller_role_arn(principal: str) -> str:
    """arn:aws:sts::<account>:assumed-role/<name>/<session> -> the role's IAM ARN."""
    return f"arn:aws:iam::{ACCOUNT}:role/{principal.split('/')[1]}"


def test_sts_assume_role_on_the_role_it_assumes(enforced):
    # The delivery pipeline's shape: the target trusts the account, narrowed to one role by aws:PrincipalArn.
    make, principal = as_role(enforced, [allow("sts:GetCallerIdentity", "*")])
    caller = caller_role_arn(principal)
    trust = {"Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
             "Condition": {"ArnEquals": {"aws:PrincipalArn": caller}}}
    target, other = role_trusting(enforced, trust), role_trusting(enforced, trust)
    client(enforced, "iam").put_role_policy(
        RoleName=caller.rsplit("/", 1)[1], PolicyName="assume",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [allow("sts:AssumeRole", target)]}))
    role_sts = make("sts")
    assumed = role_sts.assume_role(RoleArn=target, RoleSessionName="chained")["AssumedRoleUser"]["Arn"]
    assert assumed == f"arn:aws:sts::{ACCOUNT}:assumed-role/{target.rsplit('/', 1)[1]}/chained"
    assert_denied(lambda: role_sts.assume_role(RoleArn=other, RoleSessionName="chained"), principal,
                  "sts:AssumeRole", other)


def assert_refused_by_trust(call, principal: str, role: str) -> None:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    assert error["Code"] == "AccessDenied", error
    assert error["Message"] == f"User: {principal} is not authorized to perform: sts:AssumeRole on resource: {role}"


def test_sts_assume_role_needs_the_target_trust_policy_too(enforced):
    make, principal = as_role(enforced, [allow("sts:AssumeRole", "*")])
    caller = caller_role_arn(principal)
    role_sts = make("sts")
    by_role_arn = role_trusting(enforced, {"Principal": {"AWS": caller}})
    assert role_sts.assume_role(RoleArn=by_role_arn, RoleSessionName="ok")["Credentials"]["AccessKeyId"]
    with_external_id = role_trusting(enforced, {"Principal": {"AWS": ACCOUNT},
                                                "Condition": {"StringEquals": {"sts:ExternalId": "shared"}}})
    assert role_sts.assume_role(RoleArn=with_external_id, RoleSessionName="ok", ExternalId="shared")
    refused = {
        "a service principal": role_trusting(enforced, {"Principal": {"Service": "lambda.amazonaws.com"}}),
        "another role": role_trusting(enforced, {"Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/someone-else"}}),
        "a condition naming another role": role_trusting(enforced, {
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Condition": {"ArnEquals": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/someone-else"}}}),
        "another account": role_trusting(enforced, {"Principal": {"AWS": "arn:aws:iam::210987654321:root"}}),
    }
    for why, role in refused.items():
        assert_refused_by_trust(lambda: role_sts.assume_role(RoleArn=role, RoleSessionName="no"), principal, role)
    assert_refused_by_trust(lambda: role_sts.assume_role(RoleArn=with_external_id, RoleSessionName="no",
                                                         ExternalId="wrong"), principal, with_external_id)


def test_cloudformation_stack_by_name_arn_and_change_set(enforced):
    cfn = client(enforced, "cloudformation")
    body = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
    names = [unique("seam-stack") for _ in range(2)]
    ids = [cfn.create_stack(StackName=name, TemplateBody=body)["StackId"] for name in names]
    make, principal = as_role(enforced, [allow(["cloudformation:DescribeStacks", "cloudformation:CreateChangeSet",
                                                "cloudformation:DescribeChangeSet"],
                                               arn("cloudformation", f"stack/{names[0]}/*"))])
    role_cfn = make("cloudformation")
    assert role_cfn.describe_stacks(StackName=names[0])["Stacks"][0]["StackId"] == ids[0]
    assert role_cfn.describe_stacks(StackName=ids[0])["Stacks"][0]["StackName"] == names[0]
    assert_denied(lambda: role_cfn.describe_stacks(StackName=names[1]), principal, "cloudformation:DescribeStacks",
                  ids[1])
    # Without a stack, DescribeStacks is authorized on every stack (a role scoped to its stacks lists them with
    # ListStacks, then describes each).
    assert_denied(lambda: role_cfn.describe_stacks(), principal, "cloudformation:DescribeStacks",
                  arn("cloudformation", "stack/*/*"))
    change_set = role_cfn.create_change_set(StackName=names[0], ChangeSetName="seam", TemplateBody=body)["Id"]
    assert role_cfn.describe_change_set(ChangeSetName=change_set)["StackName"] == names[0]
    # A stack that does not exist yet is authorized as stack/<name>/*.
    new = unique("seam-new")
    assert_denied(lambda: role_cfn.create_change_set(StackName=new, ChangeSetName="seam", TemplateBody=body,
                                                     ChangeSetType="CREATE"),
                  principal, "cloudformation:CreateChangeSet", arn("cloudformation", f"stack/{new}/*"))
