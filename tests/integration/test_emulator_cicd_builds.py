"""CodeBuild builds on the emulator, run directly (as a pipeline action starts them): the buildspec's
phase rules, one shell per build, a bad buildspec, and the per-build Python environment."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from sdlf_cli.local.runtime import build_cache, install, installed_part
from sdlf_cli.local.runtime.codebuild import BuildRequest, BuildResult
from tests.integration.test_emulator_cicd_helpers import log_lines
from tests.integration.test_emulator_runtime_helpers import client, unique, zip_bytes


@pytest.fixture(scope="module", autouse=True)
def runtime(emulator):
    install(emulator.context)


def _project(emulator, buildspec: str) -> str:
    name = unique("build")
    # (moto's CreateProject wants a location even where AWS does not)
    client(emulator, "codebuild").create_project(
        name=name, source={"type": "S3", "location": "bucket/key.zip", "buildspec": buildspec},
        artifacts={"type": "NO_ARTIFACTS"}, serviceRole="arn:aws:iam::123456789012:role/build",
        environment={"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0",
                     "computeType": "BUILD_GENERAL1_SMALL"})
    return name


def _run(emulator, tmp_path: Path, buildspec: str, files: dict[str, str] | None = None,
         outputs: list[str] | None = None) -> tuple[BuildResult, dict, list[str]]:
    source = tmp_path / f"{unique('src')}.zip"
    source.write_bytes(zip_bytes(files or {"README": "x"}))
    result = installed_part("codebuild").run(BuildRequest(
        project=_project(emulator, buildspec), initiator="test", primary_input=source, output_artifacts=outputs or []))
    build = client(emulator, "codebuild").batch_get_builds(ids=[result.build_id])["builds"][0]
    return result, build, log_lines(emulator, build["logs"]["groupName"], build["logs"]["streamName"])


def _phases(build: dict) -> dict[str, str]:
    return {p["phaseType"]: p.get("phaseStatus", "") for p in build["phases"]}


def test_commands_share_one_shell_across_phases(emulator, tmp_path):
    result, build, lines = _run(emulator, tmp_path, """version: 0.2
phases:
  install:
    commands:
      - mkdir -p work && cd work
      - COUNT=1
      - greet() { echo "hello $1"; }
  build:
    commands:
      - COUNT=$((COUNT + 1)); echo "count=$COUNT in $(basename "$PWD")"
      - greet again
      - |
        for i in 1 2; do
          echo "line $i"
        done
      - printf 'no newline at the end'
      - python -c "import boto3; print('caller', boto3.client('sts').get_caller_identity()['Arn'])"
      - echo "sdlf cache ${SDLF_CACHE_DIR:-of the project}"
""")
    assert result.status == "SUCCEEDED", lines
    # the host's sdlf cache stays out (tests/conftest.py sets one for the suite): a build's is its S3 cache
    assert "sdlf cache of the project" in lines
    # the build acts as the project's service role
    assert f"caller arn:aws:sts::123456789012:assumed-role/build/{result.build_id.split(':')[1][:64]}" in lines
    assert "count=2 in work" in lines and "hello again" in lines
    assert "line 1" in lines and "line 2" in lines and "no newline at the end" in lines


def test_a_failing_install_skips_to_finalizing_and_continue_goes_on(emulator, tmp_path):
    result, build, lines = _run(emulator, tmp_path, """version: 0.2
phases:
  install:
    commands:
      - echo installing
      - "false"
      - echo never printed
    finally:
      - echo cleanup
  build:
    commands:
      - echo never built
""")
    assert result.status == "FAILED" and result.failed_phase == "INSTALL"
    assert _phases(build)["INSTALL"] == "FAILED" and "BUILD" not in _phases(build)
    assert "UPLOAD_ARTIFACTS" not in _phases(build) and "FINALIZING" in _phases(build)
    assert "cleanup" in lines and "never printed" not in lines and "never built" not in lines

    result, build, lines = _run(emulator, tmp_path, """version: 0.2
phases:
  pre_build:
    on-failure: CONTINUE
    commands:
      - exit 4
  build:
    commands:
      - echo "still built, succeeding=$CODEBUILD_BUILD_SUCCEEDING"
""")
    assert result.status == "FAILED" and result.failed_phase == "PRE_BUILD"  # CONTINUE goes on; the build fails
    assert "still built, succeeding=0" in lines
    assert "Reason: exit status 4" in result.message


def test_a_bad_buildspec_fails_in_download_source_with_the_field(emulator, tmp_path):
    result, build, lines = _run(emulator, tmp_path, """version: 0.2
phases:
  build:
    commands:
      - echo ok
      - run: nested
""")
    assert result.status == "FAILED" and result.failed_phase == "DOWNLOAD_SOURCE"
    assert result.code == "YAML_FILE_ERROR"
    assert "Expected phases.build.commands[1] to be of string type" in result.message
    assert _phases(build)["DOWNLOAD_SOURCE"] == "FAILED"

    result, _, _ = _run(emulator, tmp_path, "missing/buildspec.yml")
    assert result.code == "YAML_FILE_ERROR" and "missing/buildspec.yml" in result.message


def test_artifacts_and_exported_variables(emulator, tmp_path):
    result, build, lines = _run(emulator, tmp_path, """version: 0.2
env:
  exported-variables: [WHERE, MULTI]
phases:
  build:
    commands:
      - mkdir -p dist/sub && echo a > dist/a.txt && echo b > dist/sub/b.txt && echo c > dist/c.log
      - export WHERE=built MULTI="$(printf 'two\\nlines')"
artifacts:
  base-directory: dist
  files: ["**/*"]
  exclude-paths: ["*.log"]
  secondary-artifacts:
    Logs:
      files: [dist/*.log]
      discard-paths: yes
""", outputs=["Main", "Logs"])
    assert result.status == "SUCCEEDED", lines
    import zipfile

    assert sorted(zipfile.ZipFile(result.outputs["Main"]).namelist()) == ["a.txt", "sub/b.txt"]
    assert zipfile.ZipFile(result.outputs["Logs"]).namelist() == ["c.log"]
    assert result.exported == {"WHERE": "built", "MULTI": "two\nlines"}
    assert {"name": "WHERE", "value": "built"} in build["exportedEnvironmentVariables"]

    result, build, _ = _run(emulator, tmp_path, "version: 0.2\nphases:\n  build:\n    commands: [echo]\n"
                                                "artifacts:\n  files: [nothing/*]\n", outputs=["Main"])
    assert result.status == "FAILED" and result.failed_phase == "UPLOAD_ARTIFACTS"
    assert "no matching artifact paths found" in result.message


def _wheel() -> dict[str, str]:
    """A tiny wheel, unpacked (zip_bytes zips it again as the .whl)."""
    return {"tinypkg/__init__.py": "VALUE = 42\n",
            "tinypkg-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n",
            "tinypkg-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                           "Tag: py3-none-any\n",
            "tinypkg-1.0.dist-info/RECORD": "tinypkg/__init__.py,,\ntinypkg-1.0.dist-info/METADATA,,\n"
                                            "tinypkg-1.0.dist-info/WHEEL,,\ntinypkg-1.0.dist-info/RECORD,,\n"}


def test_pip_installs_into_the_builds_own_python_never_the_emulators(emulator, tmp_path):
    wheel = zip_bytes(_wheel()).decode("latin-1")
    source = tmp_path / "src.zip"
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("tinypkg-1.0-py3-none-any.whl", wheel.encode("latin-1"))
    source.write_bytes(buffer.getvalue())
    name = _project(emulator, """version: 0.2
phases:
  install:
    commands:
      - pip install --no-index --no-deps --disable-pip-version-check --quiet ./tinypkg-1.0-py3-none-any.whl
  build:
    commands:
      - python -c "import tinypkg, boto3, sys; print('value', tinypkg.VALUE, 'prefix', sys.prefix)"
      - echo "python is $(command -v python)"
""")
    result = installed_part("codebuild").run(BuildRequest(project=name, initiator="test", primary_input=source))
    build = client(emulator, "codebuild").batch_get_builds(ids=[result.build_id])["builds"][0]
    lines = log_lines(emulator, build["logs"]["groupName"], build["logs"]["streamName"])
    assert result.status == "SUCCEEDED", lines
    value = next(line for line in lines if line.startswith("value 42 prefix "))
    prefix = value.split("prefix ", 1)[1]
    assert prefix != sys.prefix and f"python is {prefix}/bin/python" in lines  # the build's own environment
    host = subprocess.run([sys.executable, "-c", "import importlib.util as u; print(u.find_spec('tinypkg'))"],
                          capture_output=True, text=True, check=True)
    assert host.stdout.strip() == "None"  # the emulator's environment is untouched


def test_a_build_stops_at_its_timeout(emulator, tmp_path):
    runner = installed_part("codebuild")
    name = _project(emulator, "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 20\n")
    # the shortest CodeBuild timeout is 5 minutes; shorten this project's to a few seconds here
    from sdlf_cli.local.runtime.codebuild import codebuild_backend

    codebuild_backend("123456789012", "us-east-1").codebuild_projects[name].project_metadata["timeoutInMinutes"] = 0.05
    source = tmp_path / "t.zip"
    source.write_bytes(zip_bytes({"a": "b"}))
    result = runner.run(BuildRequest(project=name, initiator="test", primary_input=source))
    assert result.status == "TIMED_OUT" and result.failed_phase == "BUILD"


def test_start_build_runs_an_s3_project_and_stores_its_artifact(emulator):
    import io
    import zipfile

    from tests.integration.test_emulator_runtime_helpers import bucket, wait_for

    data = bucket(emulator)
    s3, cb = client(emulator, "s3"), client(emulator, "codebuild")
    s3.put_object(Bucket=data, Key="src/app.zip", Body=zip_bytes({"app.txt": "from s3", "buildspec.yml": """version: 0.2
phases:
  build:
    commands:
      - cat app.txt > result.txt
      - echo "initiator=$CODEBUILD_INITIATOR"
artifacts:
  files: [result.txt]
"""}))
    name = unique("api")
    cb.create_project(name=name, source={"type": "S3", "location": f"{data}/src/app.zip"},
                      artifacts={"type": "S3", "location": data, "path": "out", "name": "result.zip",
                                 "packaging": "ZIP"},
                      serviceRole="arn:aws:iam::123456789012:role/build",
                      environment={"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0",
                                   "computeType": "BUILD_GENERAL1_SMALL"})
    started = cb.start_build(projectName=name)["build"]
    assert started["buildStatus"] == "IN_PROGRESS" and started["projectName"] == name
    build = wait_for(lambda: (b := cb.batch_get_builds(ids=[started["id"]])["builds"][0])["buildComplete"] and b,
                     what="the build")
    assert build["buildStatus"] == "SUCCEEDED", build
    assert build["artifacts"]["location"] == f"arn:aws:s3:::{data}/out/result.zip"
    body = s3.get_object(Bucket=data, Key="out/result.zip")["Body"].read()
    assert zipfile.ZipFile(io.BytesIO(body)).read("result.txt") == b"from s3"
    assert "initiator=root" in log_lines(emulator, build["logs"]["groupName"], build["logs"]["streamName"])


def test_output_reaches_the_log_stream_while_the_command_still_runs(emulator, tmp_path):
    from tests.integration.test_emulator_runtime_helpers import wait_for

    name = _project(emulator, "version: 0.2\nphases:\n  build:\n    commands:\n"
                              "      - echo first line; sleep 8; echo last line\n")
    started: dict = {}
    source = tmp_path / "s.zip"
    source.write_bytes(zip_bytes({"a": "b"}))
    request = BuildRequest(project=name, initiator="test", primary_input=source,
                           on_start=lambda build: started.setdefault("logs", build["logs"]))
    thread = threading.Thread(target=lambda: started.setdefault("result", installed_part("codebuild").run(request)))
    thread.start()
    logs = wait_for(lambda: started.get("logs"), what="the build to start")
    lines = wait_for(lambda: "first line" in (found := log_lines(emulator, logs["groupName"], logs["streamName"]))
                     and found, timeout=10, what="the first line in the log stream")
    assert "last line" not in lines and "result" not in started  # still running
    thread.join(timeout=30)
    assert started["result"].status == "SUCCEEDED"
    assert "last line" in log_lines(emulator, logs["groupName"], logs["streamName"])


CACHED = """version: 0.2
phases:
  build:
    commands:
      - if [ -f .sdlf/cache/lint/seen.clean ]; then echo "cache had $(cat .sdlf/cache/lint/seen.clean)"; else echo "cache empty"; fi
      - mkdir -p .sdlf/cache/lint && echo "build $CODEBUILD_BUILD_NUMBER" > .sdlf/cache/lint/seen.clean
      - echo not cached > elsewhere.txt
cache:
  paths:
    - .sdlf/cache/**/*
    - /root/.cache/pip/**/*
"""


def _cached_project(emulator, location: str, role: str) -> str:
    name = unique("cached")
    client(emulator, "codebuild").create_project(
        name=name, source={"type": "S3", "location": "bucket/key.zip", "buildspec": CACHED},
        artifacts={"type": "NO_ARTIFACTS"}, serviceRole=role, cache={"type": "S3", "location": location},
        environment={"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0",
                     "computeType": "BUILD_GENERAL1_SMALL"})
    return name


def _build(emulator, tmp_path: Path, project: str) -> tuple[BuildResult, list[str]]:
    source = tmp_path / f"{unique('src')}.zip"
    source.write_bytes(zip_bytes({"README": "x"}))
    result = installed_part("codebuild").run(BuildRequest(project=project, initiator="test", primary_input=source))
    build = client(emulator, "codebuild").batch_get_builds(ids=[result.build_id])["builds"][0]
    return result, log_lines(emulator, build["logs"]["groupName"], build["logs"]["streamName"])


def test_an_s3_cache_keeps_the_cache_paths_from_one_build_to_the_next(emulator, tmp_path):
    s3, iam = client(emulator, "s3"), client(emulator, "iam")
    bucket = unique("cache-bucket")
    s3.create_bucket(Bucket=bucket)
    role = iam.create_role(RoleName=unique("cache-role"), AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "codebuild.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]
    iam.put_role_policy(RoleName=role["RoleName"], PolicyName="cache", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": f"arn:aws:s3:::{bucket}/*"},
            {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:CreateLogGroup"],
             "Resource": "*"}]}))
    project = _cached_project(emulator, f"{bucket}/build-cache/x", role["Arn"])

    first, lines = _build(emulator, tmp_path, project)
    assert first.status == "SUCCEEDED", lines
    assert "No cache found: the build runs without one" in "\n".join(lines) and "cache empty" in lines
    assert any("/root/.cache/pip/**/*" in line and "not kept" in line for line in lines)
    key = f"build-cache/x/{build_cache.OBJECT_NAME}"
    with zipfile.ZipFile(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())) as zf:
        assert zf.namelist() == [".sdlf/cache/lint/seen.clean"]  # only what the paths match

    second, lines = _build(emulator, tmp_path, project)
    assert second.status == "SUCCEEDED", lines
    assert any(line.endswith("Cache restored: 1 file(s)") for line in lines), lines
    assert "cache had build 1" in lines

    # A role that may not read or write the location: the build runs without its cache, and says why.
    iam.delete_role_policy(RoleName=role["RoleName"], PolicyName="cache")
    iam.put_role_policy(RoleName=role["RoleName"], PolicyName="logs-only", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
            "logs:CreateLogStream", "logs:PutLogEvents", "logs:CreateLogGroup"]}]}))
    third, lines = _build(emulator, tmp_path, project)
    assert third.status == "SUCCEEDED", lines
    text = "\n".join(lines)
    assert "Warning: could not download the cache" in text and "AccessDenied" in text
    assert "Warning: could not upload the cache" in text and "cache empty" in lines
