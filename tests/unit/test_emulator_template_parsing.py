"""The emulator parses stack templates with libyaml: moto's own result for every template of the lake."""
from __future__ import annotations

import json

import yaml
from moto.cloudformation.models import ChangeSet, Stack

from sdlf_cli.local.cfn import _patching
from sdlf_cli.local.cfn.template_parsing import install_template_parsing_fixes
from tests.unit.security_lakes import all_rendered


def test_libyaml_parse_is_motos_parse_and_the_patch_comes_out_again():
    assert yaml.__with_libyaml__  # PyYAML's wheels carry libyaml; without it the patch is not installed
    bodies = [t.body for t in all_rendered()]
    bodies.append(json.dumps({"Resources": {"rTopic": {"Type": "AWS::SNS::Topic"}}}))
    bodies.append("Resources:\n  rQ:\n    Type: AWS::SQS::Queue\n    Properties:\n"
                  "      QueueName: !Sub '${AWS::StackName}-q'\n      Tags: [{Key: a, Value: !GetAtt rX.Arn}]\n")
    before = set(_patching.installed_names())  # an emulator of this process may have installed it already
    stack_patch, change_set_patch = install_template_parsing_fixes()
    try:
        motos_parse = stack_patch.original.__func__  # moto's staticmethod, as the patch saved it
        expected = [motos_parse(body) for body in bodies]
        assert [Stack.parse_template(body) for body in bodies] == expected
        change_set = ChangeSet.__new__(ChangeSet)
        change_set.template = bodies[-1]
        change_set._parse_template()
        assert change_set.template_dict == expected[-1]
        assert change_set.template_dict["Resources"]["rQ"]["Properties"]["Tags"][0]["Value"] == {"Fn::GetAtt": ["rX", "Arn"]}
    finally:
        for patch in (stack_patch, change_set_patch):
            if patch.name not in before:
                _patching.uninstall(patch.name)
    if stack_patch.name not in before:
        assert Stack.parse_template is motos_parse
        assert ChangeSet.__dict__["_parse_template"] is change_set_patch.original
