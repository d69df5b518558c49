"""The seam of sdlf_cli.cfn_lint_validators: cfn-lint finds the same problems with its validator classes made once,
a validator built by the new `create` holds what cfn-lint's holds, and the patch comes out again."""
from __future__ import annotations

import contextlib
from pathlib import Path

from cfnlint.jsonschema import validators as cfn_validators
from cfnlint.jsonschema._filter import FunctionFilter

from sdlf_cli.cfn_lint_validators import validator_classes_made_once
from sdlf_cli.lint import cfn_lint_rules, lint_template
from sdlf_cli.render import RenderedTemplate, render_layer
from tests.snapshots import TEMPLATES_DIR
from tests.snapshots.layers import lake

# Errors and warnings from schema keywords, functions, references, conditions and IAM policy documents.
BROKEN = """\
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  pUnused:
    Type: String
  pSize:
    Type: Number
    Default: 3
Conditions:
  cNever: !Equals [!Ref "AWS::Region", "nowhere-1"]
Resources:
  rBucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketNme: typo
      VersioningConfiguration:
        Status: Sometimes
  rQueue:
    Type: AWS::SQS::Queue
    Condition: cMissing
    Properties:
      VisibilityTimeout: !Ref pMissing
      MessageRetentionPeriod: "ten"
      DelaySeconds: !GetAtt rBucket.NoSuchAttribute
  rRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allowed
            Principal: {Service: lambda.amazonaws.com}
            Action: sts:AssumeRole
      Policies:
        - PolicyName: p
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: s3:GetObjekt
                Resource: !Sub "arn:${AWS::Partition}:s3:::${rBucket}/*"
  rTopic:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: !If [cNever, !Ref pSize, [1, 2]]
Outputs:
  oQueue:
    Value: !GetAtt rQueue.Arn
"""


@contextlib.contextmanager
def cfn_lint_s_own_create():
    """cfn-lint as released, for the length of the block (the patch is put back after it)."""
    cfn_lint_rules()  # installs the patch in this process, as every lint does
    create = cfn_validators.create
    original = create._sdlf_original
    cfn_validators.create = original
    try:
        yield
    finally:
        cfn_validators.create = create


def templates() -> list[RenderedTemplate]:
    """A team (with Lake Formation), a pipeline and a dataset of the snapshot lake, and BROKEN."""
    cfg = lake(lake_formation=True)
    (team, pipeline, dataset) = (render_layer(cfg, layer, TEMPLATES_DIR)[0] for layer in ("team", "pipeline", "dataset"))
    broken = RenderedTemplate("foundations", "foundations", "acme-lake-dev-foundations",
                              Path("templates/foundations/foundations.yaml.j2"), BROKEN, "eu-west-1")
    return [team, pipeline, dataset, broken]


def test_the_findings_are_cfn_lint_s_own():
    cases = templates()
    patched = [lint_template(t) for t in cases]
    with cfn_lint_s_own_create():
        own = [lint_template(t) for t in cases]
    assert patched == own
    assert patched[:3] == [[], [], []]
    rules = {f.rule for f in patched[3]}
    assert {"E3002", "E3030", "E1020", "E3012", "W2001"} <= rules, rules
    assert len(patched[3]) >= 8


def test_a_validator_holds_what_cfn_lint_s_holds_and_keeps_it_when_evolved_or_extended():
    cfn_lint_rules()
    validators = {"type": cfn_validators._standard_validators["type"]}
    resolvers = {"Ref": object()}
    function_filter = FunctionFilter(add_cfn_lint_keyword=False)
    made = cfn_validators.create(validators=validators, function_filter=function_filter, fn_resolvers=resolvers)
    own = cfn_validators.create._sdlf_original(validators=validators, function_filter=function_filter,
                                                fn_resolvers=resolvers)
    for cls in (made, own):
        validator = cls(schema={"type": "string"})
        assert (validator.validators, validator.function_filter, validator.fn_resolvers) == \
            (validators, function_filter, resolvers)
        assert validator.is_valid("text") and not validator.is_valid(3)
        evolved = validator.evolve(schema={"type": "integer"})
        assert type(evolved) is cls
        assert (evolved.validators, evolved.function_filter, evolved.fn_resolvers, evolved.cfn, evolved.context) == \
            (validators, function_filter, resolvers, validator.cfn, validator.context)
        assert evolved.is_valid(3) and not evolved.is_valid("text")
        extended = validator.extend(validators={"minLength": cfn_validators._standard_validators["minLength"]})
        longer = extended(schema={"type": "string", "minLength": 3})
        assert set(longer.validators) == {"type", "minLength"} and longer.function_filter is function_filter
        assert longer.is_valid("abc") and not longer.is_valid("ab")
    default = cfn_validators.create()(schema=True)
    assert isinstance(default.function_filter, FunctionFilter) and default.validators == {}
    explicit = FunctionFilter()
    assert made({}, None, explicit).function_filter is explicit  # given by position, as the dataclass allows
    shown = made(schema={"type": "string"})
    assert repr(shown) == repr(own(schema={"type": "string"}, cfn=shown.cfn, context=shown.context,
                                   resolver=shown.resolver))
    assert shown == shown.evolve() and shown != shown.evolve(schema={"type": "integer"})


def test_the_patch_comes_out_and_is_not_installed_twice():
    cfn_lint_rules()
    patched = cfn_validators.create
    original = patched._sdlf_original
    assert validator_classes_made_once() is None  # already in place: steps aside
    cfn_validators.create = original
    try:
        undo = validator_classes_made_once()
        assert undo is not None and cfn_validators.create is not original
        undo()
        assert cfn_validators.create is original
    finally:
        cfn_validators.create = patched


def test_a_create_of_another_shape_is_left_alone():
    cfn_lint_rules()
    patched = cfn_validators.create

    def create(validators=None, function_filter=None, fn_resolvers=None, format_checker=None):
        return patched(validators, function_filter, fn_resolvers)

    cfn_validators.create = create
    try:
        assert validator_classes_made_once() is None
        assert cfn_validators.create is create
    finally:
        cfn_validators.create = patched

