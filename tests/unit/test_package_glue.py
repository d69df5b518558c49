"""Glue scripts as artifacts of kind "glue": plain .py uploads with content-hash keys and pGlue<Camel>Key."""
from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from sdlf_cli.package import (
    PackageError, build_artifacts, discover, parameter_name, parameter_values, upload_artifacts,
)

ROOT = Path(__file__).resolve().parents[2]


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _glue(artifacts):
    return {a.name: a for a in artifacts if a.kind == "glue"}


def test_the_repository_scripts_are_discovered_with_the_contract_parameters():
    glue = {s.name: s for s in discover(ROOT) if s.kind == "glue"}
    assert set(glue) == {"heavy_transform", "quality", "transform_legislators"}
    assert parameter_name("glue", "heavy_transform") == "pGlueHeavyTransformKey"
    assert parameter_name("glue", "quality") == "pGlueQualityKey"
    # a dataset's heavy-transform script: the parameter its dataset template declares
    assert glue["transform_legislators"].folder == ROOT / "glue" / "transforms" / "legislators.py"
    assert parameter_name("glue", "transform_legislators") == "pGlueTransformLegislatorsKey"


def test_only_top_level_visible_scripts_are_packaged_as_is(tmp_path):
    root = _tree(tmp_path, {
        "glue/heavy_transform.py": "print('heavy')\n",
        "glue/_shared.py": "x = 1\n",
        "glue/.hidden.py": "x = 1\n",
        "glue/notes.md": "# notes\n",
        "glue/tests/test_heavy.py": "def test(): pass\n",
    })
    artifacts = build_artifacts(root, tmp_path / "build")
    (artifact,) = artifacts
    assert (artifact.name, artifact.kind, artifact.parameter) == ("heavy_transform", "glue", "pGlueHeavyTransformKey")
    assert artifact.key == f"glue/heavy_transform/{artifact.sha256[:20]}.py"
    assert artifact.zip_path == tmp_path / "build" / artifact.key
    assert artifact.zip_path.read_text() == "print('heavy')\n"
    assert artifact.size == len("print('heavy')\n")
    assert parameter_values(artifacts) == {"pGlueHeavyTransformKey": artifact.key}


def test_keys_follow_the_content_and_stale_builds_are_removed(tmp_path):
    root = _tree(tmp_path / "repo", {"glue/quality.py": "a = 1\n"})
    first = _glue(build_artifacts(root, tmp_path / "b1"))["quality"]
    again = _glue(build_artifacts(root, tmp_path / "b2"))["quality"]
    assert (first.key, first.sha256) == (again.key, again.sha256)  # deterministic across build folders
    (root / "glue" / "quality.py").write_text("a = 2\n")
    changed = _glue(build_artifacts(root, tmp_path / "b1"))["quality"]
    assert changed.key != first.key
    assert [p.name for p in changed.zip_path.parent.iterdir()] == [changed.zip_path.name]


def test_scripts_are_built_alongside_functions_and_layers(tmp_path):
    root = _tree(tmp_path, {
        "lambda/catalog/handler.py": "def handler(e, c): return e\n",
        "lambda/layers/datalake/python/sdlf_datalake/__init__.py": "",
        "glue/heavy_transform.py": "x = 1\n",
    })
    kinds = [(a.kind, a.parameter) for a in build_artifacts(root, tmp_path / "build")]
    assert kinds == [("function", "pCodeCatalogKey"), ("layer", "pLayerDatalakeKey"),
                     ("glue", "pGlueHeavyTransformKey")]


def test_two_scripts_with_one_parameter_are_refused(tmp_path):
    root = _tree(tmp_path, {"glue/my-job.py": "x = 1\n", "glue/my_job.py": "x = 2\n"})
    with pytest.raises(PackageError, match=r"both map to the parameter pGlueMyJobKey"):
        discover(root)


def test_upload_puts_the_plain_script_once(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    root = _tree(tmp_path, {"glue/quality.py": "print('q')\n"})
    artifacts = build_artifacts(root, tmp_path / "build")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="artifacts")
        assert [r.action for r in upload_artifacts(artifacts, s3, "artifacts")] == ["uploaded"]
        assert [r.action for r in upload_artifacts(artifacts, s3, "artifacts")] == ["skipped"]
        stored = s3.get_object(Bucket="artifacts", Key=artifacts[0].key)
        assert stored["Body"].read() == b"print('q')\n"
        assert stored["ContentType"] == "text/x-python"
