"""The Lambda runtime's pools of warm workers: at most MAX_WORKERS_PER_FUNCTION per function, a released worker
goes to a thread waiting for that function at once, and one function's waiters do not hold up another's.

The worker processes are replaced by in-memory stand-ins (a subclass's `_spawn`): what is tested is the
manager's pooling, not the processes."""
from __future__ import annotations

import threading
from pathlib import Path

from sdlf_cli.local.runtime.workers import MAX_WORKERS_PER_FUNCTION, FunctionSpec, WorkerManager

# Below the 1 s after which a waiting thread looks again by itself: a wake-up sooner than this came from a release.
WOKEN_WITHIN_S = 0.8


class StandInWorker:
    def __init__(self, gate: threading.Event):
        self.gate = gate
        self.pid = 1

    def alive(self) -> bool:
        return True

    def kill(self) -> None:
        pass

    def invoke(self, request: dict, timeout_s: float):
        if not self.gate.wait(10):
            raise AssertionError("the test never opened the gate")
        return {"payload": "{}", "ok": True, "logs": ""}, "ok"


class StandInManager(WorkerManager):
    def __init__(self, tmp_path: Path):
        super().__init__(tmp_path, "http://127.0.0.1:1")
        self.gates: dict[str, threading.Event] = {}
        self.spawned: dict[str, int] = {}
        self.running: dict[str, int] = {}
        self.most_running: dict[str, int] = {}
        self.count_lock = threading.Lock()

    def _spawn(self, spec, code, layer_codes):
        with self.count_lock:
            self.spawned[spec.name] = self.spawned.get(spec.name, 0) + 1
        return CountingWorker(self, spec.name, self.gates.setdefault(spec.name, threading.Event()))


class CountingWorker(StandInWorker):
    def __init__(self, manager: StandInManager, name: str, gate: threading.Event):
        super().__init__(gate)
        self.manager, self.name = manager, name

    def invoke(self, request: dict, timeout_s: float):
        with self.manager.count_lock:
            running = self.manager.running[self.name] = self.manager.running.get(self.name, 0) + 1
            self.manager.most_running[self.name] = max(self.manager.most_running.get(self.name, 0), running)
        try:
            return super().invoke(request, timeout_s)
        finally:
            with self.manager.count_lock:
                self.manager.running[self.name] -= 1


def spec(name: str) -> FunctionSpec:
    return FunctionSpec(name=name, arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}", version="$LATEST",
                        handler="handler.handler", runtime="python3.12", timeout=30, memory_size=128,
                        environment={}, code_sha=name, layers=(), region="us-east-1")


def invoke_in_thread(manager: StandInManager, name: str, done: list) -> threading.Thread:
    def run():
        done.append(manager.invoke(spec(name), b"", [], {"n": 1}))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def wait_until(predicate, timeout: float = 5.0) -> bool:
    event = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return True
        event.wait(0.01)
    return predicate()


def test_a_burst_runs_on_at_most_the_pool_size_and_every_invocation_completes(tmp_path):
    manager = StandInManager(tmp_path)
    manager.gates["fn"] = threading.Event()
    done: list = []
    threads = [invoke_in_thread(manager, "fn", done) for _ in range(MAX_WORKERS_PER_FUNCTION * 5)]
    assert wait_until(lambda: manager.running.get("fn") == MAX_WORKERS_PER_FUNCTION)
    manager.gates["fn"].set()
    for thread in threads:
        thread.join(10)
    assert len(done) == MAX_WORKERS_PER_FUNCTION * 5 and not any(result.errored for result in done)
    assert manager.most_running["fn"] == MAX_WORKERS_PER_FUNCTION
    assert manager.spawned["fn"] == MAX_WORKERS_PER_FUNCTION  # the warm workers served the rest
    manager.close()


def test_a_released_worker_wakes_a_thread_waiting_for_its_function_at_once(tmp_path):
    manager = StandInManager(tmp_path)
    gate = manager.gates["fn"] = threading.Event()
    done: list = []
    busy = [invoke_in_thread(manager, "fn", done) for _ in range(MAX_WORKERS_PER_FUNCTION)]
    assert wait_until(lambda: manager.running.get("fn") == MAX_WORKERS_PER_FUNCTION)
    waiting = invoke_in_thread(manager, "fn", done)
    # Another function's releases meanwhile must not take the place of this function's own.
    other: list = []
    manager.gates["other"] = threading.Event()
    manager.gates["other"].set()
    for _ in range(3):
        invoke_in_thread(manager, "other", other).join(5)
    assert len(other) == 3 and len(done) == 0
    gate.set()  # every busy worker finishes; the waiting invocation gets one of them
    for thread in busy:
        thread.join(5)
    waiting.join(WOKEN_WITHIN_S)
    assert not waiting.is_alive(), "the waiting invocation was not handed the released worker"
    assert len(done) == MAX_WORKERS_PER_FUNCTION + 1
    manager.close()


def test_closing_wakes_the_waiting_threads_with_an_error(tmp_path):
    manager = StandInManager(tmp_path)
    manager.gates["fn"] = threading.Event()
    done: list = []
    for _ in range(MAX_WORKERS_PER_FUNCTION):
        invoke_in_thread(manager, "fn", done)
    assert wait_until(lambda: manager.running.get("fn") == MAX_WORKERS_PER_FUNCTION)
    errors: list = []

    def waiter():
        try:
            manager.invoke(spec("fn"), b"", [], {})
        except RuntimeError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=waiter, daemon=True)
    thread.start()
    pool = next(iter(manager._pools.values()))
    assert wait_until(lambda: len(pool.freed._waiters) == 1)  # it waits for a worker of its function
    manager.close()
    thread.join(WOKEN_WITHIN_S)
    assert not thread.is_alive() and errors == ["the Lambda runtime is stopped"]
    manager.gates["fn"].set()
