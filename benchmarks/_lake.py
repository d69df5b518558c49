"""The dev lake on an in-process emulator, as the stage-A and cost benchmarks use it (not a test module).

`dev_lake(env)` copies the project into a temp dir, writes parameters/dev.yaml under `env` with every dataset's
stage-B schedule at rate(1 day) (so no batch runs unless the benchmark starts one), starts the emulator,
deploys every layer and yields a `DevLake`; the emulator is stopped and the temp dir removed on exit.
"""
from __future__ import annotations

import json
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator

import yaml

from _common import ROOT, copy_project


@dataclass
class DevLake:
    env: str
    project: Path
    cfg: Any  # LakeConfig
    clients: Any  # Clients at the emulator
    emulator: Any
    team: str  # the first team of parameters/dev.yaml
    dataset: str  # its first dataset
    stacks: int
    deploy_seconds: float

    @property
    def lake(self):
        from sdlf_cli.lake import Lake

        return Lake(self.cfg, self.clients)

    @cached_property
    def raw_bucket(self) -> str:
        # Read once: a fresh Lake reads the whole registry from SSM, which per put would cost the emulator more
        # CPU than some of the stage-A work the benchmarks measure.
        return self.lake.registry.raw_bucket

    def put(self, index: int, records: int, run: str, prefix: str = "bench") -> tuple[str, float]:
        """Put one distinct JSON-lines file into the dataset's raw prefix: (its s3 uri, when it was put)."""
        raw_bucket = self.raw_bucket
        key = f"{self.team}/{self.dataset}/{prefix}-{run}-{index:03d}.jsonl"
        body = file_body(index, records, run)
        put_at = time.time()
        self.clients.client("s3").put_object(Bucket=raw_bucket, Key=key, Body=body)
        return f"s3://{raw_bucket}/{key}", put_at


@contextmanager
def dev_lake(env: str) -> Iterator[DevLake]:
    from sdlf_cli.aws.session import AwsTarget, Clients
    from sdlf_cli.config.loader import load_config
    from sdlf_cli.lake import Lake
    from sdlf_cli.local.context import EmulatorContext
    from sdlf_cli.local.server import free_port, start
    from sdlf_cli.ui import make_reporter
    from sdlf_cli.workflows.deploy import all_layers, deploy_layers

    with tempfile.TemporaryDirectory(prefix=f"sdlf-bench-{env}-") as tmp:
        project = copy_project(Path(tmp))
        (project / "parameters").mkdir()
        (project / "parameters" / "base.yaml").write_text((ROOT / "parameters" / "base.yaml").read_text())
        lake = yaml.safe_load((ROOT / "parameters" / "dev.yaml").read_text())
        lake["env"] = env
        for team in lake.get("teams", {}).values():
            for dataset in (team.get("datasets") or {}).values():
                dataset["schedule"] = "rate(1 day)"  # keep stage B out unless the benchmark starts a batch
        (project / "parameters" / f"{env}.yaml").write_text(yaml.safe_dump(lake, sort_keys=False))
        team_name = next(iter(lake["teams"]))
        dataset_name = next(iter(lake["teams"][team_name]["datasets"]))

        emulator = start(EmulatorContext(host="127.0.0.1", port=free_port(), state_dir=Path(tmp) / "emulator"))
        try:
            cfg = load_config(env, project / "parameters")
            clients = Clients(AwsTarget(region=cfg.region, endpoint_url=emulator.endpoint_url))
            started = time.perf_counter()
            outcome = deploy_layers(Lake(cfg, clients), make_reporter("json"), all_layers(cfg, project), root=project)
            if not outcome.ok:
                raise SystemExit("deploy failed: " + json.dumps(outcome.to_dict())[:2000])
            yield DevLake(env, project, cfg, clients, emulator, team_name, dataset_name, len(outcome.results),
                          time.perf_counter() - started)
        finally:
            emulator.stop()


def parse_iso(value: str) -> float:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def file_body(index: int, records: int, run: str) -> bytes:
    # Distinct content per file: stage-A executions are named after the content, identical bytes run once.
    lines = [json.dumps({"id": f"{run}-{index}-{n}", "file": index, "n": n, "name": f"person {n}",
                         "tags": ["a", "b"], "address": {"city": "Oslo", "zip": None}}) for n in range(records)]
    return ("\n".join(lines) + "\n").encode()


def _timing(item: dict, status: str, put_at: float) -> dict:
    """One catalog row's times since its put: cataloged, terminal, and seen by the poller."""
    return {
        "status": status,
        "received": parse_iso(item["created_at"]["S"]) - put_at,
        "processed": parse_iso(item["updated_at"]["S"]) - put_at,
        "observed": time.time() - put_at,
        "processed_at": parse_iso(item["updated_at"]["S"]),
        "reason": item.get("reason", {}).get("S", ""),
    }


def wait_processed(ddb, table_name: str, pending: dict[str, float], timeout: float, poll: float) -> dict[str, dict]:
    """uri -> {received, processed, observed} in seconds after its put; FAILED or timed out rows noted."""
    out: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for uri in list(pending):
            item = ddb.get_item(TableName=table_name, Key={"id": {"S": uri}}, ConsistentRead=True).get("Item")
            status = item and item.get("status", {}).get("S")
            if status in ("PROCESSED", "FAILED"):
                put_at = pending.pop(uri)
                out[uri] = _timing(item, status, put_at)
        if pending:
            time.sleep(poll)
    for uri, put_at in pending.items():
        out[uri] = {"status": "TIMEOUT", "observed": time.time() - put_at}
    return out


# Only what `_timing` reads: serialising whole catalog rows for every poll of a burst would cost the emulator
# more CPU than some of the stage-A work being measured.
_TIMING_NAMES = {f"#{name}": name for name in ("id", "status", "created_at", "updated_at", "reason")}
_TIMING_PROJECTION = ", ".join(_TIMING_NAMES)


def wait_processed_batched(ddb, table_name: str, pending: dict[str, float], timeout: float,
                           poll: float) -> dict[str, dict]:
    """`wait_processed` with consistent BatchGetItem (100 keys a call) of the timing attributes only: watching a
    burst of 200 costs the emulator 2 small requests per round, not 200."""
    out: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        uris = list(pending)
        for start in range(0, len(uris), 100):
            request = {table_name: {"Keys": [{"id": {"S": uri}} for uri in uris[start:start + 100]],
                                    "ConsistentRead": True, "ProjectionExpression": _TIMING_PROJECTION,
                                    "ExpressionAttributeNames": _TIMING_NAMES}}
            while request:
                response = ddb.batch_get_item(RequestItems=request)
                for item in response["Responses"].get(table_name, []):
                    uri, status = item["id"]["S"], item.get("status", {}).get("S")
                    if status not in ("PROCESSED", "FAILED") or uri not in pending:
                        continue
                    put_at = pending.pop(uri)
                    out[uri] = _timing(item, status, put_at)
                request = response.get("UnprocessedKeys") or {}
        if pending:
            time.sleep(poll)
    for uri, put_at in pending.items():
        out[uri] = {"status": "TIMEOUT", "observed": time.time() - put_at}
    return out
