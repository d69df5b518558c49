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
- the walkers' node-type table is built once per walker class (it is a literal per class), and whether a
  node's class is a node at all, and one the walker processes, is tested once per class (an `isinstance`
  through `abc`'s machinery at every node of every walk, ten walks per update, was a third of the walks);
  a child that is not a node is not visited, and the base class's empty per-child hook is not called;
- a condition expression's text is split into tokens once (moto splits it twice per UpdateItem, trying up to
  seven regular expressions per token, compiled again for every token);
- a condition expression's syntax tree is worked out once per text, and a request only looks its placeholders
  up and builds the condition from it (`dynamodb_conditions`);
- a request's condition is parsed once: moto's handler parses it (to check the names and values it uses),
  then hands the same expression, names and values to the backend, which parses it again to evaluate it.
  The last parse in the thread is kept with the very objects it read; the next parse of the same text
  with the same (`is`) names and values gets its result, once;
- the clause counter and the overlapping-paths check look at the root first. The root's actions are a
  superset of every subtree's, and both checks are pure (they return the node unchanged), so a root that
  passes means every node passes; a root that fails re-runs moto's own bottom-up walk, which raises the
  very error moto would have raised;
- the validator's deep copy of the syntax tree (`Node.__deepcopy__`) unpickles a remembered tree's pickle
  (taken when it was parsed), and copies any other tree node by node, instead of going through
  `copy.deepcopy`'s generic reduce-and-rebuild per object, which took ~40 % of a validated UpdateItem
  (0.74 ms for a 15-action update; 0.12 ms unpickled). The copy is the same: every node a new object of the
  same class with its own attributes and children list, parent links pointing into the copy, and any child
  that is not a node or an immutable scalar (a DynamoType value) deep-copied as before.
"""
from __future__ import annotations

import pickle
import threading
from typing import Any

PARSE_PATCH = "dynamodb: an update expression's text is parsed once"
MAX_PARSED = 512
TYPES_PATCH = "dynamodb: update-expression walkers build their node-type table once per class"
ROOT_FIRST_PATCH = "dynamodb: clause-count and overlapping-path checks look at the root first ({})"
COPY_PATCH = "dynamodb: an update-expression syntax tree is deep-copied node by node"
TRAVERSE_PATCH = "dynamodb: update-expression walkers test a node's class once per class"
LEX_PATCH = "dynamodb: a condition expression's text is split into tokens once"
CONDITION_PATCH = "dynamodb: a request's condition is parsed once for the handler and the backend"
TEMPLATE_PATCH = "dynamodb: a condition expression's syntax is worked out once per text"
_IMMUTABLE = (str, int, float, bool, type(None))
# id -> (remembered tree, its pickle): a whole remembered tree is copied by unpickling it, at C speed.
_pickled: dict[int, tuple[Any, bytes]] = {}

_types_by_class: dict[type, tuple[type, ...]] = {}


def _cached_types(original: Any) -> Any:
    def nodes_to_be_processed(self: Any) -> tuple[type, ...]:
        cls = type(self)
        types = _types_by_class.get(cls)
        if types is None:
            types = _types_by_class[cls] = tuple(self._processing_map().keys())
        return types

    return nodes_to_be_processed


def _classes_tested_once(_original: Any) -> Any:
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser, Node

    # Fixed while the server runs: (walker class, node class) -> processed?; node class -> a Node?;
    # walker class -> has its own pre_processing_of_child (the base one does nothing)?
    processed: dict[tuple[type, type], bool] = {}
    is_node: dict[type, bool] = {}
    has_hook: dict[type, bool] = {}
    no_hook = DepthFirstTraverser.pre_processing_of_child

    def node_class_test(node_class: type) -> bool:
        answer = is_node.get(node_class)
        if answer is None:
            answer = is_node[node_class] = issubclass(node_class, Node)
        return answer

    def traverse_node_recursively(self: Any, node: Any, child_id: int = -1) -> Any:
        node_class = type(node)
        if not node_class_test(node_class):
            return node
        parent_node = node.parent
        children = node.children
        walker_class = type(self)
        if children is not None:
            hook = has_hook.get(walker_class)
            if hook is None:
                hook = has_hook[walker_class] = walker_class.pre_processing_of_child is not no_hook
            for i, child_node in enumerate(children):
                if hook:
                    self.pre_processing_of_child(node, i)
                # A child that is not a node (a name, a value) would come back as it is: not visited.
                if node_class_test(type(child_node)):
                    self.traverse_node_recursively(child_node, i)
        key = (walker_class, node_class)
        to_process = processed.get(key)
        if to_process is None:
            to_process = processed[key] = issubclass(node_class, self.nodes_to_be_processed())
        if to_process:
            node = self.process(node)
            node.parent = parent_node
            if parent_node:
                parent_node.children[child_id] = node
        return node

    return traverse_node_recursively


def _lexed_once(original: Any) -> Any:
    tokens_of: dict[str, tuple] = {}
    lock = threading.Lock()

    def _lex_condition_expression(self: Any) -> Any:
        from collections import deque

        text = self.condition_expression
        tokens = tokens_of.get(text)
        if tokens is None:
            tokens = tuple(original(self))  # moto raises its ValueError here for a text it cannot split
            with lock:
                if len(tokens_of) >= MAX_PARSED:
                    tokens_of.clear()
                tokens_of[text] = tokens
        # Tokens are namedtuples; each caller gets its own children lists, as from moto's lexer.
        return deque(token._replace(children=list(token.children)) for token in tokens)

    return _lex_condition_expression


_last_condition = threading.local()


def _condition_parsed_once(original: Any) -> Any:
    def parse(self: Any) -> Any:
        text, names, values = self.condition_expression, self.expression_attribute_names, self.expression_attribute_values
        last = getattr(_last_condition, "parsed", None)
        _last_condition.parsed = None
        if last is not None and last[0] == text and last[1] is names and last[2] is values:
            op, names_found, values_found = last[3:]
            self.expr_attr_names_found.extend(names_found)
            self.expr_attr_values_found.extend(values_found)
            return op
        op = original(self)
        # Held (not only their ids compared) so the same objects answer `is` only while they are these ones.
        _last_condition.parsed = (text, names, values, op, list(self.expr_attr_names_found),
                                  list(self.expr_attr_values_found))
        return op

    return parse


def _parsed_once(original: Any) -> Any:
    parse = original.__func__  # a classmethod in moto
    trees: dict[str, Any] = {}
    lock = threading.Lock()

    def make(cls: Any, expression_str: str) -> Any:
        tree = trees.get(expression_str)
        if tree is None:
            tree = parse(cls, expression_str)
            try:
                blob = pickle.dumps(tree, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:  # noqa: BLE001 - not picklable: copied node by node instead
                blob = None
            with lock:
                if len(trees) >= MAX_PARSED:
                    trees.clear()
                    _pickled.clear()
                trees[expression_str] = tree
                if blob is not None:
                    _pickled[id(tree)] = (tree, blob)
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
        if not memo:  # a copy of this tree alone (the validator's): no other copied object can refer into it
            remembered = _pickled.get(id(self))
            if remembered is not None and remembered[0] is self:
                clone = memo[id(self)] = pickle.loads(remembered[1])
                return clone
        parent = self.parent
        if parent is not None and id(parent) not in memo:
            # Copying from inside a tree: the parent link makes it a copy of the whole tree, as deepcopy does.
            # (deepcopy's own keep-alive entry makes the memo non-empty, so the tree is not unpickled apart.)
            memo.setdefault(id(memo), [])
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
    from moto.dynamodb.comparisons import ConditionExpressionParser
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser, Node
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser
    from moto.dynamodb.parsing.validators import ActionCountValidator, OverlappingPathsValidator

    from sdlf_cli.local.cfn import _patching
    from sdlf_cli.local.runtime import dynamodb_conditions

    _patching.wrap(UpdateExpressionParser, "make", PARSE_PATCH, _parsed_once)
    _patching.wrap(Node, "__deepcopy__", COPY_PATCH, _node_deepcopy)
    _patching.wrap(DepthFirstTraverser, "traverse_node_recursively", TRAVERSE_PATCH, _classes_tested_once)
    _patching.wrap(ConditionExpressionParser, "_lex_condition_expression", LEX_PATCH, _lexed_once)
    # Both replace `parse`: the per-text syntax first, the per-request memo around it (out in reverse order).
    _patching.wrap(ConditionExpressionParser, "parse", TEMPLATE_PATCH, dynamodb_conditions.from_template)
    _patching.wrap(ConditionExpressionParser, "parse", CONDITION_PATCH, _condition_parsed_once)
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
    _patching.uninstall(TRAVERSE_PATCH)
    _patching.uninstall(LEX_PATCH)
    _patching.uninstall(CONDITION_PATCH)
    _patching.uninstall(TEMPLATE_PATCH)
    _patching.uninstall(PARSE_PATCH)
