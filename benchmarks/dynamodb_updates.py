"""CPU per DynamoDB UpdateItem on the emulator's moto, per shape the lake sends: moto as shipped vs its patches.

Each configuration runs in a fresh process under moto's `mock_aws` (no server, no network): the lake's own
CatalogRepository and ExecutionsRepository write the rows stage A writes for `--files` objects (catalog event
A/B, execution start, RUNNING, an output's PROCESSED with its lineage, the lineage append, PROCESSED, execution
succeed), and every call is timed in its thread's CPU time: moto's handler (`DynamoHandler.update_item`: the
request's checks and condition parse, then the backend) and, inside it, the backend's `update_item`
(validation, condition evaluation, the update). Configurations, interleaved over `--rounds` rounds:

- moto: moto 5.2.5 as shipped;
- walks: the update-expression walks made linear and the parse kept per text (`dynamodb_expressions`, without
  its per-text condition syntax);
- all: every DynamoDB patch the emulator installs (plus planned validation, condition syntax per text, item
  size check).

Prints the median ms per call of each shape (the first fifth of the calls is left out as warm-up), the
median over rounds, and the ratios. Absolute figures move with the machine's load; read the ratios.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections import defaultdict

from _common import header, ratio, table

CONFIGS = ("moto", "walks", "all")


def _install(config: str) -> None:
    from sdlf_cli.local.cfn import _patching
    from sdlf_cli.local.runtime import dynamodb_expressions, dynamodb_item_sizes, dynamodb_update_plans

    if config == "moto":
        return
    dynamodb_expressions.install()
    if config == "walks":
        # Condition syntax per text out, the per-request condition memo kept (both replace `parse`).
        from moto.dynamodb.comparisons import ConditionExpressionParser

        _patching.uninstall(dynamodb_expressions.CONDITION_PATCH)
        _patching.uninstall(dynamodb_expressions.TEMPLATE_PATCH)
        _patching.wrap(ConditionExpressionParser, "parse", dynamodb_expressions.CONDITION_PATCH,
                       dynamodb_expressions._condition_parsed_once)
        return
    dynamodb_update_plans.install()
    dynamodb_item_sizes.install()


def _measure(config: str, files: int) -> dict[str, list[float]]:
    """Runs in the child process: ms per call by shape, backend and handler."""
    import boto3
    import moto
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler

    from sdlf_datalake.catalog import CatalogRepository, Status
    from sdlf_datalake.events import S3ObjectEvent
    from sdlf_datalake.executions import ExecutionsRepository

    _install(config)
    backend_ms: dict[str, list[float]] = defaultdict(list)
    handler_ms: dict[str, list[float]] = defaultdict(list)
    shape = {"name": None}
    original_backend, original_handler = DynamoDBBackend.update_item, DynamoHandler.update_item

    def timed_backend(self, *args, **kwargs):
        started = time.thread_time()
        try:
            return original_backend(self, *args, **kwargs)
        finally:
            backend_ms[shape["name"]].append((time.thread_time() - started) * 1000)

    def timed_handler(self):
        started = time.thread_time()
        try:
            return original_handler(self)
        finally:
            handler_ms[shape["name"]].append((time.thread_time() - started) * 1000)

    DynamoDBBackend.update_item, DynamoHandler.update_item = timed_backend, timed_handler
    with moto.mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        for name in ("catalog", "executions"):
            ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                             AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                             BillingMode="PAY_PER_REQUEST")
        catalog, executions = CatalogRepository("catalog", client=ddb), ExecutionsRepository("executions", client=ddb)

        def write(name, call, *args, **kwargs):
            shape["name"] = name
            return call(*args, **kwargs)

        for n in range(files):
            key = f"engineering/legislators/file{n}.json"
            raw, staged = f"s3://raw/{key}", f"s3://stage/pre-stage/{key}"
            event = S3ObjectEvent(event_id=f"e{n}", detail_type="Object Created", time="2026-11-26T08:00:00.000Z",
                                  bucket="raw", key=key, sequencer=f"00{n:08x}", size=100 + n, etag=f"etag{n}",
                                  reason="PutObject")
            write("catalog event (new row)", catalog.record_created, event, "raw")
            write("execution start (new row)", executions.start, f"x{n}", "engineering-legislators", "A", 1,
                  extra={"pipeline": "main"})
            write("status RUNNING", catalog.set_status, raw, Status.RUNNING, stage="raw", extra={"execution": f"x{n}"})
            write("output PROCESSED + lineage (new row)", catalog.set_status, staged, Status.PROCESSED, stage="stage",
                  etag=f"o{n}", extra={"execution": f"x{n}", "lineage": [raw]})
            write("lineage append", catalog.add_lineage, staged, [f"s3://raw/other{n}"])
            write("status PROCESSED", catalog.set_status, raw, Status.PROCESSED, stage="raw", etag=f"etag{n}",
                  extra={"execution": f"x{n}"})
            write("execution succeed", executions.succeed, f"x{n}", 1, 10)
            later = S3ObjectEvent(event_id=f"f{n}", detail_type="Object Created", time="2026-11-26T08:00:01.000Z",
                                  bucket="stage", key=f"pre-stage/{key}", sequencer=f"01{n:08x}", size=100 + n,
                                  etag=f"o{n}", reason="PutObject")
            write("catalog event (row a stage wrote)", catalog.record_created, later, "stage")
    skip = files // 5
    return {name: [statistics.median(backend_ms[name][skip:]), statistics.median(handler_ms[name][skip:])]
            for name in backend_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=60, help="objects per configuration and round (default 60)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, configurations interleaved (default 3)")
    parser.add_argument("--child", choices=CONFIGS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_measure(args.child, args.files)))
        return
    header("DynamoDB UpdateItem CPU per call on moto: as shipped vs the emulator's patches")
    runs: dict[str, list[dict]] = defaultdict(list)
    for _ in range(args.rounds):
        for config in CONFIGS:
            out = subprocess.run([sys.executable, __file__, "--child", config, "--files", str(args.files)],
                                 check=True, capture_output=True, text=True).stdout
            runs[config].append(json.loads(out.strip().splitlines()[-1]))
    medians = {config: {name: [statistics.median(run[name][i] for run in runs[config]) for i in (0, 1)]
                        for name in runs[config][0]} for config in CONFIGS}
    for i, part in enumerate(("backend update_item", "handler (request checks + backend)")):
        rows = [["shape", *(f"{c} ms" for c in CONFIGS), "moto/all", "walks/all"]]
        totals = {config: 0.0 for config in CONFIGS}
        for name in medians["all"]:
            figures = {config: medians[config][name][i] for config in CONFIGS}
            for config in CONFIGS:
                totals[config] += figures[config]
            rows.append([name, *(f"{figures[c]:.2f}" for c in CONFIGS), ratio(figures["moto"], figures["all"]),
                         ratio(figures["walks"], figures["all"])])
        rows.append(["per object (sum)", *(f"{totals[c]:.2f}" for c in CONFIGS), ratio(totals["moto"], totals["all"]),
                     ratio(totals["walks"], totals["all"])])
        print(f"## {part}, median ms per call over {args.rounds} rounds of {args.files} objects")
        table(rows)
        print()


if __name__ == "__main__":
    main()
