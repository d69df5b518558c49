"""The command line as a person uses it: exit codes, messages, and that bad input touches nothing."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def sdlf(*args: str, cwd: Path = ROOT, env: dict | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "CI": "1", **(env or {})}
    full_env.pop("SDLF_LOCAL", None)
    return subprocess.run([sys.executable, "-m", "sdlf_cli.cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


# `sdlf lint` starts checkov, a large program, in its own environment: give it time on a busy machine.
LINT_TIMEOUT = 600


@pytest.fixture()
def project(tmp_path):
    for part in ("templates", "lambda", "parameters"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_bad_parameters_file_exits_2_with_file_line_and_deploys_nothing(project):
    dev = project / "parameters" / "dev.yaml"
    dev.write_text(dev.read_text().replace("env: dev", "env: dev\nbogus_key: 1", 1))
    # An endpoint nobody listens on: any AWS call would fail with exit 1 and a connection error.
    result = sdlf("deploy", "foundations", "--env", "dev", "--endpoint-url", "http://127.0.0.1:9", cwd=project)
    assert result.returncode == 2, result.stderr
    assert "parameters/dev.yaml:" in result.stderr
    assert "bogus_key" in result.stderr
    assert "connect" not in result.stderr.lower()
    assert not (project / ".sdlf" / "build").exists()


def test_config_show_names_the_origin_of_each_value(project):
    result = sdlf("config", "show", "--env", "dev", "-o", "json", cwd=project)
    assert result.returncode == 0, result.stderr
    values = {v["field"]: v for v in json.loads(result.stdout)["values"]}
    assert values["org"]["origin"].startswith("parameters/base.yaml:")
    assert values["env"]["origin"].startswith("parameters/dev.yaml:")


def test_render_writes_templates_and_lint_is_clean(project):
    result = sdlf("render", "--env", "dev", cwd=project)
    assert result.returncode == 0, result.stderr
    written = sorted(p.relative_to(project).as_posix() for p in (project / ".sdlf" / "build").rglob("*.yaml"))
    assert ".sdlf/build/dev/foundations/acme-lake-dev-foundations.yaml" in written
    assert ".sdlf/build/dev/bootstrap/acme-lake-dev-bootstrap.yaml" in written
    lint = sdlf("lint", "--env", "dev", cwd=project, timeout=LINT_TIMEOUT)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "lint: clean" in lint.stdout
    assert "skipped with a written reason (--show-skips lists them" in lint.stdout


def test_lint_reports_template_line_rule_and_exits_1(project):
    main = project / "templates" / "bootstrap" / "bootstrap.yaml.j2"
    main.write_text(main.read_text().replace("Type: AWS::S3::Bucket", "Type: AWS::S3::Bukket", 1))
    result = sdlf("lint", "bootstrap", "--env", "dev", "--show-skips", cwd=project, timeout=LINT_TIMEOUT)
    assert result.returncode == 1
    line = next(l for l in result.stdout.splitlines() if "E3006" in l or "Bukket" in l)
    assert line.startswith("bootstrap/acme-lake-dev-bootstrap.yaml:")
    # --show-skips: each check the template skips, where, and the reason written there.
    skipped = next(l for l in result.stdout.splitlines() if l.startswith("skipped "))
    assert skipped.startswith("skipped bootstrap/acme-lake-dev-bootstrap.yaml:")
    assert "CKV_AWS_18 AWS::S3::Bucket.rArtifactsLogsBucket: This is the access-log bucket itself" in skipped


def test_unknown_layer_is_a_usage_error(project):
    result = sdlf("deploy", "nonsense", "--env", "dev", "--endpoint-url", "http://127.0.0.1:9", cwd=project)
    assert result.returncode == 2
    assert "unknown layer" in result.stderr


def test_local_flag_without_a_running_emulator_says_what_to_run(project):
    result = sdlf("deploy", "foundations", "--local", cwd=project,
                  env={"SDLF_LOCAL_STATE_DIR": str(project / "no-emulator")})
    assert result.returncode == 2
    assert "sdlf local up" in result.stderr


def test_unreachable_endpoint_is_one_clear_line_and_exit_1(project):
    # `-o csv` is accepted (query results); nobody listens on the endpoint, so the AWS call fails.
    result = sdlf("query", "SELECT 1", "--env", "dev", "-o", "csv", "--endpoint-url", "http://127.0.0.1:9",
                  cwd=project)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: AWS call failed: Could not connect to the endpoint URL")


@pytest.mark.parametrize("args, expected", [
    (["add-team", "Bad_Team"], "Bad_Team"),
    (["add-dataset", "engineering", "legislators2", "--pipeline", "nope"], "has no pipeline 'nope'"),
    (["ingest", "missing.json", "--team", "engineering", "--dataset", "legislators"], "no such file: missing.json"),
    (["trace", "not-a-uri"], "expected an object as s3://BUCKET/KEY"),
    (["query", "  "], "the query is empty"),
    (["run-stage-b", "--team", "engineering", "--dataset", "nope"], "no dataset engineering/nope"),
    (["destroy", "teams", "--yes"], "unknown layer or stack teams in env 'dev'"),
    (["audit", "--stale-after", "0"], "--stale-after must be more than 0 seconds"),
])
def test_arguments_are_checked_before_the_emulator_is_needed(project, args, expected):
    dev = project / "parameters" / "dev.yaml"
    before = dev.read_text()
    result = sdlf(*args, "--local", cwd=project, env={"SDLF_LOCAL_STATE_DIR": str(project / "no-emulator")})
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert "not running" not in result.stderr
    assert dev.read_text() == before


def test_verbose_logs_the_aws_calls_and_shows_the_traceback_at_vv(project):
    quiet = sdlf("query", "SELECT 1", "--endpoint-url", "http://127.0.0.1:9", cwd=project)
    assert "DEBUG" not in quiet.stderr and "Traceback" not in quiet.stderr
    loud = sdlf("query", "SELECT 1", "-vv", "--endpoint-url", "http://127.0.0.1:9", cwd=project)
    assert loud.returncode == 1
    assert "DEBUG sdlf.aws: glue get_databases" in loud.stderr
    assert "Traceback" in loud.stderr
    assert loud.stderr.rstrip().splitlines()[-1].startswith("error: AWS call failed: Could not connect")


def test_local_up_refuses_an_unknown_fault_before_starting_anything(project):
    state = project / "emulator-state"
    result = sdlf("local", "up", "--faults", "lambda_error=0.2,gremlins=0.1", "--seed", "7",
                  cwd=project, env={"SDLF_LOCAL_STATE_DIR": str(state)})
    assert result.returncode == 2, result.stderr
    assert "unknown fault 'gremlins'" in result.stderr and "lambda_error" in result.stderr
    assert not (state / "emulator.pid").exists()
