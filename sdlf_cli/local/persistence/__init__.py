"""The emulator's state survives a restart, a clean stop and a kill -9 (the background emulator of
`sdlf local up`; the in-process emulator of the tests keeps its state in memory only).

- `snapshot`: every moto backend in use pickled to `<state dir>/state.pickle` (+ `blobs/`), restored on start;
- `durable_acks`: a request that changes state is answered only once a snapshot holding it is on disk, so
  what a client was told happened is there after a kill -9 (why this design: its docstring);
- `recovery`: what was running when the state was saved (Step Functions executions, Glue job runs, crawls).

`RESTORED_FILE` tells `sdlf local up` what the start restored. `sdlf local reset` removes the saved state.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable

from sdlf_cli.local.context import EmulatorContext

LOG = logging.getLogger(__name__)

RESTORED_FILE = "restored.json"


def restore(ctx: EmulatorContext) -> dict | None:
    """Loads the saved state into moto (before the execution parts start); what was loaded, or None."""
    from sdlf_cli.local.persistence import snapshot

    (ctx.state_dir / RESTORED_FILE).unlink(missing_ok=True)
    report = snapshot.load(ctx.state_dir)
    if report is None:
        return None
    LOG.info("restored %s (saved %s; %d services) in %.2f s", report.path, report.saved_at, len(report.services),
             report.seconds)
    return {"path": str(report.path), "saved_at": report.saved_at, "services": report.services,
            "seconds": round(report.seconds, 3)}


def install(ctx: EmulatorContext) -> Callable[[], None]:
    """Saves after every change from now on (durable acknowledgements); returns the stop function, which
    saves the final state."""
    from sdlf_cli.local.persistence import durable_acks, snapshot

    committer = durable_acks.Committer(lambda: snapshot.save(ctx.state_dir))
    committer.start()
    durable_acks.install(committer)

    def stop() -> None:
        committer.close()
        durable_acks.uninstall()
        report = committer.last_report
        if report is not None:
            LOG.info("state saved to %s (%d bytes, %d saves, %.1f s saving in all)", report.path, report.size,
                     committer.saves, committer.save_seconds)

    return stop


def recover(ctx: EmulatorContext, restored: dict | None) -> None:
    """Restarts what the restored state says was running, and records the restore for `sdlf local up`."""
    from sdlf_cli.local.persistence import recovery

    if restored is None:
        return
    recovered = recovery.recover()
    restored = {**restored, "restarted_executions": len(recovered.restarted_executions),
                "failed_job_runs": len(recovered.failed_job_runs), "failed_crawls": len(recovered.failed_crawls)}
    (ctx.state_dir / RESTORED_FILE).write_text(json.dumps(restored) + "\n")


def read_restored(state_dir: Path) -> dict | None:
    try:
        return json.loads((state_dir / RESTORED_FILE).read_text())
    except (OSError, ValueError):
        return None
