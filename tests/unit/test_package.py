"""Deterministic zips, input-hash keys, vendoring cache, and upload-if-absent."""
from __future__ import annotations

import hashlib
import os
import stat
import zipfile
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from sdlf_cli.cache_dir import CACHE_DIR_VARIABLE
from sdlf_cli.errors import ConfigError
from sdlf_cli.package import (
    Artifact,
    PackageError,
    UploadResult,
    build_artifacts,
    camel,
    parameter_name,
    parameter_values,
    read_requirements,
    upload_artifacts,
    vendor,
)


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def fake_installer(calls: list):
    """Stands in for pip: 'installs' one module per pin, and a console script to be dropped."""

    def install(requirements: Path, target: Path) -> None:
        calls.append(requirements.read_text())
        for line in requirements.read_text().split():
            name = line.split("==")[0].replace("-", "_")
            write(target / name / "__init__.py", f"VERSION = {line.split('==')[1]!r}\n")
        write(target / "bin" / "tool", "#!/usr/bin/python\n", 0o755)
        write(target / name / "__pycache__" / "x.cpython-312.pyc", "junk")
        # pip's record of what it wrote, including the script's machine-specific hash: not packaged
        write(target / f"{name}-1.0.dist-info" / "RECORD", "bin/tool,sha256=machine-specific,17\n")
        write(target / f"{name}-1.0.dist-info" / "METADATA", "Name: x\n")

    return install


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.delenv(CACHE_DIR_VARIABLE, raising=False)  # the project's own cache, which the tests look into
    root = tmp_path / "project"
    write(root / "lambda" / "catalog" / "handler.py", "def handler(event, context):\n    return 1\n")
    write(root / "lambda" / "catalog" / "helpers" / "util.py", "X = 1\n")
    write(root / "lambda" / "catalog" / "__pycache__" / "handler.cpython-312.pyc", "cache")
    write(root / "lambda" / "catalog" / ".DS_Store", "mac")
    write(root / "lambda" / "stage-a_router" / "handler.py", "def handler(e, c):\n    pass\n")
    write(root / "lambda" / "not-a-function" / "README.md", "no handler here")
    write(root / "lambda" / "layers" / "datalake" / "python" / "sdlf_datalake" / "__init__.py", "A = 1\n")
    write(root / "lambda" / "layers" / "datalake" / "requirements.txt", "aws-lambda-powertools==3.37.0\njmespath==1.1.0\n")
    return root


def build(root: Path, calls: list | None = None, build_dir: Path | None = None) -> dict[str, Artifact]:
    artifacts = build_artifacts(
        root, build_dir or Path(".sdlf/build/artifacts"), installer=fake_installer([] if calls is None else calls)
    )
    return {a.name: a for a in artifacts}


def test_finds_functions_and_layers_with_contract_names(project):
    artifacts = build(project)
    assert sorted(artifacts) == ["catalog", "datalake", "stage-a_router"]
    catalog, layer, router = artifacts["catalog"], artifacts["datalake"], artifacts["stage-a_router"]
    assert (catalog.kind, catalog.parameter) == ("function", "pCodeCatalogKey")
    assert (layer.kind, layer.parameter) == ("layer", "pLayerDatalakeKey")
    assert router.parameter == "pCodeStageARouterKey"
    assert catalog.key == f"functions/catalog/{catalog.sha256[:20]}.zip"
    assert layer.key == f"layers/datalake/{layer.sha256[:20]}.zip"
    assert catalog.zip_path == project / ".sdlf/build/artifacts" / catalog.key
    assert catalog.size == catalog.zip_path.stat().st_size
    assert parameter_values(artifacts.values()) == {a.parameter: a.key for a in artifacts.values()}


def test_zip_contents_are_clean_and_normalised(project):
    artifacts = build(project)
    with zipfile.ZipFile(artifacts["catalog"].zip_path) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == ["handler.py", "helpers/", "helpers/util.py"]
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    modes = {i.filename: stat.S_IMODE(i.external_attr >> 16) for i in infos}
    assert modes == {"handler.py": 0o644, "helpers/": 0o755, "helpers/util.py": 0o644}

    with zipfile.ZipFile(artifacts["datalake"].zip_path) as archive:
        names = archive.namelist()
    assert names == sorted(names)
    assert "python/sdlf_datalake/__init__.py" in names
    assert "python/aws_lambda_powertools/__init__.py" in names and "python/jmespath/__init__.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith("python/bin")
                or n.endswith(".dist-info/RECORD")]
    assert any(n.endswith(".dist-info/METADATA") for n in names)
    assert "requirements.txt" not in names and all(n.startswith("python/") for n in names)


def test_same_inputs_give_same_bytes_and_key(project, tmp_path):
    first = build(project)
    second = build(project, build_dir=tmp_path / "elsewhere")
    for name in first:
        assert first[name].key == second[name].key
        assert first[name].zip_path.read_bytes() == second[name].zip_path.read_bytes()


def test_timestamps_and_plain_permissions_do_not_change_bytes(project, tmp_path):
    before = build(project, build_dir=tmp_path / "a")
    for path in (project / "lambda").rglob("*"):
        if path.is_file():
            os.utime(path, (1_900_000_000, 1_900_000_000))
            path.chmod(0o600)
    after = build(project, build_dir=tmp_path / "b")
    for name in before:
        assert before[name].key == after[name].key
        assert before[name].zip_path.read_bytes() == after[name].zip_path.read_bytes()


def test_one_changed_byte_changes_only_that_key(project, tmp_path):
    before = build(project, build_dir=tmp_path / "a")
    util = project / "lambda" / "catalog" / "helpers" / "util.py"
    util.write_text("X = 2\n")
    after = build(project, build_dir=tmp_path / "b")
    assert after["catalog"].key != before["catalog"].key
    assert after["catalog"].zip_path.read_bytes() != before["catalog"].zip_path.read_bytes()
    assert after["datalake"].key == before["datalake"].key
    assert after["stage-a_router"].key == before["stage-a_router"].key


def test_renamed_file_changes_the_key(project, tmp_path):
    before = build(project, build_dir=tmp_path / "a")
    (project / "lambda" / "catalog" / "helpers" / "util.py").rename(project / "lambda" / "catalog" / "helpers" / "u.py")
    assert build(project, build_dir=tmp_path / "b")["catalog"].key != before["catalog"].key


def test_executable_bit_is_kept(project):
    write(project / "lambda" / "catalog" / "run.sh", "#!/bin/sh\n", 0o700)
    with zipfile.ZipFile(build(project)["catalog"].zip_path) as archive:
        assert stat.S_IMODE(archive.getinfo("run.sh").external_attr >> 16) == 0o755


def test_requirements_change_the_layer_key(project, tmp_path):
    before = build(project, build_dir=tmp_path / "a")
    write(project / "lambda" / "layers" / "datalake" / "requirements.txt", "aws-lambda-powertools==3.37.0\njmespath==1.0.1\n")
    after = build(project, build_dir=tmp_path / "b")
    assert after["datalake"].key != before["datalake"].key
    assert after["catalog"].key == before["catalog"].key


def test_requirements_order_and_comments_do_not_matter(project, tmp_path):
    before = build(project, build_dir=tmp_path / "a")
    write(
        project / "lambda" / "layers" / "datalake" / "requirements.txt",
        "# pinned\njmespath == 1.1.0   # query language\n\nAWS_Lambda_Powertools==3.37.0\n",
    )
    assert build(project, build_dir=tmp_path / "b")["datalake"].key == before["datalake"].key


def test_vendoring_runs_once_per_requirements(project, tmp_path):
    calls: list = []
    build(project, calls, build_dir=tmp_path / "a")
    build(project, calls, build_dir=tmp_path / "b")
    assert calls == ["aws-lambda-powertools==3.37.0\njmespath==1.1.0\n"]


def test_interrupted_install_leaves_no_cache_entry(tmp_path):
    requirements = write(tmp_path / "requirements.txt", "jmespath==1.1.0\n")
    cache = tmp_path / "cache"

    def broken(requirements: Path, target: Path) -> None:
        write(target / "jmespath" / "__init__.py", "half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        vendor(requirements, cache, broken)
    assert list((cache / "vendor").iterdir()) == []

    calls: list = []
    digest, folder = vendor(requirements, cache, fake_installer(calls))
    assert calls and folder == cache / "vendor" / digest
    assert (folder / "jmespath" / "__init__.py").read_text() == "VERSION = '1.1.0'\n"


def test_loose_requirements_are_rejected_with_file_and_line(tmp_path):
    requirements = write(tmp_path / "requirements.txt", "jmespath==1.1.0\nrequests>=2\n-e git+https://x\n")
    with pytest.raises(ConfigError) as error:
        read_requirements(requirements)
    message = str(error.value)
    assert f"{requirements}:2: requests>=2" in message and f"{requirements}:3:" in message
    assert "exact pin" in message


def test_duplicate_requirement_is_rejected(tmp_path):
    requirements = write(tmp_path / "requirements.txt", "jmespath==1.1.0\nJMESPath==1.0.1\n")
    with pytest.raises(ConfigError, match="jmespath: listed more than once"):
        read_requirements(requirements)


def test_layer_without_python_folder_is_an_error(project):
    write(project / "lambda" / "layers" / "empty" / "README.md", "nothing")
    with pytest.raises(PackageError, match=r"layers/empty: a layer needs a python/ folder"):
        build(project)


def test_vendored_file_clashing_with_source_is_an_error(project):
    write(project / "lambda" / "layers" / "datalake" / "python" / "jmespath" / "__init__.py", "mine")
    with pytest.raises(PackageError, match=r"python/jmespath/__init__.py: also installed from"):
        build(project)


def test_stale_zips_of_an_artifact_are_removed(project):
    old = build(project)["catalog"]
    (project / "lambda" / "catalog" / "handler.py").write_text("def handler(e, c):\n    return 2\n")
    new = build(project)["catalog"]
    assert new.zip_path.exists() and not old.zip_path.exists()


def test_names():
    assert camel("stage-a_router") == "StageARouter"
    assert parameter_name("function", "catalog") == "pCodeCatalogKey"
    assert parameter_name("layer", "datalake") == "pLayerDatalakeKey"


def test_project_lambda_folder_builds(tmp_path):
    """The real lambda/ tree of this repository (vendoring faked: no network in unit tests)."""
    root = Path(__file__).resolve().parents[2]
    artifacts = {a.name: a for a in build_artifacts(root, tmp_path / "build", cache_dir=tmp_path / "cache",
                                                    installer=fake_installer([]))}
    assert artifacts["catalog"].parameter == "pCodeCatalogKey"
    assert artifacts["datalake"].parameter == "pLayerDatalakeKey"
    with zipfile.ZipFile(artifacts["datalake"].zip_path) as archive:
        assert "python/sdlf_datalake/catalog.py" in archive.namelist()


# --- upload ------------------------------------------------------------------------------------
def artifact(tmp_path: Path, name: str = "catalog") -> Artifact:
    zip_path = tmp_path / f"{name}.zip"
    zip_path.write_bytes(b"PK-fake-zip-" + name.encode())
    sha = hashlib.sha256(name.encode()).hexdigest()
    return Artifact(name, "function", tmp_path, zip_path, sha, f"functions/{name}/{sha[:20]}.zip",
                    parameter_name("function", name), zip_path.stat().st_size)


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="artifacts")
        yield client


def test_upload_then_skip(s3, tmp_path):
    items = [artifact(tmp_path, "catalog"), artifact(tmp_path, "router")]
    first = upload_artifacts(items, s3, "artifacts")
    assert [r.action for r in first] == ["uploaded", "uploaded"]
    stored = s3.get_object(Bucket="artifacts", Key=items[0].key)
    assert stored["Body"].read() == items[0].zip_path.read_bytes()
    assert stored["Metadata"] == {"sdlf-input-sha256": items[0].sha256}
    second = upload_artifacts(items, s3, "artifacts")
    assert second == [UploadResult(items[0], "skipped"), UploadResult(items[1], "skipped")]


def test_dry_run_uploads_nothing(s3, tmp_path):
    present, missing = artifact(tmp_path, "present"), artifact(tmp_path, "missing")
    upload_artifacts([present], s3, "artifacts")
    results = upload_artifacts([present, missing], s3, "artifacts", dry_run=True)
    assert [r.action for r in results] == ["skipped", "would-upload"]
    assert s3.list_objects_v2(Bucket="artifacts")["KeyCount"] == 1


def test_existing_key_is_never_put_again(tmp_path):
    """With a Stubber: only head_object is called when the key is present."""
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    item = artifact(tmp_path)
    with Stubber(client) as stubber:
        stubber.add_response("head_object", {"ContentLength": item.size}, {"Bucket": "b", "Key": item.key})
        assert upload_artifacts([item], client, "b")[0].action == "skipped"
        stubber.assert_no_pending_responses()


def test_access_denied_is_a_clear_error(tmp_path):
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    item = artifact(tmp_path)
    with Stubber(client) as stubber:
        stubber.add_client_error("head_object", "403", "Forbidden", http_status_code=403)
        with pytest.raises(PackageError, match=rf"checking s3://b/{item.key}: 403"):
            upload_artifacts([item], client, "b")
