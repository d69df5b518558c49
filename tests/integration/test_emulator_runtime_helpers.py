"""Shared helpers for the emulator runtime tests (no tests here): clients, roles, function zips, polling."""
from __future__ import annotations

import functools
import io
import json
import time
import uuid
import zipfile

import boto3

REGION = "us-east-1"


def client(emulator, service: str):
    """One client per emulator endpoint and service (boto3 clients are thread-safe): the tests ask for clients
    in their polling loops, and making one costs more than most calls they make with it."""
    return _client(emulator.endpoint_url, service)


@functools.lru_cache(maxsize=None)
def _client(endpoint_url: str, service: str):
    return boto3.client(service, endpoint_url=endpoint_url, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def zip_bytes(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


def role_arn(emulator) -> str:
    """A role allowed everything: for tests about something else than IAM (the emulator may enforce it)."""
    iam = client(emulator, "iam")
    name = unique("runtime-role")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "lambda.amazonaws.com"}}]}
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_role_policy(RoleName=name, PolicyName="everything", PolicyDocument=json.dumps(everything))
    return arn


def create_function(emulator, source: str, *, name: str | None = None, timeout: int = 10,
                    env: dict[str, str] | None = None, layers: list[str] | None = None,
                    extra_files: dict[str, str] | None = None) -> dict:
    lam = client(emulator, "lambda")
    kwargs = {}
    if env:
        kwargs["Environment"] = {"Variables": env}
    if layers:
        kwargs["Layers"] = layers
    return lam.create_function(
        FunctionName=name or unique("fn"), Runtime="python3.12", Role=role_arn(emulator),
        Handler="handler.handler", Timeout=timeout, MemorySize=256,
        Code={"ZipFile": zip_bytes({"handler.py": source, **(extra_files or {})})}, **kwargs,
    )


def invoke(emulator, name: str, event: object = None, **kwargs) -> tuple[dict, object]:
    response = client(emulator, "lambda").invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(),
                                                 **kwargs)
    return response, json.loads(response["Payload"].read() or b"null")


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def bucket(emulator) -> str:
    name = unique("runtime-bucket")
    client(emulator, "s3").create_bucket(Bucket=name)
    return name


def s3_keys(emulator, bucket_name: str, prefix: str = "") -> list[str]:
    response = client(emulator, "s3").list_objects_v2(Bucket=bucket_name, Prefix=prefix)
    return sorted(o["Key"] for o in response.get("Contents", []))


def s3_json(emulator, bucket_name: str, key: str):
    return json.loads(client(emulator, "s3").get_object(Bucket=bucket_name, Key=key)["Body"].read())
