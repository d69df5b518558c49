"""The seam of sdlf_cli.local.runtime.serializer_aliases: moto answers the same with the possible names listed
once, across the protocols the lake's services use, and the patch comes out again."""
from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws
from moto.core import serialize

from sdlf_cli.local.cfn import _patching
from sdlf_cli.local.runtime import serializer_aliases

REGION = "us-east-1"


@pytest.fixture(autouse=True)
def moto_s_own_first():
    """Each test starts from moto's own serializer; an emulator of this process that had the patch gets it back."""
    had = serializer_aliases.PATCH in _patching.installed_names()
    serializer_aliases.uninstall()
    yield
    serializer_aliases.uninstall()
    if had:
        serializer_aliases.install()


@pytest.fixture
def aws(fake_credentials):
    with mock_aws():
        yield


def _lake_like_state() -> dict:
    """Resources of the kinds a lake has, made once; returns what the reads need."""
    glue = boto3.client("glue", region_name=REGION)
    glue.create_database(DatabaseInput={"Name": "db"})
    columns = [{"Name": f"c{i}", "Type": "string", "Comment": f"column {i}"} for i in range(12)]
    for name in ("persons", "orders"):
        glue.create_table(DatabaseName="db", TableInput={
            "Name": name, "PartitionKeys": [{"Name": "dt", "Type": "string"}], "Parameters": {"classification": "parquet"},
            "StorageDescriptor": {"Columns": columns, "Location": f"s3://lake/{name}/",
                                  "SerdeInfo": {"SerializationLibrary": "parquet", "Parameters": {"a": "b"}}}})
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="lake-raw")
    for i in range(15):
        s3.put_object(Bucket="lake-raw", Key=f"engineering/legislators/{i:03d}.json", Body=b"{}", Metadata={"n": str(i)})
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="stage-a", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    iam = boto3.client("iam", region_name=REGION)
    for i in range(3):
        iam.create_role(RoleName=f"role-{i}", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
                        Tags=[{"Key": "team", "Value": "engineering"}])
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName="catalog", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="lake", TemplateBody=json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
                                                   "Outputs": {"Arn": {"Value": {"Ref": "Topic"}}}}),
        Tags=[{"Key": "sdlf:layer", "Value": "team"}])
    return {"queue": queue}


def _reads(state: dict) -> list:
    """Answers of four protocols (JSON, REST-XML, query, query-JSON) with nested lists and structures."""
    def clean(answer: dict) -> dict:
        answer.pop("ResponseMetadata", None)
        return answer

    glue, s3 = boto3.client("glue", region_name=REGION), boto3.client("s3", region_name=REGION)
    iam, cfn = boto3.client("iam", region_name=REGION), boto3.client("cloudformation", region_name=REGION)
    return [
        clean(glue.get_tables(DatabaseName="db")),
        clean(glue.get_database(Name="db")),
        clean(s3.list_objects_v2(Bucket="lake-raw", Prefix="engineering/")),
        clean(s3.head_object(Bucket="lake-raw", Key="engineering/legislators/003.json")),
        clean(boto3.client("sqs", region_name=REGION).get_queue_attributes(QueueUrl=state["queue"],
                                                                           AttributeNames=["All"])),
        clean(iam.list_roles()),
        clean(iam.get_role(RoleName="role-1")),
        clean(boto3.client("dynamodb", region_name=REGION).describe_table(TableName="catalog")),
        clean(cfn.describe_stacks(StackName="lake")),
        clean(cfn.list_stack_resources(StackName="lake")),
    ]


def test_the_answers_are_moto_s_own(aws):
    state = _lake_like_state()
    own = _reads(state)
    serializer_aliases.install()
    try:
        assert serialize.XFormedAttributePicker.get_possible_keys.__name__ == "get_possible_keys"
        first = _reads(state)  # lists the names
        again = _reads(state)  # from what was listed
    finally:
        serializer_aliases.uninstall()
    assert first == own and again == own
    assert own[0]["TableList"][0]["StorageDescriptor"]["Columns"][3] == {"Name": "c3", "Type": "string",
                                                                         "Comment": "column 3"}
    assert len(own[2]["Contents"]) == 15 and sorted(r["RoleName"] for r in own[5]["Roles"]) == [
        "role-0", "role-1", "role-2"]


def test_the_names_are_moto_s_for_every_kind_of_alias():
    picker = serialize.XFormedAttributePicker()
    parent = _structure("DBInstance", {"DBInstanceIdentifier": "String", "Tags": "TagList", "Port": "Integer"})
    tags = parent.members["Tags"]
    tags.parent = parent
    identifier = parent.members["DBInstanceIdentifier"]
    identifier.parent = parent

    class DBInstance:  # the class prefix alias, and an explicit one
        class Meta:
            serialization_aliases = {"Port": "endpoint_port"}

        def __init__(self):
            self.identifier, self.endpoint_port, self.tag_list = "db-1", 5432, [{"Key": "k", "Value": "v"}]

    class Other:
        pass

    cases = [(DBInstance(), "DBInstanceIdentifier", identifier), (DBInstance(), "Port", parent.members["Port"]),
             (DBInstance(), "Tags", tags), ({"Tags": []}, "Tags", tags), (Other(), "DBInstanceIdentifier", identifier)]
    own = [list(picker.get_possible_keys(_context(obj, key, shape))) for obj, key, shape in cases]
    serializer_aliases.install()
    try:
        listed = [list(picker.get_possible_keys(_context(obj, key, shape))) for obj, key, shape in cases * 2]
        values = [picker(_context(obj, key, shape)) for obj, key, shape in cases]
    finally:
        serializer_aliases.uninstall()
    assert listed == own * 2
    assert set(identifier.__dict__["_sdlf_possible_keys"]) == {("DBInstanceIdentifier", DBInstance, parent),
                                                               ("DBInstanceIdentifier", Other, parent)}
    assert own[0][:2] == ["DBInstanceIdentifier", "db_instance_identifier"] and "Identifier" in own[0]
    assert values == ["db-1", 5432, [{"Key": "k", "Value": "v"}], [], None]


def test_objects_that_could_answer_otherwise_take_moto_s_way():
    picker = serialize.XFormedAttributePicker()
    shape = _structure("Queue", {"QueueName": "String"}).members["QueueName"]

    class Dynamic:  # answers any attribute, a `Meta` too
        def __getattr__(self, name):
            return type("Meta", (), {"serialization_aliases": {"QueueName": "dynamic"}})

    class Plain:
        pass

    own_meta = Plain()  # a `Meta` of its own, not its class's
    own_meta.Meta = type("Meta", (), {"serialization_aliases": {"QueueName": "name"}})
    objects = (Dynamic(), own_meta, Plain())
    own = [list(picker.get_possible_keys(_context(obj, "QueueName", shape))) for obj in objects]
    serializer_aliases.install()
    try:
        listed = [list(picker.get_possible_keys(_context(obj, "QueueName", shape))) for obj in objects]
    finally:
        serializer_aliases.uninstall()
    assert listed == own and own[0][0] == "dynamic" and own[1][0] == "name" and own[2][0] == "QueueName"
    assert list(shape.__dict__["_sdlf_possible_keys"]) == [("QueueName", Plain, None)]  # only the plain one


def test_the_patch_comes_out_and_is_not_installed_twice():
    original = serialize.XFormedAttributePicker.__dict__["get_possible_keys"]
    serializer_aliases.install()
    patched = serialize.XFormedAttributePicker.__dict__["get_possible_keys"]
    serializer_aliases.install()
    assert patched is not original and serialize.XFormedAttributePicker.__dict__["get_possible_keys"] is patched
    assert serializer_aliases.PATCH in _patching.installed_names()
    serializer_aliases.uninstall()
    assert serialize.XFormedAttributePicker.__dict__["get_possible_keys"] is original


def _structure(name: str, members: dict):
    from moto.core.model import ShapeResolver  # moto's shape classes, as its serializer checks

    shapes = {name: {"type": "structure", "members": {k: {"shape": v} for k, v in members.items()}},
              "String": {"type": "string"}, "Integer": {"type": "integer"},
              "TagList": {"type": "list", "member": {"shape": "Tag"}},
              "Tag": {"type": "structure", "members": {"Key": {"shape": "String"}, "Value": {"shape": "String"}}}}
    return ShapeResolver(shapes).get_shape_by_name(name)


def _context(obj, key: str, shape):
    return serialize.AttributePickerContext(obj=obj, key=key, shape=shape)
