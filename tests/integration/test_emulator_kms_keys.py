"""Seam: a KMS key's private key is generated on first use (sdlf_cli/local/runtime/kms_keys.py).

- keys made through the API and through CloudFormation make no private key, and symmetric keys answer
  Encrypt, Decrypt, GenerateDataKey and DescribeKey as moto's own keys do (checked with the patch out);
- RSA and ECC keys sign, verify and give the public key that checks their signatures, with one key made by
  moto's generator, once, even when several requests use the key first at the same time; a replica signs
  with its primary's key;
- a key survives the snapshot's pickling (and a deep copy) with the same key, and a key never used comes back
  without one and works;
- the patch comes out again (moto's generator back, by identity), and installing it twice changes nothing.
"""
from __future__ import annotations

import copy
import io
import json
import pickle
import threading
import time

import boto3
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from moto.kms import models as kms_models
from moto.kms import utils as kms_utils

from sdlf_cli.local.cfn import _patching
from sdlf_cli.local.persistence import snapshot
from sdlf_cli.local.runtime import install, kms_keys
from tests.integration.test_emulator_runtime_helpers import REGION, client, unique

MESSAGE = b"the lake's manifest"
SIGNERS = {"RSA_2048": "RSASSA_PKCS1_V1_5_SHA_256", "ECC_NIST_P256": "ECDSA_SHA_256"}


@pytest.fixture(scope="module", autouse=True)
def runtime(emulator):
    install(emulator.context)


@pytest.fixture
def generations(monkeypatch):
    """The spec of every key moto's generator makes during the test."""
    made: list[str] = []
    original = kms_utils.generate_private_key

    def counting(key_spec: str):
        made.append(key_spec)
        return original(key_spec)

    monkeypatch.setattr(kms_utils, "generate_private_key", counting)
    return made


def _backend(emulator, region: str = REGION):
    return kms_models.kms_backends[emulator.context.account_id][region]


def _private_key(emulator, key_id: str, region: str = REGION):
    return _backend(emulator, region).keys[key_id].private_key


def _verifies(public_der: bytes, signature: bytes, spec: str) -> bool:
    public = serialization.load_der_public_key(public_der)
    if spec.startswith("RSA"):
        public.verify(signature, MESSAGE, padding.PKCS1v15(), hashes.SHA256())
    else:
        public.verify(signature, MESSAGE, ec.ECDSA(hashes.SHA256()))
    return True  # verify() raises InvalidSignature otherwise


def _symmetric_answers(kms, key_id: str) -> dict:
    """What the lake asks of a symmetric key, without what differs from key to key."""
    metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    arn = metadata.pop("Arn")
    for varying in ("KeyId", "CreationDate"):
        metadata.pop(varying)
    sealed = kms.encrypt(KeyId=key_id, Plaintext=b"secret")
    opened = kms.decrypt(CiphertextBlob=sealed["CiphertextBlob"])
    data_key = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256", EncryptionContext={"team": "t"})
    opened_data_key = kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"], EncryptionContext={"team": "t"})
    return {"metadata": metadata,
            "encrypt": (sealed["KeyId"] == arn, sealed.get("EncryptionAlgorithm")),
            "decrypt": (opened["Plaintext"], opened["KeyId"] == arn, opened.get("EncryptionAlgorithm")),
            "data key": (len(data_key["Plaintext"]), data_key["KeyId"] == arn,
                         opened_data_key["Plaintext"] == data_key["Plaintext"])}


CREATIONS = [dict(Description="lake key"), dict(Description="lake key", Tags=[{"TagKey": "team", "TagValue": "t"}]),
             dict(Description="lake key", KeySpec="SYMMETRIC_DEFAULT", KeyUsage="ENCRYPT_DECRYPT")]


def test_symmetric_keys_make_no_private_key_and_answer_as_moto_does(emulator, generations):
    kms = client(emulator, "kms")
    made = [kms.create_key(**creation)["KeyMetadata"]["KeyId"] for creation in CREATIONS]
    answers = [_symmetric_answers(kms, key_id) for key_id in made]
    assert generations == []
    assert all(isinstance(_private_key(emulator, key_id), kms_keys.LazyPrivateKey) for key_id in made)
    assert not any(_private_key(emulator, key_id).generated for key_id in made)

    kms_keys.uninstall()
    try:
        assert kms_keys.KEY_PATCH not in _patching.installed_names()
        moto_made = [kms.create_key(**creation)["KeyMetadata"]["KeyId"] for creation in CREATIONS]
        moto_answers = [_symmetric_answers(kms, key_id) for key_id in moto_made]
    finally:
        kms_keys.install()
    assert not any(isinstance(_private_key(emulator, key_id), kms_keys.LazyPrivateKey) for key_id in moto_made)
    assert answers == moto_answers
    assert generations == []


def test_keys_made_by_cloudformation_make_no_private_key(emulator, generations):
    cfn = client(emulator, "cloudformation")
    root = f"arn:aws:iam::{emulator.context.account_id}:root"
    policy = {"Version": "2012-10-17",
              "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*", "Principal": {"AWS": root}}]}
    template = {"Resources": {name: {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": policy}}
                              for name in ("DataKey", "QueueKey")}}
    stack = unique("kms-keys")
    cfn.create_stack(StackName=stack, TemplateBody=json.dumps(template))
    resources = cfn.describe_stack_resources(StackName=stack)["StackResources"]
    key_ids = [r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::KMS::Key"]
    assert len(key_ids) == 2
    assert not any(_private_key(emulator, key_id).generated for key_id in key_ids)
    kms = client(emulator, "kms")
    for key_id in key_ids:
        assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
        sealed = kms.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=sealed)["Plaintext"] == b"x"
    assert generations == []


@pytest.mark.parametrize("spec", sorted(SIGNERS))
def test_an_asymmetric_key_is_made_once_by_its_first_uses_at_the_same_time(emulator, generations, monkeypatch,
                                                                           spec):
    counting = kms_utils.generate_private_key

    def slow(key_spec: str):
        time.sleep(0.2)  # every first use arrives while the key is being made
        return counting(key_spec)

    monkeypatch.setattr(kms_utils, "generate_private_key", slow)
    kms = client(emulator, "kms")
    key_id = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec=spec)["KeyMetadata"]["KeyId"]
    described = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert described["KeySpec"] == spec and SIGNERS[spec] in described["SigningAlgorithms"]
    assert generations == [] and not _private_key(emulator, key_id).generated

    clients = [client(emulator, "kms") for _ in range(6)]
    barrier = threading.Barrier(len(clients))
    public_keys: list[bytes] = []
    signatures: list[bytes] = []
    errors: list[BaseException] = []

    def first_use(n: int) -> None:
        barrier.wait()
        try:
            if n % 2:
                signatures.append(clients[n].sign(KeyId=key_id, Message=MESSAGE, MessageType="RAW",
                                                  SigningAlgorithm=SIGNERS[spec])["Signature"])
            else:
                public_keys.append(clients[n].get_public_key(KeyId=key_id)["PublicKey"])
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=first_use, args=(n,)) for n in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert generations == [spec]
    assert len(set(public_keys)) == 1 and len(signatures) == 3
    [public] = set(public_keys)
    assert all(_verifies(public, signature, spec) for signature in signatures)
    for signature in signatures:
        assert kms.verify(KeyId=key_id, Message=MESSAGE, MessageType="RAW", Signature=signature,
                          SigningAlgorithm=SIGNERS[spec])["SignatureValid"] is True
    assert kms.get_public_key(KeyId=key_id)["PublicKey"] == public
    assert generations == [spec]  # made once, kept
    assert _private_key(emulator, key_id).key_spec == spec


def test_a_replica_signs_with_its_primary_key(emulator, generations):
    kms = client(emulator, "kms")
    key_id = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="RSA_2048", MultiRegion=True)["KeyMetadata"]["KeyId"]
    kms.replicate_key(KeyId=key_id, ReplicaRegion="eu-west-1")
    assert generations == []
    replica_kms = boto3.client("kms", endpoint_url=emulator.endpoint_url, region_name="eu-west-1",
                               aws_access_key_id="testing", aws_secret_access_key="testing")
    signature = replica_kms.sign(KeyId=key_id, Message=MESSAGE, MessageType="RAW",
                                 SigningAlgorithm=SIGNERS["RSA_2048"])["Signature"]
    assert _verifies(kms.get_public_key(KeyId=key_id)["PublicKey"], signature, "RSA_2048")
    assert generations == ["RSA_2048"]


def _saved_and_loaded(backend, tmp_path):
    """The backend through the snapshot's own fast pickler (its reducers turn cryptography's keys into PEM),
    loaded back as a restart loads it."""
    reducers = snapshot._Reducers(snapshot._BlobWriter(tmp_path))
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = reducers.table
    pickler.dump({"kms": backend})
    return pickle.loads(buffer.getvalue())["kms"]


def test_a_saved_key_keeps_its_key_and_a_key_never_used_comes_back_without_one(emulator, generations, tmp_path):
    backend = kms_models.KmsBackend(REGION, emulator.context.account_id)
    used = backend.create_key(None, "SIGN_VERIFY", "RSA_2048", "used", None).id
    never_used = backend.create_key(None, "SIGN_VERIFY", "RSA_2048", "never used", None).id
    symmetric = backend.create_key(None, "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", "symmetric", None).id
    sealed = backend.encrypt(symmetric, b"secret", {})[0]
    _, public = backend.get_public_key(used)
    _, signature, _ = backend.sign(used, MESSAGE, SIGNERS["RSA_2048"])
    assert generations == ["RSA_2048"]

    restored = _saved_and_loaded(backend, tmp_path)
    deep_copy = copy.deepcopy(backend)
    for loaded in (restored, deep_copy):
        assert loaded.get_public_key(used)[1] == public
        assert loaded.verify(used, MESSAGE, signature, SIGNERS["RSA_2048"])[1] is True
        assert not loaded.keys[never_used].private_key.generated
        assert not loaded.keys[symmetric].private_key.generated
        assert loaded.decrypt(sealed, {})[0] == b"secret"
    assert generations == ["RSA_2048"]

    _, restored_signature, _ = restored.sign(never_used, MESSAGE, SIGNERS["RSA_2048"])
    assert restored.verify(never_used, MESSAGE, restored_signature, SIGNERS["RSA_2048"])[1] is True
    assert _verifies(restored.get_public_key(never_used)[1], restored_signature, "RSA_2048")
    assert generations == ["RSA_2048", "RSA_2048"]
    # A deep copy made before the first use ends with its original's key.
    assert deep_copy.get_public_key(never_used)[1] == backend.get_public_key(never_used)[1]
    assert generations == ["RSA_2048", "RSA_2048", "RSA_2048"]
    # Saved again after that use, the key made after the restart is the one kept.
    again = _saved_and_loaded(restored, tmp_path)
    assert again.get_public_key(never_used)[1] == restored.get_public_key(never_used)[1]
    assert again.verify(never_used, MESSAGE, restored_signature, SIGNERS["RSA_2048"])[1] is True
    assert generations == ["RSA_2048", "RSA_2048", "RSA_2048"]


def test_the_patch_comes_out_and_goes_in_once():
    patched = kms_models.generate_private_key
    assert patched is not kms_utils.generate_private_key
    assert kms_keys.KEY_PATCH in _patching.installed_names()
    kms_keys.install()
    assert kms_models.generate_private_key is patched
    kms_keys.uninstall()
    try:
        assert kms_models.generate_private_key is kms_utils.generate_private_key
        assert kms_keys.KEY_PATCH not in _patching.installed_names()
        kms_keys.uninstall()
        assert kms_models.generate_private_key is kms_utils.generate_private_key
    finally:
        kms_keys.install()
    assert isinstance(kms_models.generate_private_key("SYMMETRIC_DEFAULT"), kms_keys.LazyPrivateKey)
