"""The `cicd` section: defaults, each stage's account from its own file, and file:line errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from sdlf_cli.config.loader import load_config
from sdlf_cli.config.show import show_rows
from sdlf_cli.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

BASE = """\
org: acme
app: lake
region: eu-west-1
cicd:
{cicd}
"""


def _write(tmp_path: Path, cicd: str, prod: str = "env: prod\naccount: \"222222222222\"\n") -> Path:
    (tmp_path / "base.yaml").write_text(BASE.format(cicd=cicd))
    (tmp_path / "dev.yaml").write_text("env: dev\n")
    (tmp_path / "prod.yaml").write_text(prod)
    return tmp_path


def _problems(tmp_path: Path, env: str = "dev") -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_config(env, tmp_path)
    return [str(p) for p in err.value.problems]


def test_the_shipped_parameters_declare_dev_then_prod_with_approval():
    dev = load_config("dev", ROOT / "parameters")
    assert [(s.env, s.approval) for s in dev.cicd.stages] == [("dev", False), ("prod", True)]
    assert dev.cicd.tooling_env == "dev" and dev.cicd.source.provider == "s3"
    prod = load_config("prod", ROOT / "parameters")
    assert prod.log_retention_days == 365 and dev.log_retention_days == 90
    assert prod.termination_protection is True and dev.termination_protection is None
    rows = {path: (value, origin) for path, value, origin in show_rows(prod)}
    assert rows["termination_protection"] == ("true", f"{ROOT / 'parameters' / 'prod.yaml'}:12")
    assert rows["log_retention_days"] == ("365", f"{ROOT / 'parameters' / 'prod.yaml'}:15")
    assert rows["cicd.stages[1].approval"][0] == "true"
    assert rows["cicd.stages[0].approval"] == ("false", "default")


def test_connection_is_the_default_provider_and_accounts_come_from_each_stage_file(tmp_path):
    _write(tmp_path, """\
  source:
    connection_arn: arn:aws:codeconnections:eu-west-1:111111111111:connection/abc-123
    repository: acme/data-lake
  stages: [{env: dev}, {env: prod}]""")
    cfg = load_config("dev", tmp_path)
    assert cfg.cicd.source.provider == "connection" and cfg.cicd.source.branch == "main"
    assert [(s.env, s.approval, s.account) for s in cfg.cicd.stages] == [("dev", False, None),
                                                                          ("prod", True, "222222222222")]
    assert cfg.cicd.test_command == "python -m pytest tests/unit -q" and cfg.cicd.log_retention_days == 30


def test_problems_name_the_file_line_and_field(tmp_path):
    _write(tmp_path, """\
  source:
    provider: connection
    repository: acme/data-lake
    object_key: x.zip
  log_retention_days: 31
  stages:
    - env: dev
    - env: staging
    - env: dev
      approval: maybe""")
    base = tmp_path / "base.yaml"
    problems = _problems(tmp_path)
    assert f"{base}:5: cicd.source.connection_arn: missing required field 'connection_arn' (provider connection needs it)" in problems
    assert f"{base}:8: cicd.source.object_key: not used by provider connection; remove it" in problems
    assert any(p.startswith(f"{base}:9: cicd.log_retention_days: expected one of the retention periods") for p in problems)
    assert not any("staging" in p for p in problems)  # a stage without its file yet: a problem when rendered
    assert f"{base}:13: cicd.stages[2].env: environment 'dev' is listed twice; each is deployed once" in problems


def test_unknown_keys_and_wrong_shapes(tmp_path):
    _write(tmp_path, """\
  source: {provider: github}
  stages: dev
  tests: pytest""")
    base = tmp_path / "base.yaml"
    problems = _problems(tmp_path)
    assert f"{base}:5: cicd.source.provider: expected one of connection, s3, codecommit, got 'github'" in problems
    assert any(p.startswith(f"{base}:6: cicd.stages: expected a non-empty list of stages") for p in problems)
    assert any(p.startswith(f"{base}:7: cicd.tests: unknown key 'tests'") for p in problems)


def test_root_retention_must_be_a_cloudwatch_period(tmp_path):
    _write(tmp_path, "  stages: [{env: dev}]")
    (tmp_path / "dev.yaml").write_text("env: dev\nlog_retention_days: 100\n")
    dev = tmp_path / "dev.yaml"
    problems = _problems(tmp_path)
    assert any(p.startswith(f"{dev}:2: log_retention_days: expected one of the retention periods") for p in problems)


def test_a_stage_without_its_parameters_file_stops_the_pipeline_render_not_the_lake(tmp_path):
    from sdlf_cli.errors import RenderError
    from sdlf_cli.render import render_layer

    _write(tmp_path, """\
  source: {provider: s3}
  stages:
    - env: dev
    - env: staging""")
    cfg = load_config("dev", tmp_path)  # the lake's environments load and deploy without it
    assert [s.env for s in cfg.cicd.stages] == ["dev", "staging"]
    with pytest.raises(RenderError) as raised:
        render_layer(cfg, "cicd", ROOT / "templates")
    assert f"{tmp_path / 'base.yaml'}:8: cicd.stages[1].env: stage environment 'staging' has no usable parameters " \
           f"file" in str(raised.value)
