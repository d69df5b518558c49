"""The background emulator (`sdlf local up`, a real process) keeps the lake across restarts: killed with -9 in the
middle of stage A, started again and redriven, `sdlf audit` says what an undisturbed run says (every object
PROCESSED once, nothing lost, nothing duplicated, the analytics rows equal to the records); stopped cleanly and
started again, everything is still there; `sdlf local reset` starts it empty and says what it removed."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import boto3
import pytest

from sdlf_cli.aws.session import AwsTarget, Clients
from sdlf_cli.config.loader import load_config
from sdlf_cli.lake import Lake
from sdlf_cli.local import process
from sdlf_cli.ui import make_reporter
from sdlf_cli.workflows.deploy import all_layers, deploy_layers
from tests.integration import chaos
from tests.integration.helpers import wait_for

OBJECTS, RECORDS = 20, 3



def port_outside_ephemeral_range() -> int:
    """A free port below Linux's ephemeral range (32768-60999): after a kill -9 the emulator must get its port back
    on `up`, and a port the kernel hands out to any other process's free_port() or connection meanwhile (the other
    test worker's) may be taken by then."""
    import random
    import socket

    for port in random.sample(range(20000, 32000), 200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 32000")

def sdlf(state, *args: str) -> dict:
    """`sdlf <args> -o json` as a person runs it, against the emulator whose state is in `state`."""
    env = {**os.environ, process.STATE_DIR_ENV: str(state)}
    for name in ("SDLF_LOCAL", "SDLF_ENDPOINT_URL", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-m", "sdlf_cli.cli", *args, "-o", "json"], env=env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    state = tmp_path_factory.mktemp("restarts") / "local"
    up = sdlf(state, "local", "up", "--port", str(port_outside_ephemeral_range()))
    assert up["running"] and up["saved_state"] is None  # nothing saved yet: it starts empty
    yield state
    process.down(state)


@pytest.fixture(scope="module")
def lake(state, tmp_path_factory):
    project = chaos.prepare_project(tmp_path_factory.mktemp("lake-restarts"), "restart")
    cfg = load_config("restart", project / "parameters")
    lake = Lake(cfg, Clients(AwsTarget(region=cfg.region, endpoint_url=process.resolve_endpoint(state))))
    outcome = deploy_layers(lake, make_reporter("json"), all_layers(cfg, project), root=project)
    assert outcome.ok, outcome.to_dict()
    return lake


def _running_stage_a(lake) -> int:
    sfn = lake.clients.client("stepfunctions")
    name = lake.config.names.state_machine(chaos.TEAM, "main", "sm-a")
    [machine] = [m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"] if m["name"] == name]
    return len(sfn.list_executions(stateMachineArn=machine, statusFilter="RUNNING")["executions"])


def test_kill_9_in_stage_a_then_up_and_redrive_audits_like_an_undisturbed_run(state, lake):
    ops = chaos.LakeOps(lake, lake.registry.raw_bucket)
    ops.fast_retries()
    for name, body in chaos.files(OBJECTS, RECORDS):
        ops.put(name, body)
    # In the middle of stage A: executions are running and not every object has been handed to stage B.
    assert wait_for(lambda: _running_stage_a(lake) > 0, timeout=120, interval=0.1), "stage A never started"
    pid = process.status(state).pid
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: not process.status(state).running, timeout=10), "the emulator outlived kill -9"

    started = time.monotonic()
    up = sdlf(state, "local", "up")
    restart_seconds = time.monotonic() - started
    assert up["endpoint_url"] == lake.clients.target.endpoint_url  # same port: the saved URLs still point at it
    assert up["saved_state"].startswith("restored the state saved at"), up

    scenario = chaos.Scenario(ops)
    redriven, rounds = scenario.drain()
    audit = scenario.settle()
    rows = ops.count_rows()
    explained = (f"restart {restart_seconds:.1f} s ({up['saved_state']}); redriven {redriven} in {rounds} round(s); "
                 f"audit {audit.to_dict()['counts']}, lost {audit.lost}, duplicated {audit.duplicated}, rows {rows}")
    [dataset] = audit.datasets
    assert audit.ok and (audit.lost, audit.duplicated) == (0, 0), explained
    assert [o.state for o in dataset.objects] == ["PROCESSED"] * OBJECTS, explained
    assert (dataset.rows, dataset.records) == (OBJECTS * RECORDS, OBJECTS * RECORDS), explained
    assert rows == OBJECTS * RECORDS, explained


def _everything(lake) -> dict:
    """What a restart must keep: buckets and their objects, catalog rows, stacks, queues and their messages."""
    clients = lake.clients
    s3, ddb, cfn, sqs = (clients.client(s) for s in ("s3", "dynamodb", "cloudformation", "sqs"))
    buckets = {}
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    # Access-log buckets gain a log object for every request this listing makes: not what a restart changes.
    logs = {s3.get_bucket_logging(Bucket=n).get("LoggingEnabled", {}).get("TargetBucket") for n in names}
    for bucket in [{"Name": n} for n in names if n not in logs]:
        listed = s3.list_object_versions(Bucket=bucket["Name"])
        buckets[bucket["Name"]] = sorted((v["Key"], v["VersionId"], v["ETag"]) for v in listed.get("Versions", []))
    tables = {name: sorted(json.dumps(item, sort_keys=True) for item in ddb.scan(TableName=name)["Items"])
              for name in ddb.list_tables()["TableNames"]}
    stacks = sorted((s["StackName"], s["StackStatus"], json.dumps(s.get("Outputs", []), sort_keys=True))
                    for s in cfn.describe_stacks()["Stacks"])
    queues = {url.rsplit("/", 1)[-1]: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
              for url in sqs.list_queues().get("QueueUrls", [])}
    for attributes in queues.values():
        attributes.pop("ApproximateNumberOfMessagesNotVisible", None)  # receives in flight may end meanwhile
    return {"buckets": buckets, "tables": tables, "stacks": stacks, "queues": queues}


def test_down_then_up_keeps_everything_and_reset_starts_empty(state, lake):
    sqs, s3 = lake.clients.client("sqs"), lake.clients.client("s3")
    parked = sqs.create_queue(QueueName="restarts-parked")["QueueUrl"]
    sqs.send_message(QueueUrl=parked, MessageBody="still here after a restart")
    s3.create_bucket(Bucket="restarts-kept")
    s3.put_bucket_versioning(Bucket="restarts-kept", VersioningConfiguration={"Status": "Enabled"})
    for body in (b"first", b"second " * 20_000):  # a small object and one stored as a blob
        s3.put_object(Bucket="restarts-kept", Key="kept.txt", Body=body)
    before = _everything(lake)
    assert len(before["buckets"]["restarts-kept"]) == 2 and lake.registry.raw_bucket in before["buckets"]
    assert before["stacks"] and before["tables"] and before["queues"]

    running = sdlf(state, "local", "status")
    down = sdlf(state, "local", "down")
    assert not down["running"] and "state saved in" in down["saved_state"]
    assert down["stopped"] == running["pid"] and sdlf(state, "local", "down")["stopped"] is None  # says what it did
    up = sdlf(state, "local", "up")
    assert up["saved_state"].startswith("restored the state saved at"), up
    after = _everything(lake)
    for part in before:
        for name in set(before[part]) | set(after[part]) if isinstance(before[part], dict) else [None]:
            was, now = (before[part], after[part]) if name is None else (before[part].get(name), after[part].get(name))
            assert now == was, f"{part} {name or ''} changed across down/up: was {was}, now {now}"
    [message] = sqs.receive_message(QueueUrl=parked)["Messages"]
    assert message["Body"] == "still here after a restart"

    assert s3.get_object(Bucket="restarts-kept", Key="kept.txt")["Body"].read() == b"second " * 20_000

    reset = sdlf(state, "local", "reset")
    assert "state.pickle" in reset["removed"] and reset["summary"].startswith("removed the saved state from")
    assert reset["restarted"]["running"] and reset["restarted"]["endpoint_url"] == up["endpoint_url"]
    assert s3.list_buckets()["Buckets"] == []
    assert lake.clients.client("cloudformation").describe_stacks()["Stacks"] == []


def test_up_with_persist_off_keeps_the_state_in_memory_only(tmp_path):
    state = tmp_path / "local"
    up = sdlf(state, "local", "up", "--port", str(port_outside_ephemeral_range()), "--persist", "off")
    s3 = boto3.client("s3", endpoint_url=up["endpoint_url"], region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    try:
        s3.create_bucket(Bucket="forgotten-bucket")
    finally:
        down = sdlf(state, "local", "down")
    assert down["saved_state"] is None and not (state / "state.pickle").exists()
    again = sdlf(state, "local", "up", "--port", str(up["port"]))
    try:
        assert again["saved_state"] is None
        assert s3.list_buckets()["Buckets"] == []
    finally:
        sdlf(state, "local", "down")
