"""DynamoDB UpdateItem validation in linear time, with the same answers and the same errors as moto's.

moto 5.2.5 validates an update expression by running ten tree walkers over its syntax tree. Two of them
(the clause counter and the overlapping-paths check) run at *every* nested `UpdateExpression` node and
collect the actions of its whole subtree each time - and SET actions nest one inside the other - so their
cost grows with the square of the number of actions; every walker also rebuilds its node-type table at
every node. A 12-action SET with a condition took ~80 ms of CPU per UpdateItem on the 2-core machine,
more than anything else the lake's stage A asks of the emulator (the catalog and execution rows are
written with 10-15 action updates, several times per object).

Named patches (`sdlf_cli.local.cfn._patching`):
- an update expression's text is parsed once (moto parses it twice per request, and the lake sends the
  same few expressions over and over); the syntax tree is only ever read - the validator works on a deep
  copy - so one tree serves every request with that text. Texts that do not parse are not remembered;
- the walkers' node-type table is built once per walker class (it is a literal per class);
- the clause counter and the overlapping-paths check look at the root first. The root's actions are a
  superset of every subtree's, and both checks are pure (they return the node unchanged), so a root that
  passes means every node passes; a root that fails re-runs moto's own bottom-up walk, which raises the
  very error moto would have raised;
- the validator's deep copy of the syntax tree copies it node by node (`Node.__deepcopy__`) instead of
  through `copy.deepcopy`'s generic reduce-and-rebuild per object, which took ~40 % of a validated
  UpdateItem. The copy is the same: every node a new object of the same class with its own attributes and
  children list, parent links pointing into the copy, and any child that is not a node or an immutable
  scalar (a DynamoType value) deep-copied as before.
"""
from __future__ import annotations

import threading
from typing import Any

PARSE_PATCH = "dynamodb: an update expression's text is parsed once"
MAX_PARSED = 512
TYPES_PATCH = "dynamodb: update-expression walkers build their node-type table once per class"
ROOT_FIRST_PATCH = "dynamodb: clause-count and overlapping-path checks look at the root first ({})"
COPY_PATCH = "dynamodb: an update-expression syntax tree is deep-copied node by node"
_IMMUTABLE = (str, int, float, bool, type(None))

_types_by_class: dict[type, tuple[type, ...]] = {}


def _cached_types(original: Any) -> Any:
    def nodes_to_be_processed(self: Any) -> tuple[type, ...]:
        cls = type(self)
        types = _types_by_class.get(cls)
        if types is None:
            types = _types_by_class[cls] = tuple(self._processing_map().keys())
        return types

    return nodes_to_be_processed


def _parsed_once(original: Any) -> Any:
    parse = original.__func__  # a classmethod in moto
    trees: dict[str, Any] = {}
    lock = threading.Lock()

    def make(cls: Any, expression_str: str) -> Any:
        tree = trees.get(expression_str)
        if tree is None:
            tree = parse(cls, expression_str)
            with lock:
                if len(trees) >= MAX_PARSED:
                    trees.clear()
                trees[expression_str] = tree
        return tree

    return classmethod(make)


def _root_first(check_name: str) -> Any:
    def make(original_traverse: Any) -> Any:
        def traverse(self: Any, node: Any) -> Any:
            try:
                getattr(self, check_name)(node)
            except Exception:
                # The full walk raises the error moto raises (the deepest failing node's).
                return original_traverse(self, node)
            return node

        return traverse

    return make


def _node_deepcopy(_absent: Any) -> Any:
    import copy

    def copy_child(child: Any, memo: dict) -> Any:
        if type(child) in _IMMUTABLE:
            return child
        if isinstance(child, node_class) and id(child) not in memo:
            return __deepcopy__(child, memo)  # what deepcopy would call, without its dispatch per node
        return copy.deepcopy(child, memo)

    def __deepcopy__(self: Any, memo: dict) -> Any:
        parent = self.parent
        if parent is not None and id(parent) not in memo:
            # Copying from inside a tree: the parent link makes it a copy of the whole tree, as deepcopy does.
            copy.deepcopy(parent, memo)
            done = memo.get(id(self))
            if done is not None:
                return done
        clone = object.__new__(type(self))
        memo[id(self)] = clone
        attributes = {}
        for name, value in self.__dict__.items():
            if name == "parent":
                value = memo.get(id(value), value) if value is not None else None
            elif name == "children" and value is not None:
                value = [copy_child(child, memo) for child in value]
            elif type(value) not in _IMMUTABLE:
                value = copy.deepcopy(value, memo)
            attributes[name] = value
        clone.__dict__.update(attributes)
        return clone

    from moto.dynamodb.parsing.ast_nodes import Node as node_class

    return __deepcopy__


def install() -> None:
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser, Node
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser
    from moto.dynamodb.parsing.validators import ActionCountValidator, OverlappingPathsValidator

    from sdlf_cli.local.cfn import _patching

    _patching.wrap(UpdateExpressionParser, "make", PARSE_PATCH, _parsed_once)
    _patching.wrap(Node, "__deepcopy__", COPY_PATCH, _node_deepcopy)
    _patching.wrap(DepthFirstTraverser, "nodes_to_be_processed", TYPES_PATCH, _cached_types)
    for cls, check in ((ActionCountValidator, "verify_action_counts"),
                       (OverlappingPathsValidator, "check_for_overlapping_paths")):
        # `traverse` is inherited: the original to fall back on is DepthFirstTraverser's.
        _patching.install(_patching.Patch(ROOT_FIRST_PATCH.format(cls.__name__), cls, "traverse",
                                          _root_first(check)(DepthFirstTraverser.traverse)))


def uninstall() -> None:
    from moto.dynamodb.parsing.validators import ActionCountValidator, OverlappingPathsValidator

    from sdlf_cli.local.cfn import _patching

    for cls in (ActionCountValidator, OverlappingPathsValidator):
        _patching.uninstall(ROOT_FIRST_PATCH.format(cls.__name__))
    _patching.uninstall(TYPES_PATCH)
    _patching.uninstall(COPY_PATCH)
    _patching.uninstall(PARSE_PATCH)
