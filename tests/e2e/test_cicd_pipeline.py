"""The delivery pipeline end to end on the emulator, as a team runs it: deploy the target roles and the pipeline,
`sdlf cicd push` the working tree; Validate lints and runs a small unit-test selection; dev is planned and
deployed; prod waits for its approval with the plan summary; approve; prod is deployed and in sync. A second push
with nothing changed finds every stack unchanged; a push that breaks a template fails Validate with the lint
finding as the root cause.

The repository is a copy of this one's tracked files (a git repository of its own). To keep the run short, its
lake is foundations and one team per environment (no pipelines or datasets) and Validate's test command runs one
file, without test workers.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from sdlf_cli.checkov_scan import find_checkov
from sdlf_cli.delivery.archive import tracked_files

ROOT = Path(__file__).resolve().parents[2]
# One file, in the build's own process: pytest.ini's `-n auto` would start a worker per core for it.
TEST_COMMAND = "python -m pytest tests/unit/test_cicd_templates.py -q -p no:cacheprovider -n 0"
SMALL_LAKE = """env: {env}
log_retention_days: {retention}
{protection}
teams:
  engineering:
    notification_email: engineering@example.com
"""
SDLF = [sys.executable, "-m", "sdlf_cli.cli"]


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("repo")
    for path in tracked_files(ROOT):
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, target)
    base = root / "parameters" / "base.yaml"
    text = base.read_text()
    assert "test_command: python -m pytest tests/unit -q" in text
    base.write_text(text.replace("test_command: python -m pytest tests/unit -q", f"test_command: {TEST_COMMAND}"))
    for env, retention, protection in (("dev", 90, ""), ("prod", 365, "termination_protection: true")):
        (root / "parameters" / f"{env}.yaml").write_text(SMALL_LAKE.format(env=env, retention=retention,
                                                                           protection=protection))
    git = ["git", "-c", "user.name=sdlf", "-c", "user.email=sdlf@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "lake"], cwd=root, check=True)
    # The builds' image comes with checkov (the emulator's builds inherit its environment), so Validate's
    # install step finds it instead of installing it again in every build; and with setuptools and wheel,
    # so each build's `pip install .` builds the project with them instead of downloading both into an
    # isolated build environment first (PIP_NO_BUILD_ISOLATION=0 turns isolation off).
    env = {**os.environ, "SDLF_LOCAL_STATE_DIR": str(root / ".state"), "SDLF_LOCAL": "1", "CI": "1",
           "SDLF_CHECKOV": str(find_checkov(ROOT)), "PIP_NO_BUILD_ISOLATION": "0"}
    for name in ("SDLF_ENDPOINT_URL", "AWS_PROFILE", "AWS_ENDPOINT_URL", "SDLF_ENV", "SDLF_ROLE_ARN"):
        env.pop(name, None)
    yield root, env
    subprocess.run([*SDLF, "local", "down"], cwd=root, env=env, capture_output=True, timeout=60)


def sdlf(repo, *args, ok: bool = True, timeout: int = 900) -> dict:
    root, env = repo
    done = subprocess.run([*SDLF, *args, "-o", "json"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if ok:
        assert done.returncode == 0, f"sdlf {' '.join(args)}:\n{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
    return json.loads(done.stdout) if done.stdout.strip() else {}


def aws(repo, service: str):
    endpoint = sdlf(repo, "local", "status")["endpoint_url"]
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def actions(status: dict) -> dict[tuple[str, str], dict]:
    return {(a["stage"], a["action"]): a for a in status["actions"]}


def test_push_validates_deploys_dev_waits_for_prod_approval_then_deploys_prod(repo):
    # IAM enforced (the default): the build role assumes each stage's deploy role by its identity policy and
    # the deploy role's trust policy, as on AWS.
    sdlf(repo, "local", "up")
    for env in ("dev", "prod"):
        sdlf(repo, "deploy", "cicd-target", "--env", env)
    deployed = sdlf(repo, "deploy", "cicd", "--env", "dev")
    assert [r["status"] for r in deployed["results"]] == ["unchanged", "created"]

    pushed = sdlf(repo, "cicd", "push", "--follow")
    status = pushed["status"]
    by = actions(status)
    assert status["status"] == "InProgress" and status["waiting_for_approval"] == "Deploy-prod", status
    for key in [("Source", "Source"), ("Validate", "Validate"), ("Deploy-dev", "Plan"), ("Deploy-dev", "Deploy"),
                ("Deploy-prod", "Plan")]:
        assert by[key]["status"] == "Succeeded", by[key]
    assert by[("Deploy-dev", "Plan")]["message"].startswith("dev: 2 stack(s) to add, 0 to change, 0 to remove")
    approval = by[("Deploy-prod", "Approve")]
    assert approval["status"] == "InProgress"
    assert approval["message"].startswith("prod: 2 stack(s) to add, 0 to change, 0 to remove")
    assert "!! IAM CHANGES:" in approval["message"]

    assert sdlf(repo, "cicd", "approve", "--env", "prod")["decision"] == "approved"
    done = sdlf(repo, "cicd", "status", "--follow")
    assert done["status"] == "Succeeded", done
    assert actions(done)[("Deploy-prod", "Deploy")]["status"] == "Succeeded"

    prod = sdlf(repo, "status", "--env", "prod")
    stacks = {s["layer"]: s for s in prod["stacks"]}
    assert set(stacks) == {"bootstrap", "foundations", "team", "cicd-target"}
    assert {name: s["drift"] for name, s in stacks.items()} == dict.fromkeys(stacks, "in sync")
    # prod's parameters turn termination protection on: the pipeline's deploy set it on every stack it deployed
    cfn = aws(repo, "cloudformation")
    protected = {s["StackName"]: s.get("EnableTerminationProtection") for s in cfn.describe_stacks()["Stacks"]}
    assert protected["acme-lake-prod-foundations"] is True and protected["acme-lake-prod-team-engineering"] is True
    assert protected["acme-lake-dev-foundations"] is not True


def test_a_second_push_with_nothing_changed_finds_every_stack_unchanged(repo):
    status = sdlf(repo, "cicd", "push", "--follow")["status"]
    by = actions(status)
    assert by[("Deploy-dev", "Plan")]["message"].startswith("dev: 0 stack(s) to add, 0 to change, 0 to remove, 3 unchanged")
    assert by[("Deploy-dev", "Deploy")]["status"] == "Succeeded"
    assert by[("Deploy-prod", "Approve")]["message"] == "prod: 0 stack(s) to add, 0 to change, 0 to remove, 3 unchanged."
    assert sdlf(repo, "cicd", "reject", "--env", "prod", "--summary", "nothing to promote")["decision"] == "rejected"


def test_a_push_that_breaks_a_template_fails_validate_with_the_lint_finding(repo):
    root, _ = repo
    template = root / "templates" / "foundations" / "_athena.yaml.j2"
    text = template.read_text()
    assert "EnforceWorkGroupConfiguration: true" in text
    template.write_text(text.replace("EnforceWorkGroupConfiguration: true", "EnforceWorkGroupConfiguration: maybe", 1))
    # what the lake topic receives
    sqs, sns = aws(repo, "sqs"), aws(repo, "sns")
    inbox = sqs.create_queue(QueueName="lake-topic-inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    account = aws(repo, "sts").get_caller_identity()["Account"]
    sns.subscribe(TopicArn=f"arn:aws:sns:us-east-1:{account}:acme-lake-dev-notifications", Protocol="sqs",
                  Endpoint=inbox_arn, Attributes={"RawMessageDelivery": "true"})

    status = sdlf(repo, "cicd", "push", "--follow", ok=False)["status"]
    assert status["status"] == "Failed"
    validate = actions(status)[("Validate", "Validate")]
    assert validate["status"] == "Failed"
    assert "foundations/acme-lake-dev-foundations.yaml:" in validate["root_cause"], validate
    assert "maybe" in validate["root_cause"] and validate["log"]
    assert status["root_cause"] == validate["root_cause"]
    assert actions(status)[("Deploy-dev", "Plan")]["status"] == "not run"
    published = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", [])
    assert [m["Body"] for m in published] == [f"Validate failed: {validate['root_cause']}"]
