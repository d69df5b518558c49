"""Results rendering: summary, outputs and changes tables; the one JSON envelope; exit codes."""
from __future__ import annotations

import io
import json

from rich.console import Console

from sdlf_cli.deploy import Change, Failure, StackResult
from sdlf_cli.ui import changes_table, outputs_table, results_table
from sdlf_cli.ui.output import emit
from sdlf_cli.workflows.deploy import DeployOutcome

RESULTS = [
    StackResult("lake-foundations", "foundations", "updated", outputs={"RawBucket": "raw-b", "KmsKeyArn": "arn:k"},
                duration=3.25, message="UPDATE_COMPLETE (2 change(s))",
                changes=[Change("Modify", "Table", "AWS::DynamoDB::Table", "True", False, ("TableName",)),
                         Change("Add", "Role", "AWS::IAM::Role", None, True)]),
    StackResult("lake-team-a", "team", "failed", duration=61.0, message="create failed",
                failure=Failure("Key", "AWS::KMS::Key", "CREATE_FAILED", "policy is invalid")),
    StackResult("lake-pipeline-a-main", "pipeline", "skipped", message="skipped: lake-team-a failed"),
]


def render(table) -> str:
    out = io.StringIO()
    Console(file=out, width=220, color_system=None).print(table)
    return out.getvalue()


def test_results_table_lists_status_duration_message_and_root_cause():
    text = render(results_table(RESULTS))
    for needle in ("lake-foundations", "updated", "3.2s", "lake-team-a", "1m01s", "root cause: Key (AWS::KMS::Key)",
                   "policy is invalid", "skipped: lake-team-a failed"):
        assert needle in text, needle


def test_outputs_table_sorted_per_stack():
    text = render(outputs_table(RESULTS))
    assert text.index("KmsKeyArn") < text.index("RawBucket")
    assert "raw-b" in text and "arn:k" in text


def test_changes_table_flags_destructive_and_iam():
    lines = render(changes_table(RESULTS)).splitlines()
    table_row = next(l for l in lines if "Table" in l and "DynamoDB" in l)
    role_row = next(l for l in lines if "AWS::IAM::Role" in l)
    assert "DESTRUCTIVE" in table_row and "IAM" not in table_row.replace("DynamoDB", "")
    assert "DATA" in table_row and "(TableName)" in table_row
    assert "IAM" in role_row.split("AWS::IAM::Role")[1] and "DESTRUCTIVE" not in role_row


def test_json_envelope_is_versioned_and_complete(capsys):
    assert emit(DeployOutcome(RESULTS), "json") == 1
    envelope = json.loads(capsys.readouterr().out)
    assert envelope["version"] == 1 and envelope["ok"] is False
    first, failed, skipped = envelope["results"]
    assert first["outputs"] == {"RawBucket": "raw-b", "KmsKeyArn": "arn:k"}
    assert first["changes"][0] == {"action": "Modify", "logical_id": "Table", "resource_type": "AWS::DynamoDB::Table",
                                   "replacement": "True", "is_iam": False, "destructive": True,
                                   "data_bearing": True, "data_at_risk": True, "recreates": ["TableName"]}
    assert failed["failure"] == {"logical_id": "Key", "resource_type": "AWS::KMS::Key", "status": "CREATE_FAILED",
                                 "reason": "policy is invalid"}
    assert skipped["status"] == "skipped" and skipped["duration"] == 0.0


def test_exit_code_follows_the_result_in_every_output_format(capsys):
    assert emit(DeployOutcome(RESULTS[:1]), "text") == 0
    assert emit(DeployOutcome([StackResult("a", "team", "unchanged"), StackResult("b", "team", "planned")]), "json") == 0
    assert emit(DeployOutcome(RESULTS), "text") == 1
    assert emit(DeployOutcome(RESULTS), "json") == 1
