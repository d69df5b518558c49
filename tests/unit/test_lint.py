"""cfn-lint over rendered templates: ours are clean, broken ones are reported with template:line."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from sdlf_cli.lint import Finding, has_errors, lint_templates
from sdlf_cli.render import RenderedTemplate, render_layer
from tests.snapshots import FULL, TEMPLATES_DIR


def test_bootstrap_is_clean():
    assert lint_templates(render_layer(FULL, "bootstrap", TEMPLATES_DIR)) == []


@pytest.mark.parametrize("lake_formation", [True, False], ids=["lake-formation", "no-lake-formation"])
@pytest.mark.parametrize("email", ["data-team@example.com", None], ids=["email", "no-email"])
def test_foundations_is_clean(lake_formation, email):
    cfg = replace(FULL, lake_formation=lake_formation, notification_email=email)
    findings = lint_templates(render_layer(cfg, "foundations", TEMPLATES_DIR))
    assert findings == [], "\n".join(map(str, findings))


BROKEN = """\
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  rBucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketNme: typo
  rQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: !Ref pMissing
"""


def broken(body: str) -> RenderedTemplate:
    return RenderedTemplate("foundations", "foundations", "acme-lake-dev-foundations",
                            Path("templates/foundations/foundations.yaml.j2"), body, "eu-west-1")


def test_broken_template_findings_name_template_line_and_rule():
    findings = lint_templates([broken(BROKEN)])
    typo = next(f for f in findings if f.rule == "E3002")
    assert (typo.template, typo.line, typo.level) == ("foundations/acme-lake-dev-foundations.yaml", 6, "error")
    assert "BucketNme" in typo.message
    assert str(typo) == f"foundations/acme-lake-dev-foundations.yaml:6 E3002 {typo.message}"
    missing_ref = next(f for f in findings if f.rule == "E1020")
    assert missing_ref.line == 10 and "pMissing" in missing_ref.message
    assert [f.line for f in findings] == sorted(f.line for f in findings)
    assert has_errors(findings)


def test_warnings_are_findings_but_not_errors():
    body = (
        "Parameters:\n"
        "  pUnused:\n"
        "    Type: String\n"
        "Resources:\n"
        "  rQueue:\n"
        "    Type: AWS::SQS::Queue\n"
    )
    findings = lint_templates([broken(body)])
    assert [(f.rule, f.level, f.line) for f in findings] == [("W2001", "warning", 2)]
    assert not has_errors(findings)


def test_unparseable_template_is_one_error_at_its_line():
    (finding,) = lint_templates([broken("Resources:\n  rQueue: [\n")])
    assert finding == Finding("foundations/acme-lake-dev-foundations.yaml", finding.line, "E0000", "error",
                              finding.message)
    assert finding.line in (2, 3)


def test_clean_templates_add_nothing_to_a_broken_ones_findings():
    clean = render_layer(FULL, "bootstrap", TEMPLATES_DIR)
    findings = lint_templates(clean + [broken(BROKEN)])
    assert {f.template for f in findings} == {"foundations/acme-lake-dev-foundations.yaml"}


def test_clean_templates_are_not_linted_twice_with_a_cache(tmp_path):
    import sdlf_cli.lint as lint_module
    from sdlf_cli.render import RenderedTemplate

    body = "AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  Topic:\n    Type: AWS::SNS::Topic\n"
    clean = RenderedTemplate("foundations", "foundations", "s", Path("x.yaml.j2"), body)
    broken = RenderedTemplate("team", "t", "t", Path("y.yaml.j2"), body.replace("AWS::SNS::Topic", "AWS::SNS::Topik"))
    calls = []
    real = lint_module.lint_template

    def lint(templates, **kwargs):
        check = lambda t: calls.append(t.stack_name) or real(t)  # noqa: E731 - in this process only
        return lint_module.lint_templates(templates, cache_dir=tmp_path, processes=1, check=check, **kwargs)

    first = lint([clean, broken])
    second = lint([clean, broken])
    assert calls == ["s", "t", "t"]  # the clean one once; the broken one every time
    assert first == second and first and all(f.template == broken.output_name for f in first)
    changed = RenderedTemplate("foundations", "foundations", "s", Path("x.yaml.j2"), body + "# changed\n")
    lint([changed])
    assert calls[-1] == "s"


def test_worker_processes_find_what_one_process_finds_in_the_same_order():
    clean = render_layer(FULL, "bootstrap", TEMPLATES_DIR)
    templates = [broken(BROKEN), *clean, broken(BROKEN.replace("BucketNme", "BucketNom"))]
    assert lint_templates(templates, processes=2) == lint_templates(templates, processes=1)
    assert [f.rule for f in lint_templates(templates, processes=2)].count("E3002") == 2


def test_only_templates_changed_since_a_clean_lint_are_linted_again(tmp_path):
    clean = render_layer(FULL, "bootstrap", TEMPLATES_DIR)
    assert lint_templates(clean, cache_dir=tmp_path, processes=2) == []
    markers = sorted(tmp_path.glob("*.clean"))
    assert len(markers) == len(clean)
    changed = [replace(clean[0], body=clean[0].body + "\n# edited\n"), *clean[1:]]
    assert lint_templates(changed, cache_dir=tmp_path, processes=2) == []
    assert len(list(tmp_path.glob("*.clean"))) == len(clean) + 1  # only the edited text was linted anew


def test_a_few_templates_are_linted_in_this_process_and_cfn_lint_rules_are_loaded_once():
    import os

    import sdlf_cli.lint as lint_module

    clean = render_layer(FULL, "bootstrap", TEMPLATES_DIR)
    pids = []

    def check(template):
        pids.append(os.getpid())
        return lint_module.lint_template(template)

    few = (clean * lint_module.MIN_TEMPLATES_FOR_WORKERS)[: lint_module.MIN_TEMPLATES_FOR_WORKERS - 1]
    assert lint_templates(few, check=check) == []
    assert pids == [os.getpid()] * len(few)  # no worker start-up for so few
    assert lint_module.cfn_lint_rules() is lint_module.cfn_lint_rules()
