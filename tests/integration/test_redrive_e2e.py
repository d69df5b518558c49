"""`sdlf redrive` end to end on the emulator: failed objects really get processed again, and only once."""
from __future__ import annotations

import json
import shutil
import time
from functools import partial
from pathlib import Path

import pytest

from sdlf_cli.aws.session import AwsTarget, Clients
from sdlf_cli.config.loader import load_config
from sdlf_cli.lake import Lake
from sdlf_cli.ui import make_reporter
from sdlf_cli.workflows.deploy import all_layers, deploy_layers
from sdlf_cli.workflows.ingest import catalog_rows, ingest_files
from sdlf_cli.workflows.observe import recent_runs
from sdlf_cli.workflows.onboard import Addition, add_and_deploy
from sdlf_cli.workflows.redrive import list_dead_letters, redrive

from tests.integration.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "engineering" / "legislators"
ENV = "rdrv"
TEAM = "engineering"


_wait = partial(wait_for, timeout=90.0, interval=0.3)


def _row(cfg, clients, uri):
    rows = catalog_rows(Lake(cfg, clients), uri=uri)
    return rows[0] if rows else None


def _counts(cfg, clients):
    return {(q.kind, q.pipeline, q.dataset): q.approximate_count for q in list_dead_letters(Lake(cfg, clients), team=TEAM)}


@pytest.fixture(scope="module")
def lake(emulator, tmp_path_factory):
    project = tmp_path_factory.mktemp("lake-redrive")
    for part in ("templates", "lambda", "glue", "parameters"):
        if (ROOT / part).exists():
            shutil.copytree(ROOT / part, project / part, ignore=shutil.ignore_patterns("__pycache__"))
    dev = (project / "parameters" / "dev.yaml").read_text()
    (project / "parameters" / f"{ENV}.yaml").write_text(dev.replace("env: dev", f"env: {ENV}", 1))
    cfg = load_config(ENV, project / "parameters")
    clients_for = lambda c: Clients(AwsTarget(region=c.region, endpoint_url=emulator.endpoint_url))  # noqa: E731
    outcome = deploy_layers(Lake(cfg, clients_for(cfg)), make_reporter("json"), all_layers(cfg, project), root=project)
    assert outcome.ok, outcome.to_dict()
    return project, cfg, clients_for


def test_an_object_of_a_late_registered_dataset_is_processed_after_redrive(lake):
    project, cfg, clients_for = lake
    clients = clients_for(cfg)
    [landed] = ingest_files(Lake(cfg, clients), [SAMPLES / "persons-1.json"], TEAM, "late")
    failed = _wait(lambda: (r := _row(cfg, clients, landed.uri)) and r["status"] == "FAILED" and r)
    assert failed and "not registered" in failed["reason"], failed

    # Not registered yet: redrive leaves it where it is and says why.
    early = redrive(Lake(cfg, clients), team=TEAM, dataset="late")
    assert early.ok and early.moved == 0 and early.skipped == 1
    assert "sdlf add-dataset engineering late" in early.queues[0].skipped[0].reason
    assert _counts(cfg, clients)[("catalog", None, None)] == 1

    outcome = add_and_deploy(Lake(cfg, clients_for), project / "parameters",
                             Addition("dataset", TEAM, "late", pipeline="main"), make_reporter("json"), root=project)
    assert outcome.ok, outcome.to_dict()
    cfg = load_config(ENV, project / "parameters")

    preview = redrive(Lake(cfg, clients), dry_run=True, stage="catalog")
    assert preview.moved == 1 and _counts(cfg, clients)[("catalog", None, None)] == 1
    [planned] = preview.queues[0].messages
    assert planned.action == "would move" and planned.destination.endswith(cfg.names.queue(TEAM, "main", "a"))

    result = redrive(Lake(cfg, clients), stage="catalog")
    assert result.ok and result.moved == 1, result.to_dict()
    processed = _wait(lambda: (r := _row(cfg, clients, landed.uri)) and r["status"] == "PROCESSED" and r)
    assert processed, _row(cfg, clients, landed.uri)
    assert not processed.get("reason") and processed.get("outputs")
    assert _counts(cfg, clients)[("catalog", None, None)] == 0


def test_a_stage_a_failure_redriven_twice_runs_only_once_more(lake):
    _, cfg, clients_for = lake
    clients = clients_for(cfg)
    sqs = clients.client("sqs")
    [landed] = ingest_files(Lake(cfg, clients), [SAMPLES / "persons-broken.json"], TEAM, "legislators")
    failed = _wait(lambda: (r := _row(cfg, clients, landed.uri)) and r["status"] == "FAILED" and r)
    assert failed and "malformed JSON" in failed["reason"], failed
    first_execution = failed["execution"]
    dlq = next(q for q in list_dead_letters(Lake(cfg, clients), team=TEAM, stage="a"))
    assert _wait(lambda: _counts(cfg, clients)[("a", "main", None)] == 1)

    # The same failure twice in the DLQ, as a crash between send and delete would leave it.
    [message] = sqs.receive_message(QueueUrl=dlq.url, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
    assert json.loads(message["Body"])["sdlf"]["execution"] == first_execution
    sqs.send_message(QueueUrl=dlq.url, MessageBody=message["Body"])

    result = redrive(Lake(cfg, clients), team=TEAM, stage="a")
    assert result.ok and result.moved == 2, result.to_dict()

    def replay_failed():
        row = _row(cfg, clients, landed.uri)
        return row if row and row["status"] == "FAILED" and row.get("execution") != first_execution else None

    replayed = _wait(replay_failed)
    assert replayed, _row(cfg, clients, landed.uri)
    replay = replayed["execution"]
    time.sleep(2)  # time for a second (duplicate) execution to show, if one had started
    runs = [r for r in recent_runs(Lake(cfg, clients), team=TEAM, dataset="legislators", limit=1000)
            if r.get("object") == landed.uri]
    assert sorted(r["id"] for r in runs) == sorted([first_execution, replay])
    # One new failure message, naming the replay: redriving it again would run once more, under a new name.
    assert _wait(lambda: _counts(cfg, clients)[("a", "main", None)] == 1)
    [again] = sqs.receive_message(QueueUrl=dlq.url, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
    marker = json.loads(again["Body"])["sdlf"]
    assert marker["execution"] == replay and "malformed JSON" in marker["reason"]
