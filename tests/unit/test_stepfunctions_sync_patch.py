"""The `.sync` patch (sdlf_cli/local/runtime/stepfunctions.py, SYNC_PATCH) gives a task of a service without
`.waitForTaskToken` a callback endpoint without touching the task's component: executions of one definition
share their components, so a change made for one evaluation would be seen by the others running at once."""
from __future__ import annotations

import threading

from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    ResourceCondition,
)

from sdlf_cli.local.runtime import stepfunctions


class _Context:
    def __init__(self):
        self.context_object_data: dict = {}

    def update_task_token(self) -> str:
        self.context_object_data["Task"] = {"Token": f"token-{threading.get_ident()}"}
        return self.context_object_data["Task"]["Token"]


class _Env:
    def __init__(self):
        self.states = type("States", (), {})()
        self.states.context_object = _Context()
        self.callback_pool_manager = type("Pool", (), {"add": lambda _self, token: self.tokens.append(token)})()
        self.tokens: list = []


class _GlueTask:
    def __init__(self):
        self._supported_integration_patterns = frozenset({ResourceCondition.Sync})
        self.resource = "glue:startJobRun.sync"


def test_two_evaluations_at_once_each_get_a_token_and_the_shared_component_is_left_as_it_was():
    component, inside, release = _GlueTask(), threading.Barrier(2), threading.Event()
    seen: list = []

    def original(task, env):
        # What moto's _eval_integration_pattern reads: the patterns, then the token in the context object.
        assert ResourceCondition.WaitForTaskToken in task._supported_integration_patterns
        token = env.states.context_object.context_object_data["Task"]["Token"]
        assert task is not component and task.resource is component.resource
        assert component._supported_integration_patterns == {ResourceCondition.Sync}
        inside.wait(timeout=5)  # both evaluations are inside at once
        release.wait(timeout=5)
        seen.append(token)
        return token

    patched = stepfunctions._sync_without_task_token(original)
    envs = [_Env(), _Env()]
    threads = [threading.Thread(target=patched, args=(component, env)) for env in envs]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(seen) == sorted(env.tokens[0] for env in envs) and len(set(seen)) == 2
    assert all("Task" not in env.states.context_object.context_object_data for env in envs)  # reset after the task
    assert component._supported_integration_patterns == {ResourceCondition.Sync}


def test_a_service_with_wait_for_task_token_is_left_to_moto():
    env, component = _Env(), _GlueTask()
    component._supported_integration_patterns = {ResourceCondition.WaitForTaskToken}
    assert stepfunctions._sync_without_task_token(lambda task, env: task)(component, env) is component
    assert env.tokens == []
