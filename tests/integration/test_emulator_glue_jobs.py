"""Glue job runs on the emulator execute their script for real (subprocess, emulator S3, logs)."""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from sdlf_cli.cache_dir import CACHE_DIR_VARIABLE, cache_dir
from sdlf_cli.local.runtime import install, installed_part, spark_class_archive
from sdlf_cli.local.runtime.glue_jobs import (ERROR_LOG_GROUP, OUTPUT_LOG_GROUP, GlueJobRunner, last_error_line,
                                              script_arguments)
from tests.integration.test_emulator_runtime_helpers import bucket, client, role_arn, unique, wait_for

ROOT = Path(__file__).resolve().parents[2]
WRITES_AN_OBJECT = """
import argparse, json, os, boto3
parser = argparse.ArgumentParser()
parser.add_argument("--JOB_NAME"); parser.add_argument("--JOB_RUN_ID")
parser.add_argument("--bucket"); parser.add_argument("--greeting")
args, unknown = parser.parse_known_args()
print("hello from", args.JOB_NAME)
body = {"job": args.JOB_NAME, "run": args.JOB_RUN_ID, "greeting": args.greeting, "unknown": unknown,
        "endpoint": os.environ["AWS_ENDPOINT_URL"]}
boto3.client("s3").put_object(Bucket=args.bucket, Key="out/result.json", Body=json.dumps(body))
"""

FAILS = """
import sys
print("about to fail")
print("some warning", file=sys.stderr)
raise ValueError("column 'id' is missing in s3://x/y.jsonl")
"""

SLOW = "import time\ntime.sleep(1.5)\n"


@pytest.fixture(scope="module", autouse=True)
def runtime(emulator):
    install(emulator.context)


def _job(emulator, script: str, *, default_arguments=None, command: str = "pythonshell", **kwargs) -> tuple[str, str]:
    """Uploads a script and creates a job for it; returns (job name, bucket)."""
    name, data_bucket = unique("job"), bucket(emulator)
    client(emulator, "s3").put_object(Bucket=data_bucket, Key=f"scripts/{name}.py", Body=script.encode())
    client(emulator, "glue").create_job(
        Name=name, Role=role_arn(emulator),
        Command={"Name": command, "ScriptLocation": f"s3://{data_bucket}/scripts/{name}.py",
                 "PythonVersion": "3.9"},
        DefaultArguments=default_arguments or {}, **kwargs)
    return name, data_bucket


def _wait_run(glue, job: str, run_id: str) -> dict:
    return wait_for(lambda: (r := glue.get_job_run(JobName=job, RunId=run_id)["JobRun"])["JobRunState"]
                    not in ("STARTING", "RUNNING") and r, timeout=60, what=f"job run {run_id}")


def _log_lines(emulator, group: str, stream: str) -> list[str]:
    events = client(emulator, "logs").get_log_events(logGroupName=group, logStreamName=stream)["events"]
    return [e["message"] for e in events]


def test_a_job_runs_its_script_with_merged_arguments_and_keeps_its_output(emulator):
    glue = client(emulator, "glue")
    job, data_bucket = _job(emulator, WRITES_AN_OBJECT, default_arguments={
        "--bucket": "overridden", "--greeting": "hi", "--additional-python-modules": "duckdb==1.2.0",
        "--enable-metrics": "true"})
    run_id = glue.start_job_run(JobName=job, Arguments={"--bucket": data_bucket})["JobRunId"]
    assert glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]["JobRunState"] == "RUNNING"
    run = _wait_run(glue, job, run_id)
    assert run["JobRunState"] == "SUCCEEDED", run
    assert "ErrorMessage" not in run and "CompletedOn" in run
    body = json.loads(client(emulator, "s3").get_object(Bucket=data_bucket, Key="out/result.json")["Body"].read())
    # Run arguments override the defaults; Glue-only arguments never reach the script.
    assert body == {"job": job, "run": run_id, "greeting": "hi", "unknown": [], "endpoint": emulator.endpoint_url}
    assert _log_lines(emulator, OUTPUT_LOG_GROUP, run_id) == [f"hello from {job}"]


def test_a_failing_script_fails_the_run_with_its_last_error_line(emulator):
    glue = client(emulator, "glue")
    job, _ = _job(emulator, FAILS)
    run_id = glue.start_job_run(JobName=job)["JobRunId"]
    run = _wait_run(glue, job, run_id)
    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"] == "ValueError: column 'id' is missing in s3://x/y.jsonl"
    errors = _log_lines(emulator, ERROR_LOG_GROUP, run_id)
    assert "some warning" in errors and errors[0].startswith("some warning")
    assert any(line.startswith("Traceback") for line in errors)
    assert _log_lines(emulator, OUTPUT_LOG_GROUP, run_id) == ["about to fail"]


def test_a_missing_script_fails_the_run_naming_the_location(emulator):
    glue = client(emulator, "glue")
    job = unique("job")
    glue.create_job(Name=job, Role=role_arn(emulator),
                    Command={"Name": "pythonshell", "ScriptLocation": "s3://no-such-bucket-x/script.py"})
    run = _wait_run(glue, job, glue.start_job_run(JobName=job)["JobRunId"])
    assert run["JobRunState"] == "FAILED"
    assert "s3://no-such-bucket-x/script.py" in run["ErrorMessage"] and job in run["ErrorMessage"]


def test_max_concurrent_runs_is_enforced_while_a_run_is_still_running(emulator):
    glue = client(emulator, "glue")
    job, _ = _job(emulator, SLOW, ExecutionProperty={"MaxConcurrentRuns": 1})
    first = glue.start_job_run(JobName=job)["JobRunId"]
    with pytest.raises(glue.exceptions.ConcurrentRunsExceededException):
        glue.start_job_run(JobName=job)
    assert _wait_run(glue, job, first)["JobRunState"] == "SUCCEEDED"
    second = glue.start_job_run(JobName=job)["JobRunId"]  # free again once the first finished
    assert _wait_run(glue, job, second)["JobRunState"] == "SUCCEEDED"


def test_start_job_run_sync_waits_for_the_real_outcome(emulator):
    glue, sfn = client(emulator, "glue"), client(emulator, "stepfunctions")
    ok_job, data_bucket = _job(emulator, WRITES_AN_OBJECT + "import time; time.sleep(1)\n")
    bad_job, _ = _job(emulator, FAILS)
    definition = {"StartAt": "Ok", "States": {
        "Ok": {"Type": "Task", "Resource": "arn:aws:states:::glue:startJobRun.sync",
               "Parameters": {"JobName": ok_job, "Arguments": {"--bucket.$": "$.bucket", "--greeting": "sfn"}},
               "ResultPath": "$.ok", "Next": "Bad"},
        "Bad": {"Type": "Task", "Resource": "arn:aws:states:::glue:startJobRun.sync",
                "Parameters": {"JobName": bad_job}, "ResultPath": "$.bad",
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}],
                "End": True},
        "Caught": {"Type": "Pass", "End": True}}}
    machine = sfn.create_state_machine(name=unique("glue-sync"), definition=json.dumps(definition),
                                       roleArn=role_arn(emulator))["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, name=unique("run"),
                              input=json.dumps({"bucket": data_bucket}))["executionArn"]
    result = wait_for(lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d,
                      timeout=60, what="glue .sync execution")
    assert result["status"] == "SUCCEEDED", result
    output = json.loads(result["output"])
    assert output["ok"]["JobRunState"] == "SUCCEEDED" and output["ok"]["JobName"] == ok_job
    # The object exists because the task waited for the script, not for moto's canned SUCCEEDED.
    written = json.loads(client(emulator, "s3").get_object(Bucket=data_bucket, Key="out/result.json")["Body"].read())
    assert written["greeting"] == "sfn" and written["run"] == output["ok"]["Id"]
    assert output["error"]["Error"] == "States.TaskFailed"
    cause = json.loads(output["error"]["Cause"])
    assert cause["JobRunState"] == "FAILED" and cause["ErrorMessage"].startswith("ValueError: column 'id'")


@pytest.mark.parametrize("python_shell", [False, True], ids=["plain process", "fork server"])
def test_a_run_past_its_timeout_is_killed_and_reported(emulator, python_shell):
    job, data_bucket = _job(emulator, "import time\nprint('working')\ntime.sleep(30)\n")
    runner = installed_part("glue_jobs")
    started = time.monotonic()
    # Timeout is in minutes (Glue's unit); 0.02 minutes keeps the test short.
    outcome = runner.execute(job, "jr_timeout", f"s3://{data_bucket}/scripts/{job}.py", {}, 0.02,
                             python_shell=python_shell)
    assert time.monotonic() - started < 10
    assert outcome.state == "TIMEOUT"
    assert outcome.error_message == "job run jr_timeout timed out after 0.02 minute(s)"
    assert outcome.stdout == "working\n"


PARENT = """
import os, sys, boto3
bucket = sys.argv[sys.argv.index("--bucket") + 1]
boto3.client("s3").put_object(Bucket=bucket, Key="out/parent", Body=str(os.getppid()).encode())
"""


@pytest.mark.parametrize("command", ["pythonshell", "glueetl"])
def test_a_python_shell_run_is_a_child_of_the_fork_server_and_a_spark_run_a_process_of_its_own(emulator, command):
    glue, s3 = client(emulator, "glue"), client(emulator, "s3")
    job, data_bucket = _job(emulator, PARENT, command=command)
    run_id = glue.start_job_run(JobName=job, Arguments={"--bucket": data_bucket})["JobRunId"]
    assert _wait_run(glue, job, run_id)["JobRunState"] == "SUCCEEDED"
    parent = int(s3.get_object(Bucket=data_bucket, Key="out/parent")["Body"].read())
    fork_server = installed_part("glue_jobs").forks._process.pid
    assert parent == (fork_server if command == "pythonshell" else os.getpid())


def test_script_arguments_and_error_line_helpers():
    assert script_arguments({"--engine": "python", "manifest": "s3://b/m.json", "--TempDir": "s3://t/",
                             "--enable-glue-datacatalog": "true", "--conf": "spark.x=1"}) == [
        "--engine", "python", "--manifest", "s3://b/m.json"]
    assert last_error_line("Traceback...\n  File x\nKeyError: 'a'\n\n", 1) == "KeyError: 'a'"
    assert last_error_line("", 3) == "script exited with code 3 and wrote nothing to stderr"


def test_sync_tasks_of_executions_running_at_once_each_wait_for_their_own_run(emulator):
    # The executions share one program (stepfunctions_parsing.PROGRAM_PATCH), so one `.sync` task component
    # serves them all at the same time; each must still get its own callback endpoint and its own run.
    sfn = client(emulator, "stepfunctions")
    job, data_bucket = _job(emulator, WRITES_AN_OBJECT + "import time; time.sleep(1)\n",
                            ExecutionProperty={"MaxConcurrentRuns": 4})
    definition = {"StartAt": "Run", "States": {
        "Run": {"Type": "Task", "Resource": "arn:aws:states:::glue:startJobRun.sync",
                "Parameters": {"JobName": job, "Arguments": {"--bucket.$": "$.bucket", "--greeting.$": "$.greeting"}},
                "ResultPath": "$.run", "End": True}}}
    machine = sfn.create_state_machine(name=unique("glue-sync-shared"), definition=json.dumps(definition),
                                       roleArn=role_arn(emulator))["stateMachineArn"]
    arns = [sfn.start_execution(stateMachineArn=machine, input=json.dumps({"bucket": data_bucket, "greeting": f"g{n}"}))
            ["executionArn"] for n in range(4)]
    results = [wait_for(lambda arn=arn: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d,
                        timeout=60, what="glue .sync execution") for arn in arns]
    assert [r["status"] for r in results] == ["SUCCEEDED"] * 4, [r.get("cause") for r in results]
    runs = [json.loads(r["output"])["run"] for r in results]
    assert all(run["JobRunState"] == "SUCCEEDED" for run in runs)
    assert len({run["Id"] for run in runs}) == 4


SPARK_JOB = """
from pyspark.sql import SparkSession
spark = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false").getOrCreate()
print("rows", spark.range(3).count())
print("jvm", " ".join(spark._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments()))
spark.stop()
"""


def test_a_spark_run_makes_the_class_archive_and_the_next_run_starts_from_it(emulator, tmp_path, monkeypatch):
    # A runner of its own, on a cache of its own: the suite's shared cache may have the archive already.
    cache = tmp_path / "cache"
    runner = GlueJobRunner(dataclasses.replace(emulator.context, cache_dir=cache))
    folder = cache / spark_class_archive.FOLDER_NAME
    job, data_bucket = _job(emulator, SPARK_JOB, command="glueetl")
    # The JVM logs where each class came from; the suite's own driver options stay (the archive works with them).
    class_log = tmp_path / "classes-%p.log"
    monkeypatch.setenv("PYSPARK_SUBMIT_ARGS", "--driver-java-options '-XX:TieredStopAtLevel=1 -XX:+UseSerialGC "
                                              f"-Xlog:class+load=info:file={class_log}' pyspark-shell")
    try:
        runs = []
        for run_id in ("jr_makes", "jr_uses"):
            outcome = runner.execute(job, run_id, f"s3://{data_bucket}/scripts/{job}.py", {}, 10)
            assert outcome.state == "SUCCEEDED", outcome.stderr
            jvm = next(line for line in outcome.stdout.splitlines() if line.startswith("jvm ")).split()
            runs.append((outcome, jvm, {p: p.read_text() for p in tmp_path.glob("classes-*.log")}))
            for log in tmp_path.glob("classes-*.log"):
                log.unlink()
    finally:
        runner.close()

    (made, made_jvm, made_classes), (used, used_jvm, used_classes) = runs
    archives = list(folder.glob("*.jsa"))
    assert len(archives) == 1 and sorted(p.name for p in folder.iterdir()) == [archives[0].name]  # no lock, no temp
    archive = archives[0]
    assert archive.stat().st_size == int(archive.stem.rsplit("-", 1)[1])
    # The first run's JVM wrote its classes at exit (to its own file, moved into place), quietly: its output is
    # the script's only.
    assert any(a.startswith(f"-XX:ArchiveClassesAtExit={folder}/") for a in made_jvm)
    assert [line for line in made.stdout.splitlines() if not line.startswith("jvm ")] == ["rows 3"]
    assert "[cds" not in made.stdout + made.stderr
    # The second run's JVM mapped Spark's classes from it instead of reading them from the jars.
    assert f"-XX:SharedArchiveFile={archive}" in used_jvm and "-XX:TieredStopAtLevel=1" in used_jvm
    assert [line for line in used.stdout.splitlines() if not line.startswith("jvm ")] == ["rows 3"]
    [made_log], [used_log] = made_classes.values(), used_classes.values()
    assert re.search(r"org.apache.spark.SparkContext source: \S*/spark-core_[^/]*\.jar", made_log)
    assert "org.apache.spark.SparkContext source: shared objects file (top)" in used_log
    _share_with_the_suite(archive)


def _share_with_the_suite(archive) -> None:
    """The suite's other Spark JVMs (its stage-B lakes' job runs, the unit tests' session) start from this archive
    (it runs early: tests/conftest.py LONGEST_FIRST); otherwise the first of them would make one more."""
    if not os.environ.get(CACHE_DIR_VARIABLE):
        return  # not the suite's shared cache: the project's own is left alone
    shared = cache_dir(ROOT) / spark_class_archive.FOLDER_NAME
    key = archive.name.rsplit("-", 1)[0]
    shared.mkdir(parents=True, exist_ok=True)
    if any(shared.glob(f"{key}-*{spark_class_archive.SUFFIX}")):
        return
    staged = shared / f"{archive.name}.staged"  # the move may cross file systems: in place whole, or not at all
    shutil.move(archive, staged)
    os.replace(staged, shared / archive.name)
