"""Plain, live and quiet reporters; the reporter factory."""
from __future__ import annotations

import io
import threading
from datetime import datetime, timezone

from rich.console import Console

from sdlf_cli.aws.cloudformation import StackEvent
from sdlf_cli.deploy import Failure, StackResult, StackSpec
from sdlf_cli.ui import LiveReporter, PlainReporter, QuietReporter, make_reporter

WALL = datetime(2025, 6, 1, 12, 30, 45, tzinfo=timezone.utc)
SPEC = StackSpec(name="lake-dev-team-a", layer="team", template_body="{}", parameters={}, tags={})


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def event(status="CREATE_FAILED", reason="Bucket already exists", logical="RawBucket"):
    return StackEvent("id1", "lake-dev-team-a", logical, "AWS::S3::Bucket", status, reason,
                      datetime(2025, 6, 1, 12, 31, 2, tzinfo=timezone.utc))


def plain(clock=None):
    out = io.StringIO()
    return PlainReporter(out, clock=clock or Clock(), wall=lambda: WALL, tz=timezone.utc), out


def test_plain_prints_one_line_per_event():
    reporter, out = plain()
    reporter.stack_started(SPEC)
    reporter.event(SPEC.name, event())
    reporter.event(SPEC.name, event("CREATE_IN_PROGRESS", None, "Queue"))
    assert out.getvalue().splitlines() == [
        "12:30:45 lake-dev-team-a START team",
        "12:31:02 lake-dev-team-a CREATE_FAILED AWS::S3::Bucket RawBucket Bucket already exists",
        "12:31:02 lake-dev-team-a CREATE_IN_PROGRESS AWS::S3::Bucket Queue",
    ]


def test_plain_heartbeat_every_30_seconds_while_waiting():
    clock = Clock()
    reporter, out = plain(clock)
    reporter.stack_started(SPEC)
    for t in (0, 2, 10, 28):
        clock.now = 100.0 + t
        reporter.status(SPEC.name, "UPDATE_IN_PROGRESS, waiting")
    assert len(out.getvalue().splitlines()) == 2  # start + the first status; repeats are quiet
    clock.now = 130.0
    reporter.status(SPEC.name, "UPDATE_IN_PROGRESS, waiting")
    clock.now = 140.0
    reporter.status(SPEC.name, "UPDATE_IN_PROGRESS, waiting")
    clock.now = 161.0
    reporter.status(SPEC.name, "UPDATE_IN_PROGRESS, waiting")
    lines = out.getvalue().splitlines()
    assert lines[1:] == [
        "12:30:45 lake-dev-team-a UPDATE_IN_PROGRESS, waiting",
        "12:30:45 lake-dev-team-a still waiting: UPDATE_IN_PROGRESS, waiting (30.0s elapsed)",
        "12:30:45 lake-dev-team-a still waiting: UPDATE_IN_PROGRESS, waiting (1m01s elapsed)",
    ]


def test_plain_event_resets_heartbeat_and_new_status_prints_at_once():
    clock = Clock()
    reporter, out = plain(clock)
    reporter.stack_started(SPEC)
    reporter.status(SPEC.name, "waiting")
    clock.now = 125.0
    reporter.event(SPEC.name, event("UPDATE_IN_PROGRESS", None))
    clock.now = 140.0
    reporter.status(SPEC.name, "waiting")  # only 15 s since the event line
    clock.now = 141.0
    reporter.status(SPEC.name, "executing change set")
    assert [l.split(" ", 2)[2] for l in out.getvalue().splitlines()] == [
        "START team", "waiting", "UPDATE_IN_PROGRESS AWS::S3::Bucket RawBucket", "executing change set",
    ]


def test_plain_finished_line_with_root_cause():
    reporter, out = plain()
    failure = Failure("RawBucket", "AWS::S3::Bucket", "CREATE_FAILED", "Bucket already exists")
    reporter.stack_finished(StackResult(SPEC.name, "team", "failed", failure=failure, duration=72.0, message="create failed"))
    assert out.getvalue().splitlines() == [
        "12:30:45 lake-dev-team-a FAILED in 1m12s: create failed",
        "12:30:45 lake-dev-team-a root cause: RawBucket (AWS::S3::Bucket) CREATE_FAILED: Bucket already exists",
    ]


def test_plain_lines_never_interleave_across_threads():
    reporter, out = plain()

    def work(n):
        for i in range(200):
            reporter.status(f"stack-{n}", f"message {i}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = out.getvalue().splitlines()
    assert len(lines) == 800
    assert all(line.startswith("12:30:45 stack-") and " message " in line for line in lines)


def test_live_reporter_shows_table_and_collected_failures():
    out = io.StringIO()
    clock = Clock()
    console = Console(file=out, force_terminal=True, width=200, color_system=None)
    reporter = LiveReporter(console, clock=clock, auto_refresh=False)
    reporter.stack_started(SPEC)
    reporter.event(SPEC.name, event("CREATE_FAILED", "Resource creation cancelled", "Queue"))  # cascade: not collected
    reporter.event(SPEC.name, event())
    clock.now = 112.5
    reporter.stack_finished(StackResult(SPEC.name, "team", "failed", duration=12.5, message="create failed",
                                        failure=Failure("RawBucket", "AWS::S3::Bucket", "CREATE_FAILED", "Bucket already exists")))
    reporter.close()
    render = io.StringIO()
    Console(file=render, width=200, color_system=None).print(reporter.renderable())
    text = render.getvalue()
    assert "lake-dev-team-a" in text and "failed" in text and "12.5s" in text
    assert text.count("Bucket already exists") == 1  # event reason and root cause collected once
    assert "Resource creation cancelled" not in text.split("failures:")[1]
    assert "failures:" in out.getvalue()


def test_factory_picks_by_output_tty_and_ci():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert isinstance(make_reporter("json", Tty(), env={}), QuietReporter)
    assert type(make_reporter("json", Tty(), env={})) is QuietReporter
    assert isinstance(make_reporter("text", io.StringIO(), env={}), PlainReporter)
    assert isinstance(make_reporter("text", Tty(), env={"CI": "true"}), PlainReporter)
    assert isinstance(make_reporter("text", Tty(), env={"TERM": "dumb"}), PlainReporter)
    live = make_reporter("text", Tty(), env={"TERM": "xterm"})
    assert isinstance(live, LiveReporter)
    live.close()


def test_quiet_reporter_prints_nothing(capsys):
    reporter = QuietReporter()
    with reporter:
        reporter.stack_started(SPEC)
        reporter.event(SPEC.name, event())
        reporter.status(SPEC.name, "x")
        reporter.stack_finished(StackResult(SPEC.name, "team", "created"))
    assert capsys.readouterr() == ("", "")


def test_live_reporter_from_many_threads_keeps_every_stack():
    out = io.StringIO()
    reporter = LiveReporter(Console(file=out, force_terminal=True, width=200, color_system=None), auto_refresh=False)

    def work(n):
        spec = StackSpec(name=f"stack-{n}", layer="team", template_body="{}", parameters={}, tags={})
        reporter.stack_started(spec)
        for i in range(50):
            reporter.status(spec.name, f"poll {i}")
        reporter.stack_finished(StackResult(spec.name, "team", "created", duration=1.0, message="CREATE_COMPLETE"))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reporter.close()
    render = io.StringIO()
    Console(file=render, width=200, color_system=None).print(reporter.renderable())
    text = render.getvalue()
    assert all(f"stack-{n}" in text for n in range(4))
    assert text.count("created") == 4
