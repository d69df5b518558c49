"""`sdlf run-stage-b`'s workflow with fake gateways: while another batch of the dataset runs, the router refuses;
the workflow waits for that batch, asks again, and then waits for its own."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from sdlf_cli.aws.functions import Invocation
from sdlf_cli.config.loader import load_config
from sdlf_cli.workflows.stage_b import run_stage_b

ROOT = Path(__file__).resolve().parents[2]
RUNNING_ARN = "arn:aws:states:eu-west-1:1:execution:sm-b:legislators-b-aaa"
OURS_ARN = "arn:aws:states:eu-west-1:1:execution:sm-b:legislators-b-bbb"


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Functions:
    def __init__(self, answers: list[dict]):
        self.answers = answers
        self.invoked: list[tuple[str, dict]] = []

    def invoke(self, name: str, event: dict) -> Invocation:
        self.invoked.append((name, event))
        return Invocation(self.answers.pop(0), None)


class StateMachines:
    """Each execution is RUNNING for `polls` looks, then SUCCEEDED with `output`."""

    def __init__(self, polls: int, output: str | None = None):
        self.polls = polls
        self.output = output
        self.looks: dict[str, int] = {}

    def describe_execution(self, arn: str) -> dict:
        self.looks[arn] = self.looks.get(arn, 0) + 1
        if self.looks[arn] <= self.polls:
            return {"status": "RUNNING"}
        return {"status": "SUCCEEDED", **({"output": self.output} if self.output is not None else {})}

    def newest_events(self, arn: str, limit: int = 50) -> list[dict]:
        return []


def _lake(answers: list[dict], polls: int = 3, output: str | None = None):
    cfg = load_config("dev", ROOT / "parameters")
    return SimpleNamespace(config=cfg, functions=Functions(answers), state_machines=StateMachines(polls, output))


BUSY = {"started": False, "busy": True, "reason": "batch legislators-b-aaa of engineering/legislators is RUNNING",
        "running_execution": RUNNING_ARN}
STARTED = {"started": True, "batch_id": "bbb", "objects": 2, "execution_arn": OURS_ARN}


def test_a_running_batch_is_waited_for_then_the_router_is_asked_again():
    clock = Clock()
    lake = _lake([BUSY, STARTED])
    run = run_stage_b(lake, "engineering", "legislators", sleep=clock.sleep, clock=clock)
    assert run.started and run.status == "SUCCEEDED" and run.waited_for == [RUNNING_ARN]
    assert lake.state_machines.looks == {RUNNING_ARN: 4, OURS_ARN: 4}
    assert [event for _, event in lake.functions.invoked] == [
        {"team": "engineering", "dataset": "legislators", "force": True}] * 2


def test_without_wait_the_refusal_is_the_answer():
    lake = _lake([BUSY])
    run = run_stage_b(lake, "engineering", "legislators", wait=False)
    assert not run.started and "is RUNNING" in run.reason and run.waited_for == [] and run.ok


def test_an_empty_queue_is_not_retried_and_the_deadline_bounds_the_wait():
    assert not run_stage_b(_lake([{"started": False, "reason": "the stage-B queue has no objects"}]),
                           "engineering", "legislators").started
    clock = Clock()
    lake = _lake([BUSY, BUSY], polls=1000)
    run = run_stage_b(lake, "engineering", "legislators", timeout=30, sleep=clock.sleep, clock=clock)
    assert not run.started and run.waited_for == [RUNNING_ARN] and clock.now <= 31


def test_the_inputs_the_batch_rejected_are_in_the_answer():
    rejected = [{"uri": "s3://stage/engineering/legislators/bad.jsonl", "reason": "schema drift in ... line 2"}]
    output = json.dumps({"post": {"status": "SUCCEEDED", "rejected": rejected}})
    clock = Clock()
    run = run_stage_b(_lake([STARTED], polls=0, output=output), "engineering", "legislators", sleep=clock.sleep,
                      clock=clock)
    assert run.status == "SUCCEEDED" and run.ok and run.rejected == rejected
    assert run.to_dict()["rejected"] == rejected
    clock = Clock()
    plain = run_stage_b(_lake([STARTED], polls=0, output="{}"), "engineering", "legislators", sleep=clock.sleep,
                        clock=clock)
    assert plain.rejected == []
