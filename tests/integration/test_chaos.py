"""Chaos: a few hundred small files through the whole lake under injected faults; retries and redrive, then
`sdlf audit` proves every object PROCESSED exactly once, nothing lost, nothing duplicated, and the analytics rows
equal the input. The scenario is tests/integration/chaos.py (benchmarks/chaos.py runs it at a larger N)."""
from __future__ import annotations

import pytest

from sdlf_cli.aws.session import AwsTarget, Clients
from sdlf_cli.config.loader import load_config
from sdlf_cli.lake import Lake
from sdlf_cli.ui import make_reporter
from sdlf_cli.workflows.deploy import all_layers, deploy_layers
from tests.integration import chaos

# The time goes per object (each one's catalog, stage-A and stage-B steps), hardly per record: one record each.
OBJECTS, RECORDS = 200, 1
# About one call in five fails somewhere: Lambda invokes, the S3/DynamoDB/SQS calls of Lambda code, Glue runs
# (few, so a higher rate) and SQS deliveries. A batch holds all the objects and runs two Glue jobs: at 0.1 a run,
# about one batch in five fails on Glue (one in three at 0.2, each failure another round over all 200 objects).
FAULTS = ("lambda_error=0.08,lambda_timeout=0.03,partial_write=0.03,throttle=0.03,glue_error=0.1,"
          "duplicate=0.05,delay=0.03")


@pytest.fixture(scope="module")
def lake(emulator, tmp_path_factory):
    # A stage-B batch costs seconds whatever its size (job and quality runs, the crawler's poll): one batch may
    # take every object, so a redrive round runs one batch, not two.
    project = chaos.prepare_project(tmp_path_factory.mktemp("lake-chaos"), "chaos", max_items=OBJECTS)
    cfg = load_config("chaos", project / "parameters")
    lake = Lake(cfg, Clients(AwsTarget(region=cfg.region, endpoint_url=emulator.endpoint_url)))
    outcome = deploy_layers(lake, make_reporter("json"), all_layers(cfg, project), root=project)
    assert outcome.ok, outcome.to_dict()
    return lake


def test_under_faults_every_object_is_processed_once_and_nothing_is_lost_or_duplicated(lake, tmp_path):
    ops = chaos.LakeOps(lake, lake.registry.raw_bucket)
    log = tmp_path / "faults.jsonl"
    outcome = chaos.Scenario(ops).run(OBJECTS, RECORDS, FAULTS, seed=7, log_path=log)
    explained = "\n".join(outcome.lines())

    faults = outcome.faults["faults"]
    assert all(faults[kind] > 0 for kind in ("lambda_error", "throttle", "partial_write", "duplicate")), explained
    assert len(outcome.log) == outcome.faults["total"], "every injected fault is in the log"

    audit = outcome.audit
    assert audit.ok and (audit.lost, audit.duplicated) == (0, 0), explained
    [dataset] = audit.datasets
    assert [o.state for o in dataset.objects] == ["PROCESSED"] * OBJECTS, explained
    assert (dataset.rows, dataset.records) == (OBJECTS * RECORDS, OBJECTS * RECORDS), explained
    assert outcome.rows_queried == OBJECTS * RECORDS, explained
