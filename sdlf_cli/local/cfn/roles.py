"""IAM fixes: deleting a stack's `AWS::IAM::Role` fails in moto while managed policies are attached (AWS
CloudFormation detaches them itself), which left every stack with `ManagedPolicyArns` undeletable; and a
stack's `AWS::IAM::ManagedPolicy` outlived the stack (moto has no delete for it), so deploying the stack
again failed with EntityAlreadyExists."""
from __future__ import annotations

from sdlf_cli.local.cfn._patching import wrap


def _make_delete(original):
    delete = original.__func__

    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        from moto.iam.models import iam_backends
        from moto.utilities.utils import get_partition

        backend = iam_backends[account_id][get_partition(region_name)]
        for role in list(backend.roles.values()):
            if role.name == resource_name:
                for policy_arn in list(role.managed_policies):
                    backend.detach_role_policy(policy_arn, resource_name)
        delete(cls, resource_name, cloudformation_json, account_id, region_name)

    return classmethod(delete_from_cloudformation_json)


def _delete_managed_policy(cls, resource_name, cloudformation_json, account_id, region_name):
    """`resource_name` is the policy's ARN (its physical id): detach it everywhere, then delete it."""
    from moto.iam.models import iam_backends
    from moto.utilities.utils import get_partition

    backend = iam_backends[account_id][get_partition(region_name)]
    policy = backend.managed_policies.get(resource_name)
    if policy is None:
        return
    for holder in [*backend.roles.values(), *backend.users.values(), *backend.groups.values()]:
        if resource_name in holder.managed_policies:
            policy.detach_from(holder)
    del backend.managed_policies[resource_name]


def install_role_fixes() -> None:
    from moto.iam.models import ManagedPolicy, Role

    wrap(Role, "delete_from_cloudformation_json", "iam.role-delete-detaches-policies", _make_delete)
    wrap(ManagedPolicy, "delete_from_cloudformation_json", "iam.managed-policy-deleted-with-its-stack",
         lambda _original: classmethod(_delete_managed_policy))
