"""The deploy engine: stack specs -> change sets -> results, in dependency order."""
from __future__ import annotations

from sdlf_cli.deploy.dag import DependencyCycleError, build_graph, run_stacks
from sdlf_cli.deploy.model import FINGERPRINT_TAG, Change, Failure, StackResult, StackSpec
from sdlf_cli.deploy.reporter import NullReporter, Reporter
from sdlf_cli.deploy.stack_deployer import StackDeployer, WaitTimeout

__all__ = [
    "FINGERPRINT_TAG",
    "Change",
    "DependencyCycleError",
    "Failure",
    "NullReporter",
    "Reporter",
    "StackDeployer",
    "StackResult",
    "StackSpec",
    "WaitTimeout",
    "build_graph",
    "run_stacks",
]
