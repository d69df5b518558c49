"""Stage-B heavy transform: each engine against its own raw libraries, and the two engines side by side.

    .venv/bin/python benchmarks/engines.py [--records 50000] [--files 4] [--repeat 3] [--partition-by ingestion_date]
    .venv/bin/python benchmarks/engines.py --memory [--memory-mb 2048] [--files 16]

`--memory`: bounded memory of the python engine on a batch larger than memory should hold. Writes a ~2 GB
JSON-lines batch (--files stage objects, made of the same generated records repeated with new ids) to a temp
dir, runs the python engine's `run()` on it in a fresh subprocess whose S3 is that folder on disk (so no object
store holds the batch in the engine's memory), and prints the subprocess's peak RSS (getrusage ru_maxrss)
beside the batch size. The temp dir is deleted afterwards.

Generates JSON-lines records (nested struct, list of structs, list of strings, nulls, int/float mixes),
splits them into --files stage objects, writes one manifest and runs `glue/heavy_transform.py`'s
`run(engine, manifest_uri, s3=..., spark=...)` for each engine on it, in-process, with S3 being moto's
`mock_aws` (as in tests/unit/test_glue_heavy_transform.py). Beside each engine, on the same bytes in the
same run, the raw libraries it is built on: `pyarrow.json.read_json` + `pyarrow.parquet.write_table`
(in memory, no S3) for python; `spark.read.json` (its own inference) + `write.parquet` on local files for
spark. The runs are interleaved (python, raw pyarrow, spark, raw spark, ...) so machine noise hits all
alike. The Spark session is started once and timed on its own; each spark run reuses it. Needs Java 17
for the spark engine. Prints figures side by side and their ratios; nothing is asserted.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, header, ratio, table  # noqa: E402

import boto3  # noqa: E402
import pyarrow.json as pj  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from moto import mock_aws  # noqa: E402

STAGE, ANALYTICS = "bench-stage", "bench-analytics"
TEAM, DATASET = "bench", "events"
CITIES = ["Oslo", "Stockholm", "Lisbon", "Porto", "Lyon", "Turin", "Gdansk", "Tartu", None]
COUNTRIES = ["NO", "SE", "PT", "FR", "IT", "PL", "EE"]
TAGS = ["new", "vip", "churn-risk", "b2b", "trial", "promo", "mobile", "web"]


def load_heavy():
    import importlib.util

    spec = importlib.util.spec_from_file_location("heavy_transform", ROOT / "glue" / "heavy_transform.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["heavy_transform"] = module
    spec.loader.exec_module(module)
    return module


def record(rng: random.Random, n: int) -> dict:
    city = rng.choice(CITIES)
    return {
        "id": n,
        "customer": {
            "name": f"customer {rng.randrange(10_000)}",
            "email": None if rng.random() < 0.1 else f"c{n}@example.com",
            "address": None if city is None else {
                "street": f"{rng.randrange(1, 300)} Main Street",
                "city": city,
                "zip": f"{rng.randrange(10_000, 99_999)}",
                "geo": {"lat": round(rng.uniform(-90, 90), 6), "lon": round(rng.uniform(-180, 180), 6)},
            },
        },
        "country": rng.choice(COUNTRIES),
        "amount": rng.randrange(1, 5000) if rng.random() < 0.5 else round(rng.uniform(1, 5000), 2),
        "active": rng.random() < 0.7,
        "tags": rng.sample(TAGS, rng.randrange(0, 4)),
        "items": [
            {"sku": f"SKU-{rng.randrange(1000):04d}", "qty": rng.randrange(1, 10), "price": round(rng.uniform(1, 200), 2)}
            for _ in range(rng.randrange(0, 5))
        ],
        "coupon": None if rng.random() < 0.8 else f"C{rng.randrange(100)}",
        "always_null": None,
        "updated_at": f"2024-05-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00Z",
    }


def generate(records: int, files: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    per_file = -(-records // files)
    bodies = []
    for f in range(files):
        lines = [json.dumps(record(rng, n), separators=(",", ":"))
                 for n in range(f * per_file, min(records, (f + 1) * per_file))]
        bodies.append(("\n".join(lines) + "\n").encode())
    return bodies


def put_batch(s3, bodies: list[bytes], batch_id: str, partition_by: list[str]) -> str:
    inputs = []
    for i, body in enumerate(bodies):
        key = f"{TEAM}/{DATASET}/part-{i:03d}.jsonl"
        etag = s3.put_object(Bucket=STAGE, Key=key, Body=body)["ETag"].strip('"')
        inputs.append({"uri": f"s3://{STAGE}/{key}", "etag": etag, "source": f"s3://bench-raw/{key}", "records": None})
    manifest = {
        "batch_id": batch_id, "team": TEAM, "dataset": DATASET, "table": DATASET, "engine": "python",
        "created_at": "2024-05-03T12:00:00.000000Z", "partition_by": partition_by, "inputs": inputs,
        "output": f"s3://{ANALYTICS}/{TEAM}/{DATASET}/{DATASET}/", "quality": [],
    }
    key = f"{TEAM}/{DATASET}/_batches/{batch_id}/manifest.json"
    s3.put_object(Bucket=STAGE, Key=key, Body=json.dumps(manifest).encode())
    return f"s3://{STAGE}/{key}"


def outputs_digest(s3, result: dict) -> tuple[str, int, str]:
    """(schema, rows, digest of the sorted rows with their partition values) of a run's Parquet files."""
    rows, schemas = [], set()
    for output in result["outputs"]:
        bucket, _, key = output["uri"][5:].partition("/")
        table_ = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        schemas.add(str(table_.schema.remove_metadata()))
        rows += [json.dumps({**r, **output["partition"]}, sort_keys=True, default=str) for r in table_.to_pylist()]
    rows.sort()
    digest = hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]
    return " | ".join(sorted(schemas)), len(rows), digest


def raw_pyarrow(bodies: list[bytes]) -> None:
    """The python engine's libraries alone: parse with pyarrow's inference, write snappy Parquet."""
    for body in bodies:
        pq.write_table(pj.read_json(io.BytesIO(body)), io.BytesIO(), compression="snappy")


def raw_spark(spark, paths: list[str], out: str) -> None:
    """The spark engine's libraries alone: Spark's JSON reader inferring its own schema, then Parquet."""
    spark.read.json(["file://" + p for p in paths]).coalesce(1).write.mode("overwrite") \
        .option("compression", "snappy").parquet("file://" + out)


MEMORY_CHILD = """
import json, os, resource, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from engines import load_heavy


class FolderS3:
    \"\"\"get_object / put_object over a local folder (bucket/key as paths): S3 without holding objects in memory.\"\"\"

    def __init__(self, root):
        self.root = Path(root)

    def get_object(self, Bucket, Key):
        path = self.root / Bucket / Key
        if not path.is_file():
            from botocore.exceptions import ClientError
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "no such key"}}, "GetObject")
        return {"Body": open(path, "rb")}

    def put_object(self, Bucket, Key, Body, **_):
        path = self.root / Bucket / Key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(Body if isinstance(Body, bytes) else Body.read())
        return {"ETag": '"0"'}

    def upload_file(self, Filename, Bucket, Key, ExtraArgs=None):
        import shutil
        path = self.root / Bucket / Key
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Filename, path)


heavy = load_heavy()
started = time.perf_counter()
result = heavy.run("python", sys.argv[3], s3=FolderS3(sys.argv[1]))
print(json.dumps({"seconds": time.perf_counter() - started, "rows": result["rows"], "outputs": len(result["outputs"]),
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def memory_mode(total_mb: int, files: int) -> None:
    """A batch of ~total_mb MB in `files` stage objects through the python engine in a subprocess: its peak RSS."""
    import resource
    import subprocess

    header(f"stage-B python engine: peak memory on a {total_mb} MB batch (bounded-memory target: < 1 GB RSS)")
    rng = random.Random(11)
    # The same records over and over with new ids: serialised once, written as often as the size asks.
    block = [json.dumps({k: v for k, v in record(rng, n).items() if k != "id"}, separators=(",", ":"))[1:]
             for n in range(5_000)]
    with tempfile.TemporaryDirectory(prefix="sdlf-bench-memory-") as root:
        started = time.perf_counter()
        per_file = total_mb * 1_000_000 // files
        inputs, size, rows, next_id = [], 0, 0, 0
        for f in range(files):
            key = f"{TEAM}/{DATASET}/part-{f:03d}.jsonl"
            path = Path(root) / STAGE / key
            path.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            with open(path, "wb") as out:
                while written < per_file:
                    chunk = "".join(f'{{"id":{next_id + i},{rest}\n' for i, rest in enumerate(block)).encode()
                    next_id += len(block)
                    out.write(chunk)
                    written += len(chunk)
                    rows += len(block)
            size += written
            inputs.append({"uri": f"s3://{STAGE}/{key}", "etag": "0", "source": f"s3://bench-raw/{key}", "records": None})
        manifest = {
            "batch_id": "memory", "team": TEAM, "dataset": DATASET, "table": DATASET, "engine": "python",
            "created_at": "2024-05-03T12:00:00.000000Z", "partition_by": ["ingestion_date"], "inputs": inputs,
            "output": f"s3://{ANALYTICS}/{TEAM}/{DATASET}/{DATASET}/", "quality": [],
        }
        key = f"{TEAM}/{DATASET}/_batches/memory/manifest.json"
        (Path(root) / STAGE / key).parent.mkdir(parents=True)
        (Path(root) / STAGE / key).write_text(json.dumps(manifest))
        print(f"batch: {files} JSON-lines objects, {size / 1e6:,.0f} MB, {rows:,} records "
              f"(written to a temp dir in {time.perf_counter() - started:.1f} s)")
        done = subprocess.run([sys.executable, "-c", MEMORY_CHILD, root, str(Path(__file__).resolve().parent),
                               f"s3://{STAGE}/{key}"], capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0:
            raise SystemExit(f"the engine failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        child = json.loads(done.stdout.strip().splitlines()[-1])
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        out_size = sum(p.stat().st_size for p in (Path(root) / ANALYTICS).rglob("*.parquet"))
    print()
    table([
        ["python engine, one batch", "figure"],
        ["batch size (JSON lines)", f"{size / 1e6:,.0f} MB"],
        ["rows written", f"{child['rows']:,} in {child['outputs']} Parquet file(s), {out_size / 1e6:,.0f} MB"],
        ["engine run", f"{child['seconds']:.1f} s ({size / 1e6 / child['seconds']:.1f} MB/s)"],
        ["peak RSS of the engine's process", f"{peak / 1e6:,.0f} MB"],
        ["peak RSS / batch size", f"{peak / size:.2f}"],
        ["target", "< 1,000 MB"],
    ], "lr")
    print("(the temp dir with the batch and its output is deleted)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--files", type=int, default=None,
                        help="stage objects the records are split into (default 4; 16 with --memory)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per engine, interleaved; the first is reported alone, the best of the rest as warm")
    parser.add_argument("--partition-by", default="ingestion_date", help="comma-separated columns")
    parser.add_argument("--memory", action="store_true", help="only the python engine's peak memory on a large batch")
    parser.add_argument("--memory-mb", type=int, default=2048, help="batch size for --memory (default 2 GB)")
    args = parser.parse_args()
    if args.memory:
        memory_mode(args.memory_mb, args.files or 16)
        return
    args.files = args.files or 4
    partition_by = [c for c in args.partition_by.split(",") if c]

    header("stage-B heavy transform: each engine vs its raw libraries, python vs spark (local[2]), same batch")
    os.environ.pop("AWS_ENDPOINT_URL", None)
    heavy = load_heavy()

    started = time.perf_counter()
    bodies = generate(args.records, args.files)
    size = sum(len(b) for b in bodies)
    print(f"batch: {args.records} records in {args.files} JSON-lines objects, {size / 1e6:.1f} MB "
          f"({size / args.records:.0f} B/record; generated in {time.perf_counter() - started:.1f} s)")
    print(f"partition_by: {partition_by}")

    started = time.perf_counter()
    spark = heavy.spark_session()
    spark.sparkContext.setLogLevel("ERROR")
    spark_startup = time.perf_counter() - started
    print(f"spark session start-up (JVM + local[2] context, once per job on Glue/emulator): {spark_startup:.1f} s")
    print()

    timings: dict[str, list[float]] = {"python": [], "spark": [], "raw pyarrow": [], "raw spark": []}
    checks: dict[str, tuple] = {}
    scratch = tempfile.mkdtemp(prefix="sdlf-bench-engines-")
    local_files = []
    for i, body in enumerate(bodies):
        local_files.append(os.path.join(scratch, f"part-{i:03d}.jsonl"))
        Path(local_files[-1]).write_bytes(body)
    try:
        with mock_aws():
            s3 = boto3.client("s3", region_name="us-east-1")
            for bucket in (STAGE, ANALYTICS):
                s3.create_bucket(Bucket=bucket)
            manifest_uri = put_batch(s3, bodies, "b" + "0" * 23 + "1", partition_by)
            for _ in range(args.repeat):
                for engine in ("python", "raw pyarrow", "spark", "raw spark"):
                    started = time.perf_counter()
                    if engine == "raw pyarrow":
                        raw_pyarrow(bodies)
                    elif engine == "raw spark":
                        raw_spark(spark, local_files, os.path.join(scratch, "raw-spark-out"))
                    else:
                        result = heavy.run(engine, manifest_uri, s3=s3, spark=spark if engine == "spark" else None)
                    timings[engine].append(time.perf_counter() - started)
                    if engine in ("python", "spark") and engine not in checks:
                        checks[engine] = (result["rows"], len(result["outputs"]), outputs_digest(s3, result))
    finally:
        spark.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    def first(engine: str) -> float:
        return timings[engine][0]

    def warm(engine: str) -> float:
        return min(timings[engine][1:] or timings[engine])

    py, sp = warm("python"), warm("spark")
    rows = [
        ["", "python", "spark", "spark / python"],
        ["rows written", str(checks["python"][0]), str(checks["spark"][0]), ""],
        ["parquet files", str(checks["python"][1]), str(checks["spark"][1]), ""],
        ["all runs, in order (s)", " ".join(f"{t:.2f}" for t in timings["python"]),
         " ".join(f"{t:.2f}" for t in timings["spark"]), ""],
        ["first run (fresh session / fresh process)", f"{first('python'):.2f} s", f"{first('spark'):.2f} s",
         ratio(first("spark"), first("python"))],
        ["one job = session start-up + first run", f"{first('python'):.2f} s",
         f"{spark_startup + first('spark'):.2f} s", ratio(spark_startup + first("spark"), first("python"))],
        [f"warm: best of runs 2..{args.repeat}", f"{py:.2f} s", f"{sp:.2f} s", ratio(sp, py)],
        ["warm MB/s (JSON-lines input)", f"{size / 1e6 / py:.2f}", f"{size / 1e6 / sp:.2f}", ratio(py, sp)],
        ["warm records/s", f"{args.records / py:,.0f}", f"{args.records / sp:,.0f}", ratio(py, sp)],
        ["one-job MB/s", f"{size / 1e6 / first('python'):.2f}",
         f"{size / 1e6 / (spark_startup + first('spark')):.2f}", ""],
        ["one-job records/s", f"{args.records / first('python'):,.0f}",
         f"{args.records / (spark_startup + first('spark')):,.0f}", ""],
    ]
    table(rows, "lrrr")
    print()
    raw_py, raw_sp = warm("raw pyarrow"), warm("raw spark")
    print("each engine against its raw libraries on the same bytes (warm, best of runs 2..N):")
    table([
        ["", "engine", "raw libraries", "engine / raw throughput"],
        ["python: heavy_transform vs pyarrow read_json + write_table", f"{size / 1e6 / py:.1f} MB/s",
         f"{size / 1e6 / raw_py:.1f} MB/s", f"{raw_py / py:.0%}"],
        ["spark: heavy_transform vs spark.read.json + write.parquet", f"{size / 1e6 / sp:.1f} MB/s",
         f"{size / 1e6 / raw_sp:.1f} MB/s", f"{raw_sp / sp:.0%}"],
    ], "lrrr")
    print()
    same = checks["python"][2] == checks["spark"][2]
    print(f"same rows and schema on both engines: {'yes' if same else 'NO'} "
          f"(digest python {checks['python'][2][2]}, spark {checks['spark'][2][2]})")
    print("notes: both engines read and write S3 through moto in this process (its cost is in the engine")
    print("figures, not in the raw-library ones); spark runs local[2] on this machine's cores, so its figures")
    print("say nothing about a multi-node Glue cluster, only about this machine. A Glue job (and the")
    print("emulator's Glue job subprocess) runs one batch in a fresh session, so 'one job' is the per-batch")
    print("cost; 'warm' is what a long-lived session would reach. The python figures exclude the interpreter")
    print("start and imports of a fresh Glue Python shell process.")

if __name__ == "__main__":
    main()
