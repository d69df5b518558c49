"""The emulator's server keeps HTTP/1.1 connections alive, and answers as moto's own handler answers.

- botocore calls (S3 put/head/get, a missing key, a 3 MB body, DynamoDB, SQS) get the same answers from a
  server built with moto's handler (the patch out) as from the emulator's;
- several requests share one connection, including one whose body the application never reads and a HEAD
  that carries the object's Content-Length without a body;
- `Connection: close`, HTTP/1.0 and chunked requests are served by moto's handler and the connection closes;
- stopping a server closes the connections it kept alive.
"""
from __future__ import annotations

import http.client
import socket

import boto3
import pytest

from sdlf_cli.local import http_keep_alive
from sdlf_cli.local.cfn import _patching
from sdlf_cli.local.server import _moto_server, free_port
from tests.integration.test_emulator_runtime_helpers import unique


def _client(endpoint: str, service: str):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _answers(endpoint: str) -> list:
    s3, ddb, sqs = (_client(endpoint, name) for name in ("s3", "dynamodb", "sqs"))
    bucket = unique("keep-alive")
    s3.create_bucket(Bucket=bucket)
    answers = []
    for n in range(3):
        s3.put_object(Bucket=bucket, Key=f"k{n}", Body=f"body {n}".encode())
        head = s3.head_object(Bucket=bucket, Key=f"k{n}")
        answers.append((head["ContentLength"], s3.get_object(Bucket=bucket, Key=f"k{n}")["Body"].read()))
    big = b"y" * (3 * 1024 * 1024)
    s3.put_object(Bucket=bucket, Key="big", Body=big)
    answers.append(s3.get_object(Bucket=bucket, Key="big")["Body"].read() == big)
    with pytest.raises(s3.exceptions.NoSuchKey) as missing:
        s3.get_object(Bucket=bucket, Key="missing")
    answers.append(missing.value.response["Error"]["Code"])
    table = unique("keep-alive")
    ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    ddb.put_item(TableName=table, Item={"id": {"S": "a"}, "n": {"N": "1"}})
    answers.append(ddb.get_item(TableName=table, Key={"id": {"S": "a"}})["Item"])
    url = sqs.create_queue(QueueName=unique("keep-alive"))["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    answers.append([m["Body"] for m in sqs.receive_message(QueueUrl=url)["Messages"]])
    return answers


def test_botocore_gets_the_answers_moto_s_handler_gives(emulator):
    assert http_keep_alive.PATCH_NAME in _patching.installed_names()
    kept_alive = _answers(emulator.endpoint_url)
    from moto.server import ThreadedMotoServer

    http_keep_alive.uninstall()
    plain = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    try:
        plain.start()
        host, port = plain.get_host_and_port()
        original = _answers(f"http://{host}:{port}")
    finally:
        plain.stop()
        http_keep_alive.install()
    assert kept_alive == original
    assert kept_alive[:3] == [(6, b"body 0"), (6, b"body 1"), (6, b"body 2")] and kept_alive[3] is True


def _request(connection: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None,
             headers: dict | None = None) -> tuple[int, dict, bytes]:
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def _sock_of(connection: http.client.HTTPConnection) -> socket.socket:
    assert connection.sock is not None
    return connection.sock


def test_requests_share_one_connection(emulator):
    from urllib.parse import urlsplit

    s3 = _client(emulator.endpoint_url, "s3")
    bucket = unique("keep-alive")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="object", Body=b"0123456789")

    def presigned(operation: str) -> str:
        url = urlsplit(s3.generate_presigned_url(operation, Params={"Bucket": bucket, "Key": "object"}))
        return f"{url.path}?{url.query}"

    connection = http.client.HTTPConnection("127.0.0.1", emulator.context.port, timeout=10)
    try:
        status, headers, body = _request(connection, "GET", presigned("get_object"))
        first = _sock_of(connection)
        assert (status, body) == (200, b"0123456789") and headers.get("connection") != "close"
        # A body the application does not read (a GET of moto's configuration) must not be taken for the next
        # request. (Not moto's state page, data.json: it answers 500 once the process holds a Lambda function,
        # whose model asks for a Docker daemon when serialised.)
        status, _, _ = _request(connection, "GET", "/moto-api/config", body=b"GET /not-a-request HTTP/1.1\r\n\r\n")
        assert status == 201
        status, headers, body = _request(connection, "HEAD", presigned("head_object"))
        assert (status, headers["content-length"], body) == (200, "10", b"")
        status, _, body = _request(connection, "GET", presigned("get_object"))
        assert (status, body) == (200, b"0123456789")
        assert _sock_of(connection) is first  # one connection all along
    finally:
        connection.close()


@pytest.mark.parametrize("kind", ["connection close", "http/1.0", "chunked"])
def test_requests_that_cannot_be_kept_alive_close_their_connection(emulator, kind):
    with socket.create_connection(("127.0.0.1", emulator.context.port), timeout=10) as sock:
        version = "HTTP/1.0" if kind == "http/1.0" else "HTTP/1.1"
        head = f"GET /moto-api/config {version}\r\nHost: localhost\r\n"
        if kind == "connection close":
            head += "Connection: close\r\n\r\n"
        elif kind == "chunked":
            head += "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        else:
            head += "\r\n"
        sock.sendall(head.encode())
        received = b""
        while chunk := sock.recv(65536):  # ends only when the server closes the connection
            received += chunk
    assert received.startswith(b"HTTP/1.") and b" 201 " in received.split(b"\r\n", 1)[0]
    assert b"connection: close" in received.lower()


def test_stopping_a_server_closes_its_kept_alive_connections(emulator):
    server = _moto_server("127.0.0.1", free_port())  # the emulator's HTTP server alone, no runtime
    host, port = server.get_host_and_port()
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        status, _, _ = _request(connection, "GET", "/moto-api/config")
        assert status == 201
        sock = _sock_of(connection)
        server.stop()
        assert sock.recv(1) == b""  # the server closed it
    finally:
        connection.close()
