"""run_stacks: ready-pool ordering, cycles, skipping descendants of a failure."""
from __future__ import annotations

import threading

import pytest

from sdlf_cli.deploy import DependencyCycleError, StackResult, StackSpec, run_stacks


def s(name: str, *deps: str) -> StackSpec:
    return StackSpec(name=name, layer="team", template_body="{}", parameters={}, tags={}, depends_on=deps)


def ok(spec: StackSpec) -> StackResult:
    return StackResult(spec.name, spec.layer, "created")


def test_child_starts_while_an_unrelated_slow_stack_still_runs():
    child_started = threading.Event()
    order: list[str] = []
    lock = threading.Lock()

    def action(spec: StackSpec) -> StackResult:
        with lock:
            order.append(f"start {spec.name}")
        if spec.name == "slow":
            # Finishes only once the child of the other branch has started: with waves this would
            # time out, because the child would wait for the whole first wave.
            assert child_started.wait(timeout=10), "child did not start while the slow stack ran"
        if spec.name == "child":
            child_started.set()
        with lock:
            order.append(f"end {spec.name}")
        return ok(spec)

    results = run_stacks([s("slow"), s("parent"), s("child", "parent")], action, max_workers=3)
    assert [r.status for r in results] == ["created"] * 3
    assert order.index("end parent") < order.index("start child") < order.index("end slow")


def test_parents_always_finish_before_children():
    done: list[str] = []
    lock = threading.Lock()

    def action(spec: StackSpec) -> StackResult:
        with lock:
            assert all(p in done for p in spec.depends_on), f"{spec.name} started before {spec.depends_on}"
            done.append(spec.name)
        return ok(spec)

    specs = [
        s("dataset-a", "pipeline"), s("pipeline", "team"), s("team", "foundations"),
        s("foundations", "bootstrap"), s("bootstrap"), s("cicd", "bootstrap"),
    ]
    results = run_stacks(specs, action, max_workers=4)
    assert [r.name for r in results] == [spec.name for spec in specs]  # results in input order
    assert done.index("bootstrap") == 0


def test_cycle_is_reported_as_a_path():
    with pytest.raises(DependencyCycleError) as err:
        run_stacks([s("a", "b"), s("b", "a"), s("c")], ok)
    assert str(err.value) in ("dependency cycle: a -> b -> a", "dependency cycle: b -> a -> b")
    assert err.value.exit_code == 2


def test_failure_skips_descendants_and_independent_stacks_go_on():
    ran: list[str] = []
    skipped_reported: list[str] = []

    class Rep:
        def stack_finished(self, result):
            skipped_reported.append(result.name)

    def action(spec: StackSpec) -> StackResult:
        ran.append(spec.name)
        if spec.name == "team":
            return StackResult(spec.name, spec.layer, "failed", message="boom")
        return ok(spec)

    specs = [s("foundations"), s("team", "foundations"), s("pipeline", "team"), s("dataset", "pipeline"), s("other", "foundations")]
    results = {r.name: r for r in run_stacks(specs, action, max_workers=2, reporter=Rep())}
    assert results["team"].status == "failed"
    assert results["pipeline"].status == "skipped" and results["pipeline"].message == "skipped: team failed"
    assert results["dataset"].status == "skipped" and results["dataset"].message == "skipped: team failed"
    assert results["other"].status == "created"
    assert "pipeline" not in ran and "dataset" not in ran
    assert sorted(skipped_reported) == ["dataset", "pipeline"]


def test_action_exception_becomes_failed_result():
    def action(spec: StackSpec) -> StackResult:
        if spec.name == "a":
            raise RuntimeError("bug")
        return ok(spec)

    results = run_stacks([s("a"), s("b", "a"), s("c")], action)
    assert [(r.name, r.status) for r in results] == [("a", "failed"), ("b", "skipped"), ("c", "created")]
    assert results[0].message == "RuntimeError: bug"


def test_dependency_outside_the_set_counts_as_deployed():
    results = run_stacks([s("team", "foundations")], ok)
    assert results[0].status == "created"


def test_max_workers_bounds_parallelism():
    active = 0
    peak = 0
    lock = threading.Lock()
    gate = threading.Barrier(2, timeout=10)

    def action(spec: StackSpec) -> StackResult:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        if spec.name in ("a", "b"):
            gate.wait()
        with lock:
            active -= 1
        return ok(spec)

    run_stacks([s("a"), s("b"), s("c"), s("d")], action, max_workers=2)
    assert peak == 2
