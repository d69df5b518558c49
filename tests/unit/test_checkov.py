"""checkov over every template of several lakes: no failed check, every skip with a written reason.

The lakes are those of tests/unit/security_lakes.py (the dev lake; two teams with Lake Formation and
both engines; the same with every option off), all layers. One checkov run scans them all.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from sdlf_cli.checkov_scan import CHECKOV_VERSION, find_checkov, scan_templates
from sdlf_cli.errors import UsageError
from sdlf_cli.render import RenderedTemplate
from tests.snapshots import ROOT
from tests.unit.security_lakes import LAKE_NAMES, all_rendered


@pytest.fixture(scope="module")
def checkov() -> Path:
    return find_checkov(ROOT)


@pytest.fixture(scope="module")
def scan(checkov):
    return scan_templates(all_rendered(), checkov)


def test_every_template_of_every_lake_passes_checkov(scan):
    assert scan.version == CHECKOV_VERSION
    assert scan.findings == [], "\n".join(map(str, scan.findings))
    scanned = {f.split("/")[0] for f in {s.template for s in scan.skips}}
    assert scanned == set(LAKE_NAMES)
    assert scan.passed > 500  # checkov saw the resources (a parse failure would pass nothing)


def test_every_skip_has_a_reason_and_only_known_checks_are_skipped(scan):
    assert scan.skips
    assert all(len(s.reason) > 40 for s in scan.skips), [str(s) for s in scan.skips if len(s.reason) <= 40]
    # Skips are the few reviewed exceptions (templates/_checkov.yaml.j2), nothing else.
    assert {s.check for s in scan.skips} == {"CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_18"}
    logging_skips = Counter(s.resource for s in scan.skips if s.check == "CKV_AWS_18")
    assert set(logging_skips) == {"AWS::S3::Bucket.rLogsBucket", "AWS::S3::Bucket.rArtifactsLogsBucket"}


BAD = """\
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  rQueue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: plain
  rSkipped:
    Type: AWS::SQS::Queue
    Metadata:
      checkov:
        skip:
          - id: CKV_AWS_27
            comment: Holds only public test fixtures, nothing to protect with a key
    Properties:
      QueueName: skipped
  rSkippedSilently:
    Type: AWS::SQS::Queue
    Metadata:
      checkov:
        skip:
          - id: CKV_AWS_27
    Properties:
      QueueName: silent
"""


def test_failures_and_skips_are_reported_with_template_line_check_and_reason(checkov):
    template = RenderedTemplate("foundations", "foundations", "acme-lake-dev-foundations",
                                Path("templates/foundations/foundations.yaml.j2"), BAD)
    result = scan_templates([template], checkov)
    where = {(f.line, f.rule): f for f in result.findings}
    assert set(where) == {(3, "CKV_AWS_27"), (16, "CKV_AWS_27")}
    assert str(where[(3, "CKV_AWS_27")]).startswith(
        "foundations/acme-lake-dev-foundations.yaml:3 CKV_AWS_27 AWS::SQS::Queue.rQueue: ")
    assert "skipped without a reason" in where[(16, "CKV_AWS_27")].message
    (skip,) = result.skips
    assert (skip.line, skip.check, skip.resource) == (7, "CKV_AWS_27", "AWS::SQS::Queue.rSkipped")
    assert skip.reason == "Holds only public test fixtures, nothing to protect with a key"


def test_a_missing_checkov_is_a_usage_error_that_says_how_to_install_it(tmp_path):
    with pytest.raises(UsageError, match="install_checkov.sh"):
        find_checkov(tmp_path, environ={"PATH": str(tmp_path), "SDLF_CHECKOV": str(tmp_path / "nope")})
    # Without SDLF_CHECKOV, the project's own .venv-checkov is found next to the CLI.
    assert find_checkov(tmp_path, environ={"PATH": str(tmp_path)}).name == "checkov"


def test_a_template_checkov_judged_before_takes_its_verdicts_from_the_cache(checkov, tmp_path):
    template = RenderedTemplate("foundations", "foundations", "acme-lake-dev-foundations",
                                Path("templates/foundations/foundations.yaml.j2"), BAD)
    first = scan_templates([template], checkov, cache_dir=tmp_path / "cache")
    not_installed = tmp_path / "no-checkov"  # starting it would raise: the cache must answer alone
    again = scan_templates([template], not_installed, cache_dir=tmp_path / "cache")
    assert again == first and again.findings and again.skips and again.passed == first.passed
    edited = RenderedTemplate(template.layer, template.name, template.stack_name, template.source,
                              BAD.replace("QueueName: plain", "QueueName: plainer"))
    with pytest.raises(FileNotFoundError):
        scan_templates([edited], not_installed, cache_dir=tmp_path / "cache")
