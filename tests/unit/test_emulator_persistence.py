"""The emulator's saved state (sdlf_cli.local.persistence): moto's backends survive a save and a load into an
emptied moto (what a restart is), including the objects that do not pickle as they are; a mutating request is
answered only once a snapshot holding it is saved, a read is not held; what was running is recovered."""
from __future__ import annotations

import io
import json
import threading
import zipfile

import boto3
import pytest
from moto import mock_aws

from sdlf_cli.local.persistence import durable_acks, recovery, snapshot

REGION = "us-east-1"
BIG = 200 * 1024  # over snapshot.BLOB_MIN: stored as a blob


def _clients():
    return {name: boto3.client(name, region_name=REGION) for name in ("s3", "sqs", "ssm", "kms", "lambda", "iam")}


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def test_backends_survive_a_save_and_a_load_into_an_empty_moto(tmp_path, fake_credentials):
    with mock_aws():
        c = _clients()
        c["s3"].create_bucket(Bucket="kept-bucket")
        c["s3"].put_bucket_versioning(Bucket="kept-bucket", VersioningConfiguration={"Status": "Enabled"})
        small = c["s3"].put_object(Bucket="kept-bucket", Key="small.json", Body=b'{"a": 1}')["VersionId"]
        newer = c["s3"].put_object(Bucket="kept-bucket", Key="small.json", Body=b'{"a": 2}')["VersionId"]
        big = c["s3"].put_object(Bucket="kept-bucket", Key="dir/big.bin", Body=b"z" * BIG)["VersionId"]
        queue = c["sqs"].create_queue(QueueName="kept-queue")["QueueUrl"]
        c["sqs"].send_message(QueueUrl=queue, MessageBody="kept message")
        c["ssm"].put_parameter(Name="/kept/parameter", Value="v1", Type="String", Tags=[{"Key": "k", "Value": "t"}])
        key = c["kms"].create_key()["KeyMetadata"]["KeyId"]
        sealed = c["kms"].encrypt(KeyId=key, Plaintext=b"secret")["CiphertextBlob"]
        role = c["iam"].create_role(RoleName="kept-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        c["lambda"].create_function(FunctionName="kept-fn", Runtime="python3.11", Role=role, Handler="handler.handler",
                                    Code={"ZipFile": _zip()})
        report = snapshot.save(tmp_path)
        again = snapshot.save(tmp_path)

    assert report.size > 0 and report.blobs_written >= 1  # the big object went to blobs/
    assert snapshot._fallback_reported == []  # every object moto held was saved by the fast pickler
    assert again.blobs_written == 0  # nothing new: no blob written twice
    assert any(p.name.startswith("s3-") for p in (tmp_path / snapshot.BLOBS_DIR).iterdir())

    with mock_aws():
        c = _clients()
        assert c["s3"].list_buckets()["Buckets"] == []  # an empty moto, as after a restart
        loaded = snapshot.load(tmp_path)
        assert {"s3", "sqs", "ssm", "kms", "lambda"} <= set(loaded.services)
        versions = c["s3"].list_object_versions(Bucket="kept-bucket", Prefix="small.json")["Versions"]
        assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [(newer, True), (small, False)]
        assert c["s3"].get_object(Bucket="kept-bucket", Key="small.json", VersionId=small)["Body"].read() == b'{"a": 1}'
        assert c["s3"].get_object(Bucket="kept-bucket", Key="small.json")["Body"].read() == b'{"a": 2}'
        assert c["s3"].get_object(Bucket="kept-bucket", Key="dir/big.bin")["VersionId"] == big
        assert c["s3"].get_object(Bucket="kept-bucket", Key="dir/big.bin")["Body"].read() == b"z" * BIG
        c["s3"].put_object(Bucket="kept-bucket", Key="after.json", Body=b"{}")  # locks rebuilt, buffers writable
        url = c["sqs"].get_queue_url(QueueName="kept-queue")["QueueUrl"]
        [message] = c["sqs"].receive_message(QueueUrl=url)["Messages"]
        assert message["Body"] == "kept message"
        assert c["ssm"].get_parameter(Name="/kept/parameter")["Parameter"]["Value"] == "v1"
        c["ssm"].put_parameter(Name="/kept/parameter", Value="v2", Type="String", Overwrite=True)  # defaultdicts work
        tags = c["ssm"].list_tags_for_resource(ResourceType="Parameter", ResourceId="/kept/parameter")["TagList"]
        assert tags == [{"Key": "k", "Value": "t"}]
        assert c["kms"].decrypt(CiphertextBlob=sealed)["Plaintext"] == b"secret"  # the key material came back
        assert c["lambda"].get_function(FunctionName="kept-fn")["Configuration"]["Handler"] == "handler.handler"


def test_a_damaged_snapshot_says_how_to_start_empty(tmp_path):
    (tmp_path / snapshot.SNAPSHOT_FILE).write_bytes(b"not a pickle")
    with pytest.raises(snapshot.SnapshotError, match="sdlf local reset"):
        snapshot.load(tmp_path)
    assert snapshot.load(tmp_path / "nothing-saved") is None


def test_saved_files_are_what_reset_removes(tmp_path, fake_credentials):
    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(Bucket="kept-bucket")
        boto3.client("s3", region_name=REGION).put_object(Bucket="kept-bucket", Key="big", Body=b"b" * BIG)
        snapshot.save(tmp_path)
    names = [p.relative_to(tmp_path).as_posix() for p in snapshot.saved_files(tmp_path)]
    assert names[0] == snapshot.SNAPSHOT_FILE and any(n.startswith(f"{snapshot.BLOBS_DIR}/s3-") for n in names)


# --- durable acknowledgements (the dispatcher patch) -------------------------------------------------------
def _request(method: str, path: str, service: str, target: str | None = None) -> dict:
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "",
               "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/{service}/aws4_request"}
    if target:
        environ["HTTP_X_AMZ_TARGET"] = target
    return environ


def test_which_requests_wait_for_a_snapshot():
    assert durable_acks.mutates(_request("PUT", "/bucket/key", "s3"))
    assert durable_acks.mutates(_request("POST", "/", "dynamodb", "DynamoDB_20120810.PutItem"))
    assert durable_acks.mutates(_request("POST", "/", "states", "AWSStepFunctions.StartExecution"))
    assert not durable_acks.mutates(_request("GET", "/bucket/key", "s3"))
    assert not durable_acks.mutates(_request("POST", "/", "dynamodb", "DynamoDB_20120810.Query"))
    assert not durable_acks.mutates(_request("POST", "/", "sqs", "AmazonSQS.ReceiveMessage"))
    assert not durable_acks.mutates(_request("POST", "/2015-03-31/functions/f/invocations", "lambda"))
    assert not durable_acks.mutates({"REQUEST_METHOD": "POST", "PATH_INFO": "/moto-api/reset", "QUERY_STRING": ""})


def test_a_mutating_request_is_answered_after_the_snapshot_that_holds_it(fake_credentials):
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from werkzeug.test import Client

    saved = threading.Event()
    release = threading.Event()
    saves: list[str] = []

    def save() -> str:
        saves.append("saved")
        saved.set()
        release.wait(10)  # held until the test has looked at the request
        return "report"

    committer = durable_acks.Committer(save)
    committer.start()
    durable_acks.install(committer)
    try:
        app = DomainDispatcherApplication(lambda service: _backend_app(service))
        headers = {"Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/s3/aws4_request, "
                                    "SignedHeaders=host, Signature=x", "Host": "localhost"}
        answered = threading.Event()
        statuses = []

        def put() -> None:
            statuses.append(Client(app).put("/durable-bucket", headers=headers).status_code)
            answered.set()

        thread = threading.Thread(target=put)
        thread.start()
        assert saved.wait(10), "the change started no snapshot"
        assert not answered.wait(0.3), "answered before its snapshot was saved"
        release.set()
        assert answered.wait(10) and statuses == [200]
        thread.join(10)
        listing = Client(app).get("/", headers=headers)  # a read: no snapshot, answered at once
        assert listing.status_code == 200 and saves == ["saved"]

        committer.close()  # a clean stop: the final save, then new changes are refused
        assert saves == ["saved", "saved"]
        refused = Client(app).put("/another-bucket", headers=headers)
        assert refused.status_code == 503 and b"stopping" in refused.data
    finally:
        release.set()
        durable_acks.uninstall()
        from moto.core.base_backend import BackendDict

        BackendDict.reset()


def _backend_app(service: str):
    from moto.moto_server.werkzeug_app import create_backend_app

    return create_backend_app(service)


# --- recovery ------------------------------------------------------------------------------------------------
def test_interrupted_glue_runs_and_crawls_end_failed_with_the_reason(fake_credentials):
    from moto.glue.models import glue_backends

    with mock_aws():
        glue = boto3.client("glue", region_name=REGION)
        glue.create_job(Name="job", Role="role", Command={"Name": "glueetl", "ScriptLocation": "s3://b/k.py"})
        run_id = glue.start_job_run(JobName="job")["JobRunId"]
        backend = glue_backends["123456789012"][REGION]
        [run] = backend.jobs["job"].job_runs
        run.sdlf_state = "RUNNING"  # as the emulator's job runner pins a run it started
        recovered = recovery.Recovered()
        recovery.fail_interrupted_glue(recovered)
        assert recovered.failed_job_runs == [f"job/{run_id}"]
        assert run.sdlf_state == "FAILED" and "stopped" in run.sdlf_error_message
        assert recovered.failed_crawls == []


def test_an_execution_saved_while_running_starts_again_after_the_load(tmp_path, fake_credentials):
    from tests.integration.helpers import wait_for

    definition = {"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 2, "Next": "Done"},
                                                 "Done": {"Type": "Succeed"}}}
    config = {"stepfunctions": {"execute_state_machine": True}}
    with mock_aws(config=config):
        sfn = boto3.client("stepfunctions", region_name=REGION)
        machine = sfn.create_state_machine(name="held", definition=json.dumps(definition),
                                           roleArn="arn:aws:iam::123456789012:role/sfn")["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=machine, name="interrupted",
                                        input='{"object": "s3://b/k"}')["executionArn"]
        assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
        snapshot.save(tmp_path)  # its worker thread goes with the process

    with mock_aws(config=config):
        sfn = boto3.client("stepfunctions", region_name=REGION)
        snapshot.load(tmp_path)
        recovered = recovery.Recovered()
        recovery.restart_executions(recovered)
        assert recovered.restarted_executions == [execution]
        done = wait_for(lambda: sfn.describe_execution(executionArn=execution)["status"] != "RUNNING", timeout=30)
        described = sfn.describe_execution(executionArn=execution)
        assert done and described["status"] == "SUCCEEDED", described
        assert json.loads(described["input"]) == {"object": "s3://b/k"}  # the same name and input, run again


def test_reset_removes_the_saved_state_and_says_what(tmp_path, fake_credentials):
    from sdlf_cli.local import process

    state = tmp_path / "local"
    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(Bucket="kept-bucket")
        boto3.client("s3", region_name=REGION).put_object(Bucket="kept-bucket", Key="big", Body=b"b" * BIG)
        snapshot.save(state)
    (state / "emulator.log").write_text("kept: the log is not state\n")
    reset = process.reset(state)
    assert reset.restarted is None  # it was not running: nothing to start again
    assert reset.removed[0] == snapshot.SNAPSHOT_FILE and any(n.startswith("blobs/s3-") for n in reset.removed)
    assert reset.summary.startswith(f"removed the saved state from {state.resolve()}: {len(reset.removed)} file(s)")
    assert not snapshot.exists(state) and not (state / snapshot.BLOBS_DIR).exists()
    assert (state / "emulator.log").exists()
    assert process.reset(state).summary == f"nothing saved in {state.resolve()}: the emulator starts empty"
