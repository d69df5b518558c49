"""What was running when the state was saved, after a restore: its threads and processes are gone.

- Step Functions executions that were RUNNING start again from their first state, with the same name and
  input. AWS does not lose a running execution; starting it over is what a restart can do, and it is safe
  because every task of the lake is idempotent (Step Functions itself runs a task at least once).
- Glue job runs that were RUNNING end FAILED, and crawls that were RUNNING end FAILED, with a message that
  says the emulator stopped: their subprocess is gone, and whatever waits on them (a `startJobRun.sync`
  task, a crawler wait loop) sees a failure its retries and catches handle.
- Lambda invocations in progress are simply gone: their SQS messages become visible again after the
  visibility timeout and are retried (then dead-lettered), as on AWS.
Pollers (SQS event source mappings) and schedules need nothing: they read moto's state on every pass.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

LOG = logging.getLogger(__name__)

STOPPED_MESSAGE = "the local emulator stopped while this ran (restored from its saved state)"


@dataclass
class Recovered:
    restarted_executions: list[str] = field(default_factory=list)
    failed_job_runs: list[str] = field(default_factory=list)
    failed_crawls: list[str] = field(default_factory=list)


def _execution_backends() -> list[Any]:
    from moto.core.base_backend import BackendDict

    found = []
    for backend_dict in list(BackendDict._instances):
        if backend_dict.backend.__name__ != "StepFunctionsParserBackend":
            continue
        found.extend(backend for _, _, backend in backend_dict.iter_backends())
    return found


def _glue_backends() -> list[Any]:
    from moto.glue.models import glue_backends

    return [backend for _, _, backend in glue_backends.iter_backends()]


def restart_executions(recovered: Recovered) -> None:
    for backend in _execution_backends():
        for machine in list(backend.state_machines):
            for execution in list(getattr(machine, "executions", [])):
                status = getattr(execution.exec_status, "value", execution.exec_status)
                if status != "RUNNING" or execution.exec_worker is not None:
                    continue
                execution.start()
                recovered.restarted_executions.append(execution.exec_arn)


def fail_interrupted_glue(recovered: Recovered) -> None:
    from sdlf_cli.local.runtime.crawler import _end_crawl
    from sdlf_cli.local.runtime.glue_jobs import RunOutcome, _finish

    for backend in _glue_backends():
        for job in list(backend.jobs.values()):
            for run in list(job.job_runs):
                if run.__dict__.get("sdlf_state") == "RUNNING":
                    _finish(run, RunOutcome("FAILED", STOPPED_MESSAGE, "", "", 0.0))
                    recovered.failed_job_runs.append(f"{job.name}/{run.job_run_id}")
        for crawler in list(backend.crawlers.values()):
            for crawl in list(crawler.crawls):
                if crawl.__dict__.get("sdlf_state") in ("RUNNING", "STOPPING"):
                    _end_crawl(crawl, "FAILED", STOPPED_MESSAGE)
                    recovered.failed_crawls.append(crawler.name)


def recover() -> Recovered:
    """Call once the execution parts are installed (a restarted execution calls Lambda right away)."""
    recovered = Recovered()
    fail_interrupted_glue(recovered)
    restart_executions(recovered)
    if recovered.restarted_executions or recovered.failed_job_runs or recovered.failed_crawls:
        LOG.info("after the restore: %d execution(s) started again, %d Glue job run(s) and %d crawl(s) ended FAILED",
                 len(recovered.restarted_executions), len(recovered.failed_job_runs), len(recovered.failed_crawls))
    return recovered
