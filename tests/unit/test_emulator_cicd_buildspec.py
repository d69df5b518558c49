"""The emulator's buildspec reader and artifact selection: what CodeBuild accepts, refuses and packages."""
from __future__ import annotations

import io
import zipfile

import pytest

from sdlf_cli.local.runtime import build_cache
from sdlf_cli.local.runtime.build_artifacts import select_files
from sdlf_cli.local.runtime.buildspec import ArtifactSpec, BuildspecError, parse


def test_a_full_buildspec_is_read():
    spec = parse("""version: 0.2
env:
  shell: bash
  variables: {A: 1, B: yes, C: ""}
  parameter-store: {P: /lake/param}
  exported-variables: [A]
phases:
  install:
    runtime-versions: {python: 3.12}
    commands: [pip install .]
  build:
    on-failure: CONTINUE
    commands:
      - echo one
      - |
        echo two
    finally: [echo done]
artifacts:
  files: [plan.json]
  base-directory: out
  discard-paths: yes
  secondary-artifacts:
    Text: {files: [plan.txt]}
""")
    assert spec.variables == {"A": "1", "B": "yes", "C": ""}
    assert spec.parameter_store == {"P": "/lake/param"} and spec.exported_variables == ["A"]
    assert [p.name for p in spec.phases] == ["install", "build"]
    build = spec.phases[1]
    assert build.commands == ["echo one", "echo two\n"] and build.finally_commands == ["echo done"]
    assert build.on_failure == "CONTINUE" and spec.phases[0].runtime_versions == {"python": "3.12"}
    assert spec.artifacts.files == ["plan.json"] and spec.artifacts.discard_paths and spec.artifacts.base_directory == "out"
    assert spec.secondary_artifacts["Text"].files == ["plan.txt"]


@pytest.mark.parametrize("text, expected", [
    ("version: 0.1\nphases: {build: {commands: [x]}}", "version 0.1 is not supported; expected 0.2"),
    ("version: 0.2\n", "has no phases"),
    ("version: 0.2\nphases: {compile: {commands: [x]}}", "unknown phase(s) ['compile']"),
    ("version: 0.2\nphases: {build: {commands: [{a: b}]}}", "Expected phases.build.commands[0] to be of string type"),
    ("version: 0.2\nphases: {build: {on-failure: RETRY-3, commands: [x]}}", "on-failure 'RETRY-3'"),
    ("version: 0.2\nenv: {shell: pwsh}\nphases: {build: {commands: [x]}}", "env.shell 'pwsh' is not supported"),
    ("version: 0.2\nphases:\n  build:\n    commands:\n  - x\n bad", "is not valid YAML at line"),
    ("version: 0.2\nphases: {build: {commands: [x]}}\nartifacts: {files: []}", "artifacts.files is required"),
])
def test_what_codebuild_refuses_says_which_field(text, expected):
    with pytest.raises(BuildspecError) as refused:
        parse(text, "buildspec.yml")
    assert str(refused.value).startswith("YAML_FILE_ERROR")
    assert expected in str(refused.value)


def test_artifact_globs_base_directory_discard_and_exclude(tmp_path):
    for name in ("out/a.json", "out/sub/b.json", "out/sub/c.log", "top.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    names = lambda spec: [arcname for _, arcname in select_files(tmp_path, spec)]  # noqa: E731
    assert names(ArtifactSpec(files=["**/*"], base_directory="out", exclude_paths=["**/*.log"])) == [
        "a.json", "sub/b.json"]
    assert names(ArtifactSpec(files=["out/**/*.json"], discard_paths=True)) == ["a.json", "b.json"]
    assert names(ArtifactSpec(files=["*"])) == ["top.txt"]  # one star stays in the directory
    assert names(ArtifactSpec(files=["out/"])) == ["out/a.json", "out/sub/b.json", "out/sub/c.log"]
    assert names(ArtifactSpec(files=["missing/*"])) == []


def test_cache_paths_are_read_and_a_cache_that_is_not_a_map_is_refused():
    spec = parse("version: 0.2\nphases:\n  build:\n    commands: [make]\ncache:\n  paths:\n    - .sdlf/cache/**/*\n")
    assert spec.cache_paths == [".sdlf/cache/**/*"]
    assert parse("version: 0.2\nphases:\n  build:\n    commands: [make]\n").cache_paths == []
    with pytest.raises(BuildspecError, match="Expected cache to be a map"):
        parse("version: 0.2\nphases:\n  build:\n    commands: [make]\ncache: [a]\n")


def test_a_cache_round_trips_only_matching_files_and_never_writes_outside_the_source(tmp_path):
    src = tmp_path / "src"
    (src / ".sdlf" / "cache" / "lint").mkdir(parents=True)
    (src / ".sdlf" / "cache" / "lint" / "a.clean").write_text("a")
    (src / "other.txt").write_text("not cached")
    body, count = build_cache.pack(src, [".sdlf/cache/**/*"])
    assert count == 1
    restored = tmp_path / "next"
    restored.mkdir()
    assert build_cache.unpack(body, restored) == 1
    assert (restored / ".sdlf" / "cache" / "lint" / "a.clean").read_text() == "a"
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../escaped.txt", "x")
    with pytest.raises(ValueError, match="outside the source directory"):
        build_cache.unpack(evil.getvalue(), restored)
    assert not (tmp_path / "escaped.txt").exists()


def test_a_cache_location_is_a_bucket_and_an_optional_prefix():
    assert build_cache.location({"cache": {"type": "NO_CACHE"}}) is None
    assert build_cache.location({"cache": {"type": "S3", "location": "b/p/q"}}).uri == (
        f"s3://b/p/q/{build_cache.OBJECT_NAME}")
    assert build_cache.location({"cache": {"type": "S3", "location": "b"}}).key == build_cache.OBJECT_NAME
    logged: list = []
    assert build_cache.relative_paths(["/root/.cache/**/*", "x/**/*"], logged.append) == ["x/**/*"]
    assert "not kept" in logged[0]
