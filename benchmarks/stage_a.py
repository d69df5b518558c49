"""Stage A: the default light transform per input format, and put_object -> catalog PROCESSED on the emulator.

    .venv/bin/python benchmarks/stage_a.py [--records 50000] [--repeat 3] [--files 20] [--burst 200]
                                           [--file-records 100] [--burst-poll 3.0] [--skip-transform] [--skip-e2e]

Part 1 runs the `default` transform (lambda/layers/datalake/python/sdlf_datalake/transforms) in-process on the
same flat records written as JSON lines, a JSON array document, CSV with a header, and gzip JSON lines;
the runs are interleaved (every format once, then again) and the best of --repeat is compared with JSON lines.

Part 2 starts the in-process emulator, deploys the dev lake (parameters/dev.yaml under another env name,
as tests/integration/test_stage_a_e2e.py does; the stage-B schedule is set to rate(1 day) so no stage-B
batch runs during the measurement), then puts --files small JSON-lines objects into the raw bucket one at a
time (each waited for), then --burst more all at once, and reports the latency from put_object to the
object's catalog row turning PROCESSED (its `updated_at`; RECEIVED is its `created_at`), the throughput,
and the CPU time each scenario cost per file (the emulator in this process, its Lambda workers, and this
client's own threads apart, from /proc and the threads' CPU clocks).
Prints figures side by side; nothing is asserted.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import os
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ThreadSampler, header, pct, process_tree_cpu, ratio, summary, table  # noqa: E402
from _lake import dev_lake, file_body  # noqa: E402
from _lake import wait_processed_batched as wait_catalog  # noqa: E402

from sdlf_datalake.transforms import RawObject, get_transform  # noqa: E402

COUNTRIES = ["NO", "SE", "PT", "FR", "IT", "PL", "EE"]


# --- part 1: the light transform -------------------------------------------------------------------------
def flat_records(count: int, seed: int = 11) -> list[dict]:
    """Flat records (CSV cannot hold nesting): every format carries the very same fields and values."""
    rng = random.Random(seed)
    return [
        {
            "id": str(n),
            "name": f"person {rng.randrange(100_000)}",
            "email": "" if rng.random() < 0.1 else f"p{n}@example.com",
            "country": rng.choice(COUNTRIES),
            "amount": f"{rng.uniform(1, 5000):.2f}",
            "active": "true" if rng.random() < 0.7 else "false",
            "comment": "said \"hi\", then left" if rng.random() < 0.05 else "",
            "updated_at": f"2024-05-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:00:00Z",
        }
        for n in range(count)
    ]


def encodings(records: list[dict]) -> dict[str, tuple[str, bytes]]:
    jsonl = ("\n".join(json.dumps(r, separators=(",", ":")) for r in records) + "\n").encode()
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(records[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return {
        "JSON lines": ("people.jsonl", jsonl),
        "JSON array": ("people.json", json.dumps(records, separators=(",", ":")).encode()),
        "CSV": ("people.csv", out.getvalue().encode()),
        "gzip JSON lines": ("people.jsonl.gz", gzip.compress(jsonl, compresslevel=6, mtime=0)),
    }


def bench_transform(records: int, repeat: int) -> None:
    transform = get_transform("default")
    data = encodings(flat_records(records))
    times: dict[str, list[float]] = {name: [] for name in data}
    counts: dict[str, int] = {}
    outputs: dict[str, bytes] = {}
    for _ in range(repeat):
        for name, (file_name, body) in data.items():
            obj = RawObject(bucket="raw", key=f"team/people/{file_name}", team="team", dataset="people", body=body)
            started = time.perf_counter()
            (out,) = transform(obj)
            times[name].append(time.perf_counter() - started)
            counts[name], outputs[name] = out.records, out.body
    base = min(times["JSON lines"])
    rows = [["format", "input MB", "text MB", "records", f"best of {repeat}", "MB/s (input)", "MB/s (text)",
             "records/s", "time vs JSON lines"]]
    for name, (_, body) in data.items():
        best = min(times[name])
        text = len(gzip.decompress(body)) if name.startswith("gzip") else len(body)
        rows.append([name, f"{len(body) / 1e6:.2f}", f"{text / 1e6:.2f}", f"{counts[name]:,}", f"{best:.3f} s",
                     f"{len(body) / 1e6 / best:.1f}", f"{text / 1e6 / best:.1f}", f"{counts[name] / best:,.0f}",
                     ratio(best, base)])
    table(rows)
    print("all runs (s): " + "; ".join(f"{n} " + " ".join(f"{t:.3f}" for t in ts) for n, ts in times.items()))
    json_like = {outputs[n] for n in ("JSON lines", "JSON array", "gzip JSON lines")}
    print(f"same JSON-lines output from the JSON formats: {'yes' if len(json_like) == 1 else 'NO'}; "
          f"CSV output equal too: {'yes' if outputs['CSV'] in json_like else 'no (CSV values are strings)'}")


# --- part 2: end to end on the emulator -------------------------------------------------------------------
def cpu_spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds by process between two readings."""
    spent = {part: seconds - before.get(part, 0.0) for part, seconds in after.items()}
    return {part: seconds for part, seconds in spent.items() if seconds > 0.005}


def bench_e2e(files: int, burst_files: int, file_records: int, timeout: float, poll: float, burst_poll: float,
              profile: bool = False) -> None:
    env = "bsta"
    with dev_lake(env) as dev:
        print(f"dev lake deployed on the emulator as env {env!r} ({dev.stacks} stacks) "
              f"in {dev.deploy_seconds:.1f} s; dataset {dev.team}/{dev.dataset}")
        ctx = dev.emulator.context
        print(f"emulator in this process: state {'saved, durable acks (--persist on)' if ctx.persist else 'in memory only (--persist off)'}, "
              f"IAM policies {'enforced' if ctx.iam else 'not enforced'}")
        resources = dev.lake.registry
        table_name = resources.catalog_table
        ddb = dev.clients.client("dynamodb")
        size = len(file_body(0, file_records, "x"))
        print(f"JSON-lines files of {file_records} records ({size / 1e3:.1f} kB): {files} one at a time, "
              f"a burst of {burst_files}; catalog polled every {poll * 1000:.0f} ms (during the burst every "
              f"{burst_poll * 1000:.0f} ms: latencies are read from the rows' own timestamps, and the polls share the "
              "emulator's CPU with the work measured)")

        # The client (puts and catalog polls) runs in this process too: its threads' CPU is counted here and
        # taken out of the emulator's share, which is what AWS would spend.
        client_cpu = [0.0]
        client_lock = threading.Lock()

        def put(index: int, run: str) -> tuple[str, float]:
            started = time.thread_time()
            try:
                return dev.put(index, file_records, run)
            finally:
                with client_lock:
                    client_cpu[0] += time.thread_time() - started

        def wait_processed(*args: object) -> dict[str, dict]:
            started = time.thread_time()
            try:
                return wait_catalog(*args)
            finally:
                with client_lock:
                    client_cpu[0] += time.thread_time() - started

        def client_spent(cpu: dict[str, float]) -> dict[str, float]:
            """Per process, with this client's own CPU since the last call moved out of the emulator's."""
            with client_lock:
                spent, client_cpu[0] = client_cpu[0], 0.0
            cpu = dict(cpu)
            cpu["emulator"] = cpu.get("emulator", 0.0) - spent
            cpu["this client (puts, catalog polls)"] = spent
            return cpu

        # warm-up: the first invocation of each function starts its warm worker; not measured.
        uri, put_at = put(0, "warm")
        warm = wait_processed(ddb, table_name, {uri: put_at}, timeout, poll)[uri]
        print(f"warm-up file (cold workers, not counted): {warm['status']} after {warm['observed']:.2f} s")
        print()

        sequential: dict[str, dict] = {}
        sequential_first_put = time.time()
        client_spent({})
        cpu_before = process_tree_cpu()
        for i in range(files):
            uri, put_at = put(i, "seq")
            sequential.update(wait_processed(ddb, table_name, {uri: put_at}, timeout, poll))
        cpu_sequential = client_spent(cpu_spent(cpu_before, process_tree_cpu()))
        sampler = ThreadSampler() if profile else None
        print(f"[{time.strftime('%H:%M:%S')}] burst of {burst_files} starts", file=sys.stderr, flush=True)
        cpu_before = process_tree_cpu()
        # The puts themselves from 8 threads: one producer's sequential PutObjects (each waits for S3's
        # EventBridge fan-out) would otherwise pace the burst.
        with ThreadPoolExecutor(max_workers=8) as producers:
            burst_pending = dict(producers.map(lambda i: put(i, "burst"), range(burst_files)))
        put_span = max(burst_pending.values()) - min(burst_pending.values())
        burst_first_put = min(burst_pending.values())
        burst = wait_processed(ddb, table_name, burst_pending, timeout, burst_poll)
        cpu_burst = client_spent(cpu_spent(cpu_before, process_tree_cpu()))
        load = os.getloadavg()[0]
        if sampler is not None:
            sampler.stop()

    def column(results: dict[str, dict], field: str) -> list[float]:
        return [r[field] for r in results.values() if r["status"] == "PROCESSED"]

    rows = [["put_object -> catalog", f"one at a time ({files} files)", f"all at once ({burst_files} files)",
             "at once / one at a time (p50)"]]
    for label, field in (("RECEIVED (created_at)", "received"), ("PROCESSED (updated_at)", "processed"),
                         ("PROCESSED seen by the poller", "observed")):
        seq, bur = column(sequential, field), column(burst, field)
        for q in (50, 95):
            rows.append([f"{label} p{q}", f"{pct(seq, q):.2f} s", f"{pct(bur, q):.2f} s",
                         ratio(pct(bur, 50), pct(seq, 50)) if q == 50 else ""])
    for name, results in (("one at a time", sequential), ("all at once", burst)):
        bad = {u: r for u, r in results.items() if r["status"] != "PROCESSED"}
        if bad:
            print(f"{name}: {len(bad)} file(s) not PROCESSED: " +
                  "; ".join(f"{u.rsplit('/', 1)[-1]} {r['status']} {r.get('reason', '')}" for u, r in bad.items()))
    table(rows)
    print()
    print(f"one at a time: PROCESSED {summary(column(sequential, 'processed'))}")
    print(f"all at once:   PROCESSED {summary(column(burst, 'processed'))} (puts spread over {put_span:.2f} s)")
    for name, results, first_put in (("one at a time", sequential, sequential_first_put),
                                     ("all at once", burst, burst_first_put)):
        done = column(results, "processed_at")
        if done:
            span = max(done) - first_put
            print(f"{name + ':':14} first put -> last PROCESSED {span:5.2f} s = {len(done) / span:.1f} files/s through stage A")
    cores = len(os.sched_getaffinity(0))
    for name, results, spent in (("one at a time", sequential, cpu_sequential), ("all at once", burst, cpu_burst)):
        done, cpu = len(column(results, "processed")), sum(spent.values())
        if done:
            print(f"{name + ':':14} CPU (emulator + Lambda workers + this client) {cpu:6.2f} s = {cpu / done * 1000:4.0f} ms "
                  f"per file; {cores} cores / CPU per file = {cores * done / cpu:.1f} files/s ceiling")
            print(" " * 15 + "per file: " + ", ".join(f"{part} {seconds / done * 1000:.0f} ms"
                                                      for part, seconds in sorted(spent.items(), key=lambda i: -i[1])))
            emulator = spent.get("emulator", 0.0) / done
            if emulator > 0:
                print(" " * 15 + f"the emulator is one interpreter (one GIL): 1 / its CPU per file = {1 / emulator:.1f} files/s ceiling")
    print(f"load average at the end of the burst: {load:.1f} ({cores} cores)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000, help="records per format (part 1)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per format (part 1)")
    parser.add_argument("--files", type=int, default=20, help="files put one at a time (part 2)")
    parser.add_argument("--burst", type=int, default=200, help="files put all at once (part 2)")
    parser.add_argument("--file-records", type=int, default=100, help="records per file (part 2)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for a file or the burst (part 2)")
    parser.add_argument("--poll", type=float, default=0.05, help="catalog poll interval in seconds (part 2)")
    parser.add_argument("--burst-poll", type=float, default=3.0,
                        help="catalog poll interval in seconds while waiting for the burst (part 2)")
    parser.add_argument("--skip-transform", action="store_true")
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--profile", action="store_true",
                        help="sample the emulator's threads during the burst and print where they were (part 2)")
    args = parser.parse_args()

    header("stage A: default light transform per format; put_object -> catalog PROCESSED on the emulator")
    if not args.skip_transform:
        print(f"## default transform, in-process, {args.records:,} flat records per format")
        bench_transform(args.records, args.repeat)
        print()
    if not args.skip_e2e:
        print("## end to end on the in-process emulator")
        bench_e2e(args.files, args.burst, args.file_records, args.timeout, args.poll, args.burst_poll, args.profile)


if __name__ == "__main__":
    main()
