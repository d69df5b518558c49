"""The composition root: built lazily and once, so bad input is refused before any client exists."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from sdlf_cli.aws.session import AwsTarget, Clients
from sdlf_cli.config.loader import load_config
from sdlf_cli.errors import UsageError
from sdlf_cli.lake import Lake

ROOT = Path(__file__).resolve().parents[2]
CFG = load_config("dev", ROOT / "parameters")


def test_nothing_is_built_before_it_is_needed_and_everything_once():
    built = []

    def clients(cfg):
        built.append(cfg.env)
        return Clients(AwsTarget(region=cfg.region))

    lake = Lake(lambda: CFG, clients)
    assert lake.config.env == "dev" and built == []  # the configuration alone needs no target
    assert lake.queues is lake.queues and lake.tables.client is lake.clients.client("dynamodb")
    assert built == ["dev"]
    other = lake.with_config(replace(CFG, env="other"))
    assert other.config.env == "other" and other.clients is lake.clients and built == ["dev"]


def test_the_account_guard_names_the_file_that_pins_the_account():
    pinned = replace(CFG, account="111111111111", origins={**CFG.origins, "account": "parameters/dev.yaml:4"})
    clients = Clients(AwsTarget(region="us-east-1"))
    sts = boto3.client("sts", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    clients._cache["sts"] = sts  # the factory's cache is the injection point for stubbed clients
    with Stubber(sts) as stub:
        stub.add_response("get_caller_identity", {"Account": "222222222222", "Arn": "arn:aws:iam::2:user/u",
                                                  "UserId": "u"})
        with pytest.raises(UsageError, match=r"parameters/dev.yaml:4: account: .* only be deployed to account "
                                             r"111111111111, but the credentials in use belong to 222222222222"):
            Lake(pinned, clients).account()


def test_an_empty_registry_says_which_layer_to_deploy():
    clients = Clients(AwsTarget(region="us-east-1"))
    ssm = boto3.client("ssm", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    clients._cache["ssm"] = ssm
    with Stubber(ssm) as stub:
        stub.add_response("get_parameters_by_path", {"Parameters": []})
        with pytest.raises(UsageError, match=r"foundations are not deployed for env 'dev' here .*"
                                             r"run `sdlf deploy foundations --env dev` first"):
            Lake(CFG, clients).registry


def test_local_sessions_keep_the_session_token_of_keys_from_the_environment(monkeypatch):
    from sdlf_cli.aws.session import AwsTarget, Clients

    target = AwsTarget(region="us-east-1", endpoint_url="http://127.0.0.1:1")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    plain = Clients(target).session.get_credentials()
    assert (plain.access_key, plain.token) == ("testing", None)
    # A build acting as its role: assumed-role keys are only valid with their token.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token")
    assumed = Clients(target).session.get_credentials()
    assert (assumed.access_key, assumed.secret_key, assumed.token) == ("ASIAEXAMPLE", "secret", "token")
