"""An executed UPDATE change set leaves the stack with the change set's tags, as on AWS.

moto's `execute_change_set` applies the resources and the template but keeps the stack's old tags. A
deployer that records what it deployed in a stack tag (sdlf's fingerprint) then sees every updated stack
as out of date forever. One named patch copies them over once the change set has executed.
"""
from __future__ import annotations

from sdlf_cli.local.cfn._patching import wrap


def _find(backend, change_set_name: str):
    if change_set_name in backend.change_sets:
        return backend.change_sets[change_set_name]
    return next((cs for cs in backend.change_sets.values() if cs.change_set_name == change_set_name), None)


def _make_execute_change_set(original):
    def execute_change_set(self, change_set_name, stack_name=None):
        result = original(self, change_set_name, stack_name)
        change_set = _find(self, change_set_name)
        if change_set is not None and change_set.execution_status == "EXECUTE_COMPLETE" and change_set.tags:
            stack = self.stacks.get(change_set.stack_id)
            if stack is not None:
                stack.tags = dict(change_set.tags)
        return result

    return execute_change_set


def install_change_set_tag_fixes() -> None:
    from moto.cloudformation import models

    wrap(models.CloudFormationBackend, "execute_change_set", "cfn.change-set-applies-its-tags", _make_execute_change_set)
