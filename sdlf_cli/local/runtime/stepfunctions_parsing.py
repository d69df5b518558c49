"""moto's Step Functions interpreter parses a definition once per text, and a JSONPath once per text.

moto 5.2.5 parses the state machine's whole definition with its ANTLR grammar at the start of every execution
(~9 ms of CPU for stage A's five-state machine, the largest single cost of an execution), and compiles every
ResultPath and every `.$` JSONPath with a new jsonpath_ng parser each time it is evaluated, which rebuilds
ply's parsing tables (~0.6 ms a path, several paths per state). The lake starts the same few definitions and
evaluates the same few paths over and over.

Named patches (`sdlf_cli.local.cfn._patching`):
- the ANTLR parse tree of a definition text is remembered; moto's preprocessor still builds a new program
  (the evaluation components) from it for every execution, so no execution shares a component with another.
  The tree is only ever read (visited) once built. Definitions that do not parse are not remembered: each
  attempt raises moto's own error;
- the text of a remembered tree's rule node is joined once, when the tree is parsed: moto's preprocessor asks
  nodes for their text (antlr4's `getText` joins the texts of the node's whole subtree each time), which
  was ~40 % of building a program from the tree. Nodes of other trees are answered by antlr4 as before;
- a JSONPath text is compiled once, in each interpreter module that imported jsonpath_ng's `parse`: a
  compiled jsonpath_ng expression holds no state between `find`/`update_or_create` calls;
- a definition without Map or Parallel states is built into a program (the evaluation components) once, and its
  executions share it: building one from the remembered tree was still ~5 % of a stage-A burst's CPU. An
  execution's state lives in its environment (stack, heap, retry counts), not in the components - except the
  key each component files its heap entries under, which moto draws on first use: the program's keys are all
  drawn before it is shared, so two executions never draw two keys for one component. Map and Parallel states
  keep their workers and counters in their components: those definitions get a new program per execution.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

from sdlf_cli.local.runtime.bounded_memo import BoundedMemo

DEFINITION_PATCH = "states: a definition's parse tree is built once per definition text"
TEXT_PATCH = "states: the text of a remembered parse tree's node is joined once"
JSONPATH_PATCH = "states: a JSONPath is compiled once per text ({})"
PROGRAM_PATCH = "states: a definition without Map or Parallel states is built into one program for its executions"
_PER_EXECUTION_TYPES = ("Map", "Parallel")
MAX_REMEMBERED = 1024  # definitions and paths are few; a bound all the same

# Interpreter modules that imported their own `parse` from jsonpath_ng (moto 5.2.5).
JSONPATH_MODULES = (
    "moto.stepfunctions.parser.asl.component.common.path.result_path",  # jsonpath_ng.parse
    "moto.stepfunctions.parser.asl.utils.json_path",  # jsonpath_ng.ext.parse
)


def _remembering(compute: Callable[[str], Any]) -> Callable[[str], Any]:
    answers = BoundedMemo(MAX_REMEMBERED)

    def remembered(text: str) -> Any:
        return answers.get(text, lambda: compute(text))

    return remembered


# id(rule context) -> its text, for the nodes of remembered parse trees (kept alive by `_trees`).
_texts: dict[int, str] = {}
_trees: dict[str, Any] = {}
_trees_lock = threading.Lock()


def _joined_texts(tree: Any) -> dict[int, str]:
    """Every rule node's text, as antlr4's `RuleContext.getText` joins it (its children's texts in order)."""
    from antlr4.RuleContext import RuleContext

    texts: dict[int, str] = {}

    def text_of(node: Any) -> str:
        if not isinstance(node, RuleContext):
            return node.getText()  # a terminal: its token's text
        text = "".join(text_of(child) for child in getattr(node, "children", None) or ())
        texts[id(node)] = text
        return text

    text_of(tree)
    return texts


def _tree_once(original: Any) -> Any:
    def parse(definition: str) -> tuple[Any, Any]:
        from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

        tree = _trees.get(definition)
        if tree is None:
            # Parsed under the lock: two executions parsing the same new text at once (those a restart resumes)
            # would otherwise both record their nodes' texts by id, and the tree that is not kept is freed, so
            # its ids - still in `_texts` - are reused by the nodes of later parses, which then read a wrong text.
            with _trees_lock:
                tree = _trees.get(definition)
                if tree is None:
                    tree = original.__func__(definition)[1]  # moto raises its ASLParserException here
                    if len(_trees) >= MAX_REMEMBERED:
                        _trees.clear()
                        _texts.clear()
                    _texts.update(_joined_texts(tree))
                    _trees[definition] = tree
        return Preprocessor().visit(tree), tree

    return staticmethod(parse)


def _text_joined_once(original: Any) -> Any:
    def getText(self: Any) -> str:
        text = _texts.get(id(self))
        return original(self) if text is None else text

    return getText


def shareable(definition: str) -> bool:
    """Whether a program built from `definition` may serve several executions: no Map or Parallel state at any depth."""
    import json

    try:
        document = json.loads(definition)
    except ValueError:
        return False
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("Type") in _PER_EXECUTION_TYPES:
                return False
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return True


def _draw_heap_keys(program: Any) -> Any:
    """Touches every component's `heap_key`, so each is drawn once, here, before executions share them."""
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent

    seen: set[int] = set()
    stack = [program]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, EvalComponent):
            node.heap_key  # noqa: B018 - drawn now, once
        if isinstance(node, (list, tuple, set)):
            stack.extend(node)
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif hasattr(node, "__dict__") and type(node).__module__.startswith("moto.stepfunctions"):
            stack.extend(vars(node).values())
    return program


def _program_once(original: Any) -> Any:
    programs = BoundedMemo(MAX_REMEMBERED)

    def _get_evaluation_entrypoint(self: Any) -> Any:
        definition = self._evaluation_details.state_machine_details.definition
        if not isinstance(definition, str) or not shareable(definition):
            return original(self)
        return programs.get(definition, lambda: _draw_heap_keys(original(self)))

    return _get_evaluation_entrypoint


def install() -> None:
    import importlib

    from antlr4.RuleContext import RuleContext
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    from sdlf_cli.local.cfn import _patching

    _patching.wrap(AmazonStateLanguageParser, "parse", DEFINITION_PATCH, _tree_once)
    _patching.wrap(RuleContext, "getText", TEXT_PATCH, _text_joined_once)
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    _patching.wrap(ExecutionWorker, "_get_evaluation_entrypoint", PROGRAM_PATCH, _program_once)
    for name in JSONPATH_MODULES:
        module = importlib.import_module(name)
        _patching.wrap(module, "parse", JSONPATH_PATCH.format(name.rsplit(".", 1)[-1]), _remembering)


def uninstall() -> None:
    from sdlf_cli.local.cfn import _patching

    for name in JSONPATH_MODULES:
        _patching.uninstall(JSONPATH_PATCH.format(name.rsplit(".", 1)[-1]))
    _patching.uninstall(PROGRAM_PATCH)
    _patching.uninstall(TEXT_PATCH)
    _patching.uninstall(DEFINITION_PATCH)
