"""Termination protection on the emulator, as on AWS: UpdateTerminationProtection sets it, DescribeStacks shows it,
DeleteStack refuses a protected stack; and the deployer turns it on for a spec that asks for it (prod)."""
from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from sdlf_cli.aws.cloudformation import CloudFormationGateway
from sdlf_cli.deploy import NullReporter, StackDeployer, StackSpec
from tests.integration.test_emulator_cfn_helpers import client, deploy, unique

QUEUE = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}


def test_a_protected_stack_refuses_deletion_until_protection_is_off(emulator):
    name = unique("protected")
    deploy(emulator, name, QUEUE)
    cfn = client(emulator, "cloudformation")
    stack_id = cfn.update_termination_protection(StackName=name, EnableTerminationProtection=True)["StackId"]
    assert cfn.describe_stacks(StackName=name)["Stacks"][0]["EnableTerminationProtection"] is True
    with pytest.raises(ClientError) as refused:
        cfn.delete_stack(StackName=name)
    assert refused.value.response["Error"]["Code"] == "ValidationError"
    assert refused.value.response["Error"]["Message"] == (
        f"Stack [{name}] cannot be deleted while TerminationProtection is enabled")
    assert cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"

    cfn.update_termination_protection(StackName=name, EnableTerminationProtection=False)
    cfn.delete_stack(StackName=name)
    assert cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"] == "DELETE_COMPLETE"


def test_the_deployer_protects_a_stack_whose_spec_asks_and_leaves_others_alone(emulator):
    gateway = CloudFormationGateway(client(emulator, "cloudformation"))
    deployer = StackDeployer(gateway, NullReporter(), sleep=lambda s: None)
    protected, plain = unique("prod"), unique("dev")
    body = json.dumps(QUEUE)
    assert deployer.deploy(StackSpec(protected, "team", body, {}, {}, termination_protection=True)).status == "created"
    assert deployer.deploy(StackSpec(plain, "team", body, {}, {})).status == "created"
    assert gateway.describe_stack(protected).termination_protection is True
    assert gateway.describe_stack(plain).termination_protection is False
    # unchanged, still protected; then turned off by a spec that says so
    assert deployer.deploy(StackSpec(protected, "team", body, {}, {}, termination_protection=True)).status == "unchanged"
    assert deployer.deploy(StackSpec(protected, "team", body, {}, {}, termination_protection=False)).ok
    assert gateway.describe_stack(protected).termination_protection is False
