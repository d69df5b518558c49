"""The project's cache (sdlf_cli.cache_dir): under the project unless SDLF_CACHE_DIR moves it, and then every step
that caches - lint verdicts, vendored requirements, compiled templates - keeps its entries there."""
from __future__ import annotations

import shutil
from pathlib import Path

from sdlf_cli.cache_dir import CACHE_DIR_VARIABLE, cache_dir
from sdlf_cli.package import build_artifacts
from sdlf_cli.render import render_layer
from sdlf_cli.workflows.deploy import render_and_lint
from tests.snapshots import FULL, TEMPLATES_DIR


def test_the_cache_is_the_project_s_unless_the_variable_names_one(tmp_path, monkeypatch):
    monkeypatch.delenv(CACHE_DIR_VARIABLE, raising=False)
    assert cache_dir(tmp_path) == tmp_path / ".sdlf" / "cache"
    monkeypatch.setenv(CACHE_DIR_VARIABLE, "  ")
    assert cache_dir(tmp_path) == tmp_path / ".sdlf" / "cache"
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(tmp_path / "shared"))
    assert cache_dir(tmp_path / "project") == tmp_path / "shared"
    monkeypatch.setenv(CACHE_DIR_VARIABLE, "~/sdlf-cache")
    assert cache_dir(tmp_path) == Path.home() / "sdlf-cache"


def test_two_checkouts_share_the_named_cache(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(shared))
    first, second = tmp_path / "first", tmp_path / "second"
    for project in (first, second):
        shutil.copytree(TEMPLATES_DIR, project / "templates")
        (project / "lambda" / "layers" / "base" / "python").mkdir(parents=True)
        (project / "lambda" / "layers" / "base" / "requirements.txt").write_text("jmespath==1.1.0\n")

    render_and_lint(FULL, ["bootstrap"], first)
    verdicts = {p.name: p.stat().st_mtime_ns for p in (shared / "lint").iterdir()}
    assert verdicts and not (first / ".sdlf" / "cache").exists()
    installs: list[Path] = []

    def installer(requirements: Path, target: Path) -> None:
        installs.append(requirements)
        (target / "jmespath").mkdir()
        (target / "jmespath" / "__init__.py").write_text("x = 1\n")

    for project in (first, second):
        (layer,) = build_artifacts(project, project / "build", installer=installer)
        assert layer.kind == "layer"
    assert len(installs) == 1  # the second checkout's layer reused the first's vendored requirements
    assert len(list((shared / "vendor").iterdir())) == 1

    render_and_lint(FULL, ["bootstrap"], second)  # the same template text: not linted again (no verdict rewritten)
    assert {p.name: p.stat().st_mtime_ns for p in (shared / "lint").iterdir()} == verdicts
    render_layer(FULL, "bootstrap", second / "templates")
    assert list((shared / "jinja").iterdir()) and not (second / ".sdlf").exists()
