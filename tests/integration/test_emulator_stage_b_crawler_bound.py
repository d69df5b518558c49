"""sm-b waits for its crawler a bounded number of polls: the loop states of the rendered pipeline template, run
on the emulator's Step Functions with the crawler never READY, end at HandleError with CrawlerTimedOut."""
from __future__ import annotations

import json
import time

from tests.integration.test_emulator_runtime_helpers import client, role_arn, unique
from tests.unit.test_layer_templates import _definition, parsed


def test_a_crawl_that_never_ends_fails_the_batch_after_the_maximum_of_polls(emulator):
    _, definition = _definition(parsed("pipeline", "eng/main"), "sm-b")
    states = definition["States"]
    bound = states["PolledTooLong"]["Choices"][0]["NumericGreaterThanEquals"]
    assert states["CrawlerReady"]["Default"] == "CountPoll" and states["PolledTooLong"]["Default"] == "WaitCrawler"
    assert states["CrawlerTimedOut"]["Next"] == "HandleError"

    # The template's loop as it is, with the waiting and the crawler replaced: GetCrawler says RUNNING forever.
    loop = {name: states[name] for name in ("StartPolls", "CrawlerReady", "CountPoll", "PolledTooLong", "CrawlerTimedOut")}
    loop["WaitCrawler"] = {"Type": "Pass", "Next": "GetCrawler"}
    loop["GetCrawler"] = {"Type": "Pass", "Result": {"Crawler": {"State": "RUNNING"}}, "ResultPath": "$.crawler_state",
                          "Next": "CrawlerReady"}
    loop["Quality"] = {"Type": "Succeed"}
    loop["CrawlerFailed"] = {"Type": "Fail", "Error": "unexpected"}
    loop["HandleError"] = {"Type": "Succeed"}
    sfn = client(emulator, "stepfunctions")
    machine = sfn.create_state_machine(name=unique("crawler-bound"), roleArn=role_arn(emulator),
                                       definition=json.dumps({"StartAt": "StartPolls", "States": loop}))
    arn = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name=unique("run"), input="{}")["executionArn"]
    deadline = time.monotonic() + 120
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert described["status"] == "SUCCEEDED", described
    output = json.loads(described["output"])
    assert output["crawler_polls"] == {"n": bound} and output["error"]["Error"] == "CrawlerTimedOut"
    assert f"after {bound} polls" in output["error"]["Cause"]
