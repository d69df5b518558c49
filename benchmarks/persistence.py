"""The emulator's saved state: what a snapshot of the dev lake weighs, how long a save and a restore take, and
what acknowledging every change only once it is saved costs stage A.

    .venv/bin/python benchmarks/persistence.py [--files 20] [--file-records 100]

Deploys the dev lake on the in-process emulator (as stage_a.py does), warms the workers with one file, then puts
--files small JSON-lines objects at once three times and waits for every catalog row to turn PROCESSED: in
memory only, with durable acknowledgements (sdlf_cli.local.persistence, as `sdlf local up` runs), and in
memory only again (so warming up does not favour either side). Then the final save, its size on disk, and a
restore into a fresh Python process (moto's imports included, as `sdlf local up` pays them).
Prints figures side by side; nothing is asserted.
"""
from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, pct, ratio, table  # noqa: E402
from _lake import dev_lake, wait_processed  # noqa: E402

RESTORE = """
import sys, time
started = time.perf_counter()
from sdlf_cli.local.persistence import snapshot
report = snapshot.load(__import__("pathlib").Path(sys.argv[1]))
print(report.seconds, time.perf_counter() - started)
"""


def burst(dev, ddb, table_name: str, files: int, records: int, run: str, timeout: float) -> dict:
    started = time.time()
    pending = dict(dev.put(i, records, run) for i in range(files))
    done = wait_processed(ddb, table_name, pending, timeout, 0.1)
    latencies = [r["processed"] for r in done.values() if r["status"] == "PROCESSED"]
    last = max((r["processed_at"] for r in done.values() if r["status"] == "PROCESSED"), default=time.time())
    return {"processed": len(latencies), "seconds": last - started, "p50": pct(latencies, 50),
            "p90": pct(latencies, 90)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--file-records", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()

    from sdlf_cli.local import persistence
    from sdlf_cli.local.persistence import snapshot

    with dev_lake("bper") as dev, tempfile.TemporaryDirectory(prefix="sdlf-bench-state-") as state:
        print(f"dev lake deployed in {dev.deploy_seconds:.1f} s ({dev.stacks} stacks); {dev.team}/{dev.dataset}")
        ddb, table_name = dev.clients.client("dynamodb"), dev.lake.registry.catalog_table
        burst(dev, ddb, table_name, 1, args.file_records, "warm", args.timeout)

        rounds = {"memory only": burst(dev, ddb, table_name, args.files, args.file_records, "m1", args.timeout)}
        ctx = dataclasses.replace(dev.emulator.context, state_dir=Path(state), persist=True)
        stop = persistence.install(ctx)
        committer_started = time.perf_counter()
        rounds["durable acks"] = burst(dev, ddb, table_name, args.files, args.file_records, "d1", args.timeout)
        durable_seconds = time.perf_counter() - committer_started
        started = time.perf_counter()
        stop()  # the final save
        final_save = time.perf_counter() - started
        rounds["memory only, again"] = burst(dev, ddb, table_name, args.files, args.file_records, "m2",
                                             args.timeout)
        saved = snapshot.saved_files(Path(state))
        size = sum(p.stat().st_size for p in saved)
        pickle_size = (Path(state) / snapshot.SNAPSHOT_FILE).stat().st_size
        restore = subprocess.run([sys.executable, "-c", RESTORE, state], capture_output=True, text=True, check=True)
        load_seconds, with_imports = (float(x) for x in restore.stdout.split())
        started = time.perf_counter()
        warm = snapshot.save(Path(state))
        warm_save = time.perf_counter() - started

    header(f"stage A, {args.files} files at once, put -> catalog PROCESSED")
    base = rounds["memory only"]["seconds"]
    table([["scenario", "processed", "last PROCESSED after", "p50", "p90", "vs memory only"]]
          + [[name, str(r["processed"]), f"{r['seconds']:.2f} s", f"{r['p50']:.2f} s", f"{r['p90']:.2f} s",
              ratio(r["seconds"], base)] for name, r in rounds.items()])
    header("the saved state")
    table([["figure", "value"],
           ["snapshot on disk (pickle + blobs)", f"{size / 1e6:.2f} MB in {len(saved)} file(s)"],
           ["pickle alone", f"{pickle_size / 1e6:.2f} MB"],
           ["final save (clean stop)", f"{final_save:.3f} s"],
           ["save with every blob present", f"{warm_save:.3f} s ({warm.size / 1e6:.2f} MB pickled)"],
           ["restore into a fresh process", f"{load_seconds:.2f} s ({with_imports:.2f} s with moto's imports)"],
           ["durable round", f"{durable_seconds:.1f} s"]])


if __name__ == "__main__":
    main()
