"""A Spark Glue job run on the emulator without the Spark class archive, making it, and starting from it.

    .venv/bin/python benchmarks/spark_class_archive.py [--repeat 1]

One in-process emulator; a small PySpark job (1000 rows written to Parquet and read back, grouped) run through
`GlueJobRunner.execute` as a `glueetl` run is, on a cache folder of its own: first with
`SDLF_SPARK_CLASS_ARCHIVE=off`, then the run that makes the archive (its JVM writes it at exit), then `--repeat`
runs starting from it. The suite's driver options (C1 only, serial GC) are used when PYSPARK_SUBMIT_ARGS is not
set, as in the tests. CPU is the whole machine's (/proc/stat): the driver JVM outlives the job's Python process
(it is not a waited child), so a process tree reading misses it; run it on a quiet machine. Needs Java 17.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, ratio, table  # noqa: E402

import boto3  # noqa: E402

JOB = """
from pyspark.sql import SparkSession
spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
         .config("spark.sql.shuffle.partitions", "4").getOrCreate())
out = __import__("sys").argv[0].rsplit("/", 1)[0] + "/out"
spark.createDataFrame([(i, str(i % 10)) for i in range(1000)], ["a", "b"]).write.mode("overwrite").parquet(out)
print(spark.read.parquet(out).groupBy("b").count().count())
spark.stop()
"""


def machine_cpu_seconds() -> float:
    """User + nice + system time of every CPU so far."""
    with open("/proc/stat") as stat:
        fields = stat.readline().split()[1:]
    return sum(int(f) for f in fields[:3]) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs starting from the archive")
    args = parser.parse_args()
    header("Spark job run on the emulator: JVM start from a class-data-sharing archive")
    os.environ.setdefault("PYSPARK_SUBMIT_ARGS",
                          "--driver-java-options '-XX:TieredStopAtLevel=1 -XX:+UseSerialGC' pyspark-shell")

    from sdlf_cli.local.context import EmulatorContext
    from sdlf_cli.local.runtime.glue_jobs import GlueJobRunner
    from sdlf_cli.local.runtime.spark_class_archive import FOLDER_NAME, SWITCH_VARIABLE
    from sdlf_cli.local.server import free_port, start

    with tempfile.TemporaryDirectory(prefix="sdlf-bench-cds-") as tmp:
        cache = Path(tmp) / "cache"
        emulator = start(EmulatorContext(host="127.0.0.1", port=free_port(), state_dir=Path(tmp) / "emulator",
                                         cache_dir=cache))
        runner = GlueJobRunner(emulator.context)
        try:
            s3 = boto3.client("s3", endpoint_url=emulator.endpoint_url, region_name="us-east-1")
            s3.create_bucket(Bucket="bench-scripts")
            s3.put_object(Bucket="bench-scripts", Key="job.py", Body=JOB.encode())

            def run(label: str, run_id: str) -> list[str]:
                cpu, wall = machine_cpu_seconds(), time.perf_counter()
                outcome = runner.execute("bench-spark", run_id, "s3://bench-scripts/job.py", {}, 30)
                cpu, wall = machine_cpu_seconds() - cpu, time.perf_counter() - wall
                if outcome.state != "SUCCEEDED":
                    raise SystemExit(f"{label}: {outcome.state} {outcome.error_message}\n{outcome.stderr[-2000:]}")
                return [label, f"{cpu:.1f}", f"{wall:.1f}"]

            os.environ[SWITCH_VARIABLE] = "off"
            rows = [run("without the archive (off)", "jr_off")]
            os.environ.pop(SWITCH_VARIABLE)
            rows.append(run("making it (first run)", "jr_make"))
            archives = list((cache / FOLDER_NAME).glob("*.jsa"))
            rows += [run(f"starting from it ({n + 1})", f"jr_use_{n}") for n in range(args.repeat)]
        finally:
            runner.close()
            emulator.stop()
        size = f"{archives[0].stat().st_size / 2**20:.0f} MiB" if archives else "none made"
        table([["run", "machine CPU s", "wall s"], *rows])
        print()
        print(f"archive: {size}; CPU without / starting from it: {ratio(float(rows[0][1]), float(rows[2][1]))}, "
              f"wall: {ratio(float(rows[0][2]), float(rows[2][2]))}")


if __name__ == "__main__":
    main()
