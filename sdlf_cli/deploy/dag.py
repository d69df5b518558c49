"""Run one action per stack in dependency order, each stack as soon as its own parents are done.

A ready pool, not waves: a slow stack holds back only its own descendants. A failed (or skipped)
stack marks every descendant `skipped` with the reason; independent stacks go on.
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

from sdlf_cli.deploy.model import StackResult, StackSpec
from sdlf_cli.errors import UsageError

if TYPE_CHECKING:
    import networkx as nx


# Stacks in flight at once. Wide enough for a level of a lake's datasets to provision together (the minutes
# go to remote provisioning, not to this process), narrow enough for CloudFormation's API: each stack in
# flight polls DescribeStacks and DescribeStackEvents every `StackDeployer.poll_interval` (3 s), so 12 stay
# near 4 DescribeStacks/s, under the ~5/s CloudFormation allows an account; beyond that the clients' adaptive
# retry mode (aws/session.py) backs the whole process off together, since every thread shares one client.
DEFAULT_MAX_WORKERS = 12


class DependencyCycleError(UsageError):
    """The stacks' depends_on form a cycle; the message shows it as "a -> b -> a"."""


class DuplicateStackError(UsageError):
    pass


def build_graph(specs: list[StackSpec]) -> nx.DiGraph:
    """Edge parent -> child. A dependency on a stack outside `specs` is taken as already deployed
    (deploying one team needs foundations to exist, not to be redeployed)."""
    import networkx as nx  # here, not with the module: it is 0.14 s of the start of every `sdlf` command

    graph = nx.DiGraph()
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise DuplicateStackError(f"stack {spec.name!r} appears twice in the plan")
        seen.add(spec.name)
        graph.add_node(spec.name)
    for spec in specs:
        for parent in spec.depends_on:
            if parent in seen:
                graph.add_edge(parent, spec.name)
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return graph
    path = [edge[0] for edge in cycle] + [cycle[0][0]]
    raise DependencyCycleError("dependency cycle: " + " -> ".join(path))


def run_stacks(
    specs: list[StackSpec],
    action: Callable[[StackSpec], StackResult],
    max_workers: int = DEFAULT_MAX_WORKERS,
    reporter=None,
) -> list[StackResult]:
    """Results in the order of `specs`. `reporter.stack_finished` (when given) hears about the
    stacks skipped here; the action reports the ones it runs."""
    graph = build_graph(specs)
    by_name = {spec.name: spec for spec in specs}
    results: dict[str, StackResult] = {}
    remaining_parents = {name: set(graph.predecessors(name)) for name in graph.nodes}

    def skip_descendants(name: str, why: str) -> None:
        from networkx import descendants

        for child in descendants(graph, name):
            if child in results:
                continue
            spec = by_name[child]
            results[child] = StackResult(child, spec.layer, "skipped", message=why)
            if reporter is not None:
                reporter.stack_finished(results[child])

    def safe_action(spec: StackSpec) -> StackResult:
        try:
            return action(spec)
        except Exception as err:  # a bug in one stack's action must not hang or kill the others
            return StackResult(spec.name, spec.layer, "failed", message=f"{type(err).__name__}: {err}")

    with ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="sdlf-stack") as pool:
        running: dict[Future, str] = {}

        def submit_ready() -> None:
            # Keep `specs` order among ready stacks so output is predictable.
            for spec in specs:
                name = spec.name
                if name in results or name in running.values() or remaining_parents[name]:
                    continue
                running[pool.submit(safe_action, spec)] = name

        submit_ready()
        while running:
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                name = running.pop(future)
                result = future.result()
                # Only this (main) thread touches the bookkeeping; workers just run actions.
                results[name] = result
                if result.status in ("failed", "skipped"):
                    skip_descendants(name, f"skipped: {name} {result.status}")
                for child in graph.successors(name):
                    remaining_parents[child].discard(name)
            submit_ready()
    return [results[spec.name] for spec in specs]
