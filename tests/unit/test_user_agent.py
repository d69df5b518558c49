"""sdlf_cli.aws.user_agent: the same User-Agent header with botocore's sanitizing cached, and it comes out again."""
from __future__ import annotations

import boto3
from botocore import useragent

from sdlf_cli.aws.user_agent import sanitized_once


class _Sent(Exception):
    pass


def _headers(client_kwargs: dict) -> str:
    """The User-Agent header of a request the client is about to send (stopped there: no network)."""
    client = boto3.session.Session(region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b").client(
        "sqs", **client_kwargs)

    def stop(request, **_):
        raise _Sent(request.headers["User-Agent"])

    client.meta.events.register("before-send.sqs", stop)
    try:
        client.list_queues()
    except _Sent as sent:
        return str(sent.args[0])
    raise AssertionError("the request was not built")


def test_the_header_is_botocore_s_own_and_the_cache_comes_out():
    from botocore.config import Config

    undo = sanitized_once()  # in place already in a test process (tests/conftest.py): the same function stays
    cached = useragent.sanitize_user_agent_string_component
    assert hasattr(cached, "cache_info")
    undo()
    assert not hasattr(useragent.sanitize_user_agent_string_component, "cache_info")
    try:
        kwargs = {"config": Config(user_agent_extra="sdlf/1.0 team#eng odd chars:é~")}
        own = [useragent.sanitize_user_agent_string_component(text, hash_) for text in ("a b/c#d", "ok!", "é~")
               for hash_ in (True, False)]
        own_header = _headers(kwargs)
    finally:
        sanitized_once()
    assert hasattr(useragent.sanitize_user_agent_string_component, "cache_info")
    again = [useragent.sanitize_user_agent_string_component(text, hash_) for text in ("a b/c#d", "ok!", "é~")
             for hash_ in (True, False)]
    assert again == own == ["a-b-c#d", "a-b-c-d", "ok!", "ok!", "-~", "-~"]
    assert _headers(kwargs) == own_header and "sdlf/1.0" in own_header
    assert useragent.sanitize_user_agent_string_component.cache_info().hits > 0
