"""IAM fix: deleting a stack's `AWS::IAM::Role` fails in moto while managed policies are attached (AWS
CloudFormation detaches them itself), which left every stack with `ManagedPolicyArns` undeletable."""
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


def install_role_fixes() -> None:
    from moto.iam.models import Role

    wrap(Role, "delete_from_cloudformation_json", "iam.role-delete-detaches-policies", _make_delete)
