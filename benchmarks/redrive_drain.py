"""`sdlf redrive` over a lake's many DLQs: drained at once (no --limit) against one after the other (a --limit
larger than the messages, which keeps the serial order), in one run on moto's mock_aws.

    .venv/bin/python benchmarks/redrive_drain.py [--datasets 24] [--with-messages 8] [--repeat 2]

The lake of parameters/dev with `--datasets` more datasets registered (each with its stage-B queue and DLQ), and one
stage-B hand-off waiting in `--with-messages` of those DLQs. Each drain ends on a one-second long poll that makes
sure its queue is empty: that wait is what the concurrent drain overlaps.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, header, ratio, table  # noqa: E402

from moto import mock_aws  # noqa: E402

from sdlf_cli.aws.session import AwsTarget, Clients  # noqa: E402
from sdlf_cli.config.loader import load_config  # noqa: E402
from sdlf_cli.lake import Lake  # noqa: E402
from sdlf_cli.workflows.redrive import redrive  # noqa: E402

TEAM, PIPELINE = "engineering", "main"


def _lake(datasets: int, with_messages: int) -> Lake:
    cfg = load_config("dev", ROOT / "parameters")
    clients = Clients(AwsTarget(region=cfg.region))
    sqs, ssm, s3 = clients.client("sqs"), clients.client("ssm"), clients.client("s3")
    stage = "benchmark-stage"
    s3.create_bucket(Bucket=stage)
    for i in range(datasets):
        name = f"bench{i:02d}"
        queue = sqs.create_queue(QueueName=cfg.names.queue(TEAM, name, "b"))["QueueUrl"]
        dlq = sqs.create_queue(QueueName=cfg.names.dlq(TEAM, name, "b"))["QueueUrl"]
        ssm.put_parameter(Name=cfg.names.ssm(f"datasets/{TEAM}/{name}"), Type="String", Value=json.dumps(
            {"team": TEAM, "dataset": name, "pipeline": PIPELINE, "stage_b_queue_url": queue,
             "stage_b_dlq_url": dlq}))
        if i < with_messages:
            key = f"{TEAM}/{name}/part.jsonl"
            s3.put_object(Bucket=stage, Key=key, Body=b"{}")
            s3.put_object(Bucket=stage, Key=f"raw/{key}", Body=b"{}")
            sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({
                "team": TEAM, "dataset": name, "bucket": stage, "key": key, "uri": f"s3://{stage}/{key}", "etag": "e",
                "records": 1, "source": f"s3://{stage}/raw/{key}",
                "sdlf": {"reason": "job failed", "execution": "b-1", "failed_at": "x", "batch_id": "1"}}))
    return Lake(cfg, clients)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=24)
    parser.add_argument("--with-messages", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    header(f"sdlf redrive: {args.datasets} extra stage-B DLQs, {args.with_messages} with a message waiting")
    clock = lambda: datetime(2026, 1, 1, tzinfo=timezone.utc)  # noqa: E731
    rows = [["drain", "round", "DLQs", "moved", "wall s"]]
    walls: dict[str, list[float]] = {"at once": [], "one by one": []}
    for round_ in range(1, args.repeat + 1):
        for how, limit in (("at once", None), ("one by one", 10 ** 6)):
            with mock_aws():
                lake = _lake(args.datasets, args.with_messages)
                started = time.perf_counter()
                result = redrive(lake, clock=clock, limit=limit)
                wall = time.perf_counter() - started
            walls[how].append(wall)
            rows.append([how, str(round_), str(len(result.queues)), str(result.moved), f"{wall:.2f}"])
    table(rows)
    best = {how: min(values) for how, values in walls.items()}
    print()
    print(f"best of {args.repeat}: at once {best['at once']:.2f} s, one by one {best['one by one']:.2f} s: "
          f"{ratio(best['one by one'], best['at once'])} faster at once")


if __name__ == "__main__":
    main()
