"""Team isolation, proven on the rendered policies: every role of one team (identity policies ∩ the team's
permissions boundary, with the resource's own policy) is refused every action it holds on each resource of
the other team — its prefix in every lake bucket, its key, queues, topic, state machines and executions,
functions, Glue jobs, crawlers and databases, log groups — and is allowed on its own.

What the design shares between teams and this test therefore does not refuse: the lake's tables (catalog,
executions, quality: rows are not partitioned by team), the SSM registry (read-only) and the lake key.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import pytest

from sdlf_cli.policy.documents import as_list, statements
from sdlf_cli.policy.evaluate import Request, allowed
from sdlf_cli.policy.exceptions import UNSCOPED_ACTIONS
from sdlf_cli.policy.resolve import ACCOUNT, ResolvedLake, Stack, resolve_lake
from tests.unit.security_lakes import rendered

TEAMS = ("eng", "mkt")


@dataclass(frozen=True)
class Role:
    name: str
    arn: str
    identity: tuple
    boundary: dict


@dataclass(frozen=True)
class Target:
    what: str
    service: str
    arn: str
    context: tuple = ()


@cache
def lake() -> ResolvedLake:
    return resolve_lake(list(rendered("two-teams")))


def team_stacks(team: str) -> list[Stack]:
    return [s for s in lake().stacks if s.layer in ("team", "pipeline", "dataset")
            and (s.name.endswith(f"-team-{team}") or f"-pipeline-{team}-" in s.name or f"-dataset-{team}-" in s.name)]


def roles(team: str, lake_: ResolvedLake | None = None) -> list[Role]:
    (stack,) = [s for s in (lake_ or lake()).stacks if s.layer == "team" and s.name.endswith(f"-team-{team}")]
    boundary = stack.resolve(stack.template["Resources"]["rBoundary"]["Properties"]["PolicyDocument"])
    found = []
    for logical_id, resource in stack.template["Resources"].items():
        if resource["Type"] == "AWS::IAM::Role":
            props = stack.resolve(resource["Properties"])
            assert props["PermissionsBoundary"] == stack.ref("rBoundary")
            found.append(Role(logical_id, stack.get_att(logical_id, "Arn"),
                              tuple(p["PolicyDocument"] for p in props["Policies"]), boundary))
    assert {r.name for r in found} == {"rLambdaRole", "rStatesRole", "rGlueRole"}
    return found


def targets(team: str) -> list[Target]:
    """The resources a team owns, as the ARNs requests name."""
    foundations = lake().stack("foundations")
    found = []
    for logical_id, resource in foundations.template["Resources"].items():
        if resource["Type"] == "AWS::S3::Bucket" and logical_id not in ("rLogsBucket",):
            bucket = foundations.ref(logical_id)
            found.append(Target(f"s3://{bucket}/{team}/", "s3", f"arn:aws:s3:::{bucket}/{team}/ds/file.json"))
            found.append(Target(f"list s3://{bucket}/{team}/", "s3", f"arn:aws:s3:::{bucket}",
                                (("s3:prefix", f"{team}/ds/"),)))
    for stack in team_stacks(team):
        here = f"arn:aws:{{}}:{stack.region}:{ACCOUNT}:"
        for logical_id, resource in stack.template["Resources"].items():
            kind, what = resource["Type"], f"{stack.name}:{logical_id}"
            if kind == "AWS::KMS::Key":
                found.append(Target(what, "kms", stack.get_att(logical_id, "Arn")))
            elif kind == "AWS::SQS::Queue":
                found.append(Target(what, "sqs", stack.get_att(logical_id, "Arn")))
            elif kind == "AWS::SNS::Topic":
                found.append(Target(what, "sns", stack.ref(logical_id)))
            elif kind == "AWS::StepFunctions::StateMachine":
                name = stack.get_att(logical_id, "Name")
                found.append(Target(what, "states", stack.ref(logical_id)))
                found.append(Target(what + " execution", "states", here.format("states") + f"execution:{name}:x"))
            elif kind == "AWS::Lambda::Function":
                found.append(Target(what, "lambda", stack.get_att(logical_id, "Arn")))
            elif kind == "AWS::Glue::Job":
                found.append(Target(what, "glue", here.format("glue") + f"job/{stack.ref(logical_id)}"))
            elif kind == "AWS::Glue::Crawler":
                found.append(Target(what, "glue", here.format("glue") + f"crawler/{stack.ref(logical_id)}"))
            elif kind == "AWS::Glue::Database":
                database = stack.ref(logical_id)
                found.append(Target(what, "glue", here.format("glue") + f"database/{database}"))
                found.append(Target(what + " table", "glue", here.format("glue") + f"table/{database}/t"))
            elif kind == "AWS::Logs::LogGroup":
                arn = stack.get_att(logical_id, "Arn").removesuffix(":*")
                found.append(Target(what, "logs", f"{arn}:log-stream:x"))
            elif kind == "AWS::Athena::WorkGroup":
                found.append(Target(what, "athena", here.format("athena") + f"workgroup/{stack.ref(logical_id)}"))
    return found


@cache
def resource_policies() -> dict[str, dict]:
    """Resource ARN -> the bucket, queue, topic or key policy that applies to it."""
    policies = {}
    for stack in lake().stacks:
        for logical_id, resource in stack.template["Resources"].items():
            kind, props = resource["Type"], resource.get("Properties") or {}
            if kind == "AWS::S3::BucketPolicy":
                policies[f"arn:aws:s3:::{stack.resolve(props['Bucket'])}"] = stack.resolve(props["PolicyDocument"])
            elif kind == "AWS::SQS::QueuePolicy":
                for url in stack.resolve(props["Queues"]):
                    name = url.rsplit("/", 1)[1]
                    policies[f"arn:aws:sqs:{stack.region}:{ACCOUNT}:{name}"] = stack.resolve(props["PolicyDocument"])
            elif kind == "AWS::SNS::TopicPolicy":
                for arn in stack.resolve(props["Topics"]):
                    policies[arn] = stack.resolve(props["PolicyDocument"])
            elif kind == "AWS::KMS::Key":
                policies[stack.get_att(logical_id, "Arn")] = stack.resolve(props["KeyPolicy"])
    return policies


def policy_for(arn: str) -> dict | None:
    bucket = arn.split("/", 1)[0] if arn.startswith("arn:aws:s3:::") else arn
    return resource_policies().get(bucket)


def actions_of(role: Role) -> set[str]:
    """Every action the role's policies name (the ones it could try), but the account-level ones that act on
    no resource (sdlf_cli/policy/exceptions.py)."""
    return {a for doc in role.identity for s in statements(doc) if s["Effect"] == "Allow"
            for a in as_list(s.get("Action", [])) if a not in UNSCOPED_ACTIONS}


def request(role: Role, action: str, target: Target) -> Request:
    context = {"aws:SecureTransport": "true", "aws:PrincipalArn": role.arn, **dict(target.context)}
    return Request(role.arn, action, target.arn, context)


def decisions(role: Role, target: Target) -> dict[str, bool]:
    return {action: allowed(request(role, action, target), role.identity, role.boundary, policy_for(target.arn))
            for action in actions_of(role) if action.split(":")[0] == target.service}


def breaches(team: str, other: str, team_roles: list[Role]) -> list[str]:
    return [f"{role.name} of {team} may {action} on {target.what}"
            for role in team_roles for target in targets(other)
            for action, ok in decisions(role, target).items() if ok]


@pytest.mark.parametrize("team,other", [("eng", "mkt"), ("mkt", "eng")])
def test_every_role_of_a_team_is_refused_everything_of_the_other_team(team, other):
    found = targets(other)
    assert {t.service for t in found} >= {"s3", "kms", "sqs", "sns", "states", "lambda", "glue", "logs"}
    assert breaches(team, other, roles(team)) == []


# What each kind of target must let its own team do (at least one role, at least one of these actions).
OWN = {
    "s3": {"s3:GetObject", "s3:PutObject", "s3:ListBucket"},
    "kms": {"kms:Decrypt", "kms:GenerateDataKey"},
    "sqs": {"sqs:SendMessage", "sqs:ReceiveMessage"},
    "sns": {"sns:Publish"},
    "states": {"states:StartExecution", "states:DescribeExecution"},
    "lambda": {"lambda:InvokeFunction"},
    "glue": {"glue:StartJobRun", "glue:StartCrawler", "glue:GetDatabase", "glue:GetTable"},
}


@pytest.mark.parametrize("team", TEAMS)
def test_every_resource_of_a_team_is_usable_by_its_own_roles(team):
    team_roles = roles(team)
    missing = []
    for target in targets(team):
        if target.service not in OWN or "athena" in target.what:
            continue
        if "-athena/" in target.arn or target.arn.endswith("-athena"):
            continue  # the team's Athena results: written by Athena for the team, not by its compute roles
        if not any(ok for role in team_roles for action, ok in decisions(role, target).items()
                   if action in OWN[target.service]):
            missing.append(target.what)
    assert missing == []


def test_a_role_and_boundary_widened_to_every_prefix_are_caught():
    """The check can fail: a grant in the role alone is held back by the boundary; in both, it is a breach."""
    every_object = {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::*/*"}]}
    role_only = [Role(r.name, r.arn, r.identity + (every_object,), r.boundary) for r in roles("eng")]
    assert breaches("eng", "mkt", role_only) == []
    both = [Role(r.name, r.arn, r.identity + (every_object,),
                 {**r.boundary, "Statement": statements(r.boundary) + statements(every_object)}) for r in roles("eng")]
    found = breaches("eng", "mkt", both)
    assert len(found) == 3 * 4  # three roles, the mkt prefix of four buckets
    assert all(" may s3:GetObject on s3://" in b and b.endswith("/mkt/") for b in found)
