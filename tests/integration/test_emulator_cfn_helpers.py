"""Deploying raw templates to the in-process emulator the way the deployer does: through change sets."""
from __future__ import annotations

import io
import json
import zipfile

from tests.integration.test_emulator_runtime_helpers import client, unique

ROLE_ARN = "arn:aws:iam::123456789012:role/test-role"


def deploy(emulator, stack: str, template: dict, parameters: dict[str, str] | None = None) -> dict:
    """Create or update `stack` with one change set; returns the described stack."""
    cfn = client(emulator, "cloudformation")
    exists = any(s["StackName"] == stack and s["StackStatus"] != "DELETE_COMPLETE"
                 for s in cfn.list_stacks()["StackSummaries"])
    name = unique("cs")
    cfn.create_change_set(
        StackName=stack, ChangeSetName=name, ChangeSetType="UPDATE" if exists else "CREATE",
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()],
    )
    cfn.execute_change_set(StackName=stack, ChangeSetName=name)
    return cfn.describe_stacks(StackName=stack)["Stacks"][0]


def outputs(stack: dict) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}


def delete(emulator, stack: str) -> None:
    client(emulator, "cloudformation").delete_stack(StackName=stack)


def zip_bytes(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return buffer.getvalue()
