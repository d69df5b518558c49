"""Seam: ListObjectVersions answers from views of the versions' metadata (sdlf_cli/local/runtime/
s3_version_listing.py) - the same answer as moto's deep copies of every object's bytes, the stored objects
untouched, and every other copy of an object still a copy of its bytes."""
from __future__ import annotations

import copy
import gc

import pytest

from sdlf_cli.local.cfn import _patching
from sdlf_cli.local.runtime import install, s3_version_listing
from tests.integration.test_emulator_runtime_helpers import client, unique

BIG = b"x" * (6 * 1024 * 1024)


@pytest.fixture(scope="module", autouse=True)
def runtime(emulator):
    install(emulator.context)


def _listing(s3, bucket: str) -> dict:
    pages = [s3.list_object_versions(Bucket=bucket, MaxKeys=3, **marker) for marker in ({},)]
    while pages[-1].get("IsTruncated"):
        last = pages[-1]
        pages.append(s3.list_object_versions(Bucket=bucket, MaxKeys=3, KeyMarker=last["NextKeyMarker"],
                                             VersionIdMarker=last["NextVersionIdMarker"]))
    for page in pages:
        page.pop("ResponseMetadata")
    return {"pages": pages}


def test_a_listing_answers_as_moto_does_and_leaves_the_objects_as_they_were(emulator):
    s3 = client(emulator, "s3")
    bucket = unique("versions")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for key, body in (("a.json", b"1"), ("a.json", b"22"), ("big.bin", BIG), ("c/d.csv", b"x,y"), ("c/e.csv", b"")):
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    s3.delete_object(Bucket=bucket, Key="c/e.csv")  # a delete marker on top
    assert s3_version_listing.LISTING_PATCH in _patching.installed_names()
    viewed = _listing(s3, bucket)
    s3_version_listing.uninstall()
    try:
        assert s3_version_listing.LISTING_PATCH not in _patching.installed_names()
        copied = _listing(s3, bucket)
    finally:
        s3_version_listing.install()
    assert viewed == copied
    gc.collect()  # the views are gone: the stored objects' content must not have gone with them
    versions = [v for page in viewed["pages"] for v in page.get("Versions", [])]
    assert [(v["Key"], v["IsLatest"], v["Size"]) for v in versions] == [
        ("a.json", True, 2), ("a.json", False, 1), ("big.bin", True, len(BIG)), ("c/d.csv", True, 3),
        ("c/e.csv", False, 0)]
    # The stored objects keep their content, and the listing marked only its views.
    assert s3.get_object(Bucket=bucket, Key="big.bin")["Body"].read() == BIG
    older = next(v for v in versions if v["Key"] == "a.json" and not v["IsLatest"])
    assert s3.get_object(Bucket=bucket, Key="a.json", VersionId=older["VersionId"])["Body"].read() == b"1"
    assert _listing(s3, bucket) == viewed


def test_outside_a_listing_a_copy_of_an_object_copies_its_bytes(emulator):
    from moto.s3.models import FakeKey

    key = FakeKey("k", b"content", account_id="123456789012", region_name="us-east-1")
    twin = copy.deepcopy(key)
    assert twin.value == b"content" and twin._value_buffer is not key._value_buffer
    twin.value = b"changed"
    assert key.value == b"content"
