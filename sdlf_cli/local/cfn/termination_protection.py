"""Stack termination protection, as on AWS.

moto stores `EnableTerminationProtection` from CreateStack and reports it in DescribeStacks, but has no
UpdateTerminationProtection action and deletes a protected stack anyway. Two named patches: the action (which
sets the flag and answers the stack id), and DeleteStack refusing a protected stack with CloudFormation's
ValidationError.
"""
from __future__ import annotations

from sdlf_cli.local.cfn._patching import Patch, install, wrap

REFUSAL = "Stack [{name}] cannot be deleted while TerminationProtection is enabled"


def _update_termination_protection(self):
    from moto.cloudformation.exceptions import ValidationError
    from moto.core.responses import ActionResult

    name = self._get_param("StackName")
    enabled = str(self._get_param("EnableTerminationProtection")).lower() == "true"
    stacks = self.cloudformation_backend.describe_stacks(name)
    if not stacks:
        raise ValidationError(name, message=f"Stack with id {name} does not exist")
    stacks[0].enable_termination_protection = enabled
    return ActionResult({"StackId": stacks[0].stack_id})


def _make_delete_stack(original):
    def delete_stack(self, name_or_stack_id: str) -> None:
        from moto.cloudformation.exceptions import ValidationError

        stack = self.stacks.get(name_or_stack_id) or next(
            (s for s in self.stacks.values() if s.name == name_or_stack_id), None)
        if stack is not None and getattr(stack, "enable_termination_protection", False):
            raise ValidationError(stack.name, message=REFUSAL.format(name=stack.name))
        return original(self, name_or_stack_id)

    return delete_stack


def install_termination_protection_fixes() -> None:
    from moto.cloudformation import models, responses

    install(Patch("cfn.update-termination-protection", responses.CloudFormationResponse,
                  "update_termination_protection", _update_termination_protection))
    wrap(models.CloudFormationBackend, "delete_stack", "cfn.protected-stacks-refuse-deletion", _make_delete_stack)
