"""Sessions share the process's loaded service models; each keeps its own credentials, profile and region."""
from __future__ import annotations

import boto3
import botocore.session
from botocore.stub import Stubber

from sdlf_cli.aws.session import AwsTarget, Clients, new_session, share_models_with_every_session, shared_loader
from tests.conftest import ORIGINAL_REGISTER_DATA_LOADER


def test_sessions_share_one_model_loader_and_keep_their_own_credentials_and_region():
    first = new_session(region_name="us-east-1", aws_access_key_id="AKIDFIRST", aws_secret_access_key="s1")
    second = new_session(region_name="eu-west-1", aws_access_key_id="AKIDSECOND", aws_secret_access_key="s2",
                         aws_session_token="token")
    loader = first._session.get_component("data_loader")
    assert second._session.get_component("data_loader") is loader
    # boto3 adds its resource models' folder to the loader of each session it makes: it is there once.
    assert sorted(loader.search_paths) == sorted(set(loader.search_paths))
    assert any(path.endswith("boto3/data") for path in loader.search_paths)
    assert first.get_credentials().access_key == "AKIDFIRST"
    assert second.get_credentials().token == "token"
    assert (first.region_name, second.region_name) == ("us-east-1", "eu-west-1")
    # boto3's resources (which read the models boto3 ships) still load from a shared loader.
    assert second.resource("dynamodb").meta.client.meta.region_name == "eu-west-1"


def test_a_model_is_parsed_once_for_all_sessions(monkeypatch):
    # botocore as it ships, not as the suite's sessions load models (tests/conftest.py)
    monkeypatch.setattr(botocore.session.Session, "_register_data_loader", ORIGINAL_REGISTER_DATA_LOADER)
    models = [Clients(AwsTarget(region="us-east-1", endpoint_url="http://127.0.0.1:9")).client("dynamodb")
              .meta.service_model._service_description for _ in range(3)]
    assert models[0] is models[1] is models[2]
    assert boto3.session.Session(region_name="us-east-1").client("dynamodb").meta.service_model \
        ._service_description is not models[0]  # a plain boto3 session parses its own


def test_clients_of_a_shared_loader_answer_their_own_calls():
    a = Clients(AwsTarget(region="us-east-1", endpoint_url="http://127.0.0.1:9")).client("sqs")
    b = Clients(AwsTarget(region="us-east-1", endpoint_url="http://127.0.0.1:9")).client("sqs")
    with Stubber(a) as sa, Stubber(b) as sb:
        sa.add_response("get_queue_url", {"QueueUrl": "http://q/a"}, {"QueueName": "a"})
        sb.add_response("get_queue_url", {"QueueUrl": "http://q/b"}, {"QueueName": "b"})
        assert b.get_queue_url(QueueName="b")["QueueUrl"] == "http://q/b"
        assert a.get_queue_url(QueueName="a")["QueueUrl"] == "http://q/a"


def test_every_session_of_the_test_process_reads_the_models_from_the_shared_loader(monkeypatch, tmp_path):
    """tests/conftest.py: moto's per-test default sessions must not parse the models again."""
    monkeypatch.delenv("AWS_DATA_PATH", raising=False)
    first, second = botocore.session.Session(), botocore.session.get_session()
    assert first.get_component("data_loader") is second.get_component("data_loader") is shared_loader()
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    own = botocore.session.Session().get_component("data_loader")
    assert own is not shared_loader() and str(tmp_path) in own.search_paths


def test_sharing_the_models_with_every_session_is_undone_by_what_it_returns(monkeypatch):
    """sdlf_cli/local/server.py shares them in the emulator's process before moto makes its sessions."""
    monkeypatch.delenv("AWS_DATA_PATH", raising=False)
    monkeypatch.setattr(botocore.session.Session, "_register_data_loader", ORIGINAL_REGISTER_DATA_LOADER)
    assert botocore.session.Session().get_component("data_loader") is not shared_loader()
    undo = share_models_with_every_session()
    try:
        assert botocore.session.Session().get_component("data_loader") is shared_loader()
    finally:
        undo()
    assert botocore.session.Session._register_data_loader is ORIGINAL_REGISTER_DATA_LOADER
