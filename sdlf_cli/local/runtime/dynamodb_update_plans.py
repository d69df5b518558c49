"""DynamoDB UpdateItem validation from a plan made once per update expression, with moto's results and errors.

moto 5.2.5 validates an update by deep-copying its syntax tree and walking the copy ten times, once per
processor (clause count, overlapping paths, key attributes, placeholders' values, paths resolved against the
item, functions, missing paths, `+`/`-`, key types, empty key strings). With the walks made linear
(`dynamodb_expressions`) they were still two thirds of an UpdateItem's CPU in the lake's stage A: ten
recursive walks over 60-100 nodes, most of which no processor acts on.

Which nodes each processor acts on, and in which order, depends only on the tree, so it is worked out once
per remembered tree (one `dynamodb_expressions` parsed once per text); a request then calls moto's own
processors, built for it as moto builds them, on those nodes only, in the walks' order:
- the clause count and the overlapping-paths check read only the tree and the placeholders' names: the
  count is checked once per tree, the paths' texts are taken once per tree and compared per request;
- the key-attribute check, the placeholders' values, the paths (with the resolving flag moto's walk would
  hold at each path, worked out once from its pre-child hook) and the functions (innermost first) act in
  one pass over their nodes; none of them reads what another one writes, except a function reading its
  arguments, which are done before it as in moto's walk;
- a path or function result that is a missing path fails the request, then `+`/`-` and the two SET checks.
The copy of the tree comes with its list of nodes in walk order (one pickle of both, taken with the plan),
so no walk is needed to find them.

moto's handler also looks for the placeholders a request's update expression uses (`find_clauses` on the
tree, twice per request); on a remembered tree - never changed, the validator works on copies - the answer
is the same every time, so it is kept per tree and clause types (each caller gets its own list of the
tree's own nodes, as from moto's walk).

Only a request that passes every check uses this result. Any error - or a tree holding a node class or
shape the plan does not know, or processors other than moto 5.2.5's - makes the validator start over with
a fresh copy and moto's own ten walks, so an error is always the very one moto raises (its processors run
in order and the first one to fail decides), and no error is ever raised that moto would not raise.
"""
from __future__ import annotations

import pickle
import threading
from typing import Any

CLAUSES_PATCH = "dynamodb: the clauses of a remembered update-expression tree are found once"
INIT_PATCH = "dynamodb: an update expression's validator copies the tree with its planned nodes"
VALIDATE_PATCH = "dynamodb: an update expression is validated from a plan made once per tree"
MAX_PLANS = 512

# id(remembered tree) -> (tree, plan or None): None when the tree is validated by moto's walks only.
_plans: dict[int, tuple[Any, Any]] = {}
_lock = threading.Lock()


class _Plan:
    """Positions are indexes into the tree's nodes in moto's walk order (children first, left to right)."""

    __slots__ = ("blob", "parents", "plaintext_paths", "placeholder_paths", "paths", "values", "functions",
                 "outer", "operations", "set_actions")

    def __init__(self, root: Any, ast: Any) -> None:
        from moto.dynamodb.parsing.validators import ActionCountValidator
        from moto.dynamodb.utils import find_path_overlaps

        nodes: list[Any] = []
        self.parents: list[tuple[int, int]] = []  # position -> (parent position or -1, index among its children)
        flags: dict[int, bool] = {}
        actions = (ast.UpdateExpressionSetAction, ast.UpdateExpressionRemoveAction, ast.UpdateExpressionDeleteAction,
                   ast.UpdateExpressionAddAction)
        resolving = [False]  # moto's ExpressionAttributeResolvingProcessor.resolving along its walk
        under_function: set[int] = set()
        below_function: dict[int, bool] = {}

        def walk(node: Any, in_function: bool) -> int:
            if type(node) not in _known_classes(ast):
                raise _Unplanned(type(node).__name__)
            child_positions = []
            for i, child in enumerate(node.children or ()):
                if isinstance(node, actions):  # the processor's pre-child hook
                    resolving[0] = i != 0
                if isinstance(child, ast.Node):
                    child_positions.append((walk(child, in_function or type(node) is ast.UpdateExpressionFunction), i))
            position = len(nodes)
            nodes.append(node)
            self.parents.append((-1, -1))
            for child_position, i in child_positions:
                self.parents[child_position] = (position, i)
            if type(node) is ast.UpdateExpressionSetAction:
                resolving[0] = False
            elif type(node) is ast.UpdateExpressionPath:
                flags[position] = resolving[0]
            below_function[position] = in_function
            if in_function:
                under_function.add(position)
            return position

        if type(root) is not ast.UpdateExpression:
            raise _Unplanned(type(root).__name__)
        walk(root, False)
        ActionCountValidator().verify_action_counts(root)  # pure: a tree that fails always fails (moto's walks)

        kinds = [type(node) for node in nodes]
        where = lambda cls: [p for p, kind in enumerate(kinds) if kind is cls]  # noqa: E731
        self.paths = [(p, flags[p]) for p in where(ast.UpdateExpressionPath)]
        self.values = where(ast.ExpressionAttributeValue)
        self.functions = where(ast.UpdateExpressionFunction)
        self.operations = where(ast.UpdateExpressionValue)
        self.set_actions = where(ast.UpdateExpressionSetAction)
        # What a function replaces goes away with it: a missing path counts only where no function holds it.
        self.outer = [p for p, kind in enumerate(kinds)
                      if kind in (ast.UpdateExpressionPath, ast.UpdateExpressionFunction) and p not in under_function]
        if any(below_function[p] for p in self.operations + self.set_actions):
            raise _Unplanned("a value or an action inside a function")

        # OverlappingPathsValidator.check_for_overlapping_paths, split into what the tree and the names decide.
        self.plaintext_paths: list[str] = []
        self.placeholder_paths: list[str] = []
        for action in root.find_clauses(list(actions)):
            path = action.children[0]
            path_name = path.children[0]
            if isinstance(path_name, ast.ExpressionAttributeName) and len(path.children) == 1:
                self.placeholder_paths.append(path_name.get_attribute_name_placeholder())
            else:
                self.plaintext_paths.append(path.to_str())
        if find_path_overlaps(self.plaintext_paths):
            raise _Unplanned("overlapping paths")
        self.blob = pickle.dumps((root, nodes), protocol=pickle.HIGHEST_PROTOCOL)


class _Unplanned(Exception):
    """A tree the plan does not cover: validated by moto's walks."""


_classes: list[frozenset] = []


def _known_classes(ast: Any) -> frozenset:
    if not _classes:
        _classes.append(frozenset((
            ast.UpdateExpression, ast.UpdateExpressionSetClause, ast.UpdateExpressionSetActions,
            ast.UpdateExpressionSetAction, ast.UpdateExpressionRemoveClause, ast.UpdateExpressionRemoveActions,
            ast.UpdateExpressionRemoveAction, ast.UpdateExpressionAddClause, ast.UpdateExpressionAddActions,
            ast.UpdateExpressionAddAction, ast.UpdateExpressionDeleteClause, ast.UpdateExpressionDeleteActions,
            ast.UpdateExpressionDeleteAction, ast.UpdateExpressionPath, ast.UpdateExpressionValue,
            ast.UpdateExpressionFunction, ast.ExpressionAttribute, ast.ExpressionAttributeName,
            ast.ExpressionAttributeValue, ast.ExpressionPathDescender, ast.ExpressionSelector,
            ast.ExpressionValueOperator)))
    return _classes[0]


def _plan_for(expression: Any) -> Any:
    """The plan of a tree remembered by the parse-once patch; None for any other tree."""
    from moto.dynamodb.parsing import ast_nodes

    from sdlf_cli.local.runtime.dynamodb_expressions import _pickled

    known = _plans.get(id(expression))
    if known is not None and known[0] is expression:
        return known[1]
    remembered = _pickled.get(id(expression))
    if remembered is None or remembered[0] is not expression:
        return None  # a tree parsed for this request only: planning it would cost more than it saves
    try:
        plan = _Plan(expression, ast_nodes)
    except Exception:  # noqa: BLE001 - _Unplanned, or moto's own error for a tree that always fails
        plan = None
    with _lock:
        if len(_plans) >= MAX_PLANS:
            _plans.clear()
        _plans[id(expression)] = (expression, plan)
    return plan


def _planned_init(original: Any) -> Any:
    def __init__(self: Any, expression: Any, expression_attribute_names: Any, expression_attribute_values: Any,
                 item: Any, table: Any) -> None:
        plan = _plan_for(expression)
        if plan is None:
            original(self, expression, expression_attribute_names, expression_attribute_values, item, table)
            self._planned = None
            return
        # moto's Validator.__init__, with the copy unpickled along with its nodes in walk order.
        self.expression_attribute_names = expression_attribute_names
        self.expression_attribute_values = expression_attribute_values
        self.item = item
        self.table = table
        self.processors = self.get_ast_processors()
        self.node_to_validate, nodes = pickle.loads(plan.blob)
        self._planned = (expression, plan, nodes)

    return __init__


def _planned_validate(original: Any) -> Any:
    def validate(self: Any) -> Any:
        planned = getattr(self, "_planned", None)
        if planned is None:
            return original(self)
        self._planned = None
        expression, plan, nodes = planned
        try:
            return _run(self.processors, plan, nodes, self.node_to_validate)
        except Exception:  # noqa: BLE001 - moto's walks decide which error (the first of its order)
            import copy

            self.node_to_validate = copy.deepcopy(expression)
            self.processors = self.get_ast_processors()
            return original(self)

    return validate


_expected_processors: list[tuple[type, ...]] = []


def _processor_types() -> tuple[type, ...]:
    if not _expected_processors:
        from moto.dynamodb.parsing import validators as v

        _expected_processors.append((
            v.ActionCountValidator, v.OverlappingPathsValidator, v.UpdateHashRangeKeyValidator,
            v.ExpressionAttributeValueProcessor, v.ExpressionAttributeResolvingProcessor,
            v.UpdateExpressionFunctionEvaluator, v.NoneExistingPathChecker, v.ExecuteOperations,
            v.TypeMismatchValidator, v.EmptyStringKeyValueValidator))
    return _expected_processors[0]


def _run(processors: list, plan: _Plan, nodes: list, root: Any) -> Any:
    from moto.dynamodb.parsing.ast_nodes import NoneExistingPath
    from moto.dynamodb.utils import find_duplicates

    if tuple(type(p) for p in processors) != _processor_types():
        raise _Unplanned("not moto 5.2.5's processors")
    (_count, overlap, keys, values, resolving, functions, _missing, operations, types, empty) = processors
    parents = plan.parents

    def put(position: int, node: Any) -> None:
        # What moto's walk does with a processed node: it takes the old node's place under its parent.
        parent_position, child_id = parents[position]
        parent = nodes[parent_position]
        node.parent = parent
        parent.children[child_id] = node

    names = overlap.expression_attribute_names
    if find_duplicates(plan.plaintext_paths + [names[p] for p in plan.placeholder_paths]):
        raise _Unplanned("duplicate paths")
    for position, flag in plan.paths:
        node = nodes[position]
        keys.check_for_hash_or_range_key(node)
        resolving.resolving = flag
        put(position, resolving.process_expression_path_node(node))
    for position in plan.values:
        put(position, values.replace_expression_attribute_value_with_value(nodes[position]))
    for position in plan.functions:
        put(position, functions.process_function(nodes[position]))
    for position in plan.outer:
        parent_position, child_id = parents[position]
        if isinstance(nodes[parent_position].children[child_id], NoneExistingPath):
            raise _Unplanned("a missing path")
    for position in plan.operations:
        put(position, operations.process_update_expression_value(nodes[position]))
    for position in plan.set_actions:
        node = nodes[position]
        types.check_for_type_mismatch(node)
        empty.check_for_empty_string_key_value(node)
    return root


_clauses: dict[tuple[int, tuple], tuple[Any, list]] = {}


def _clauses_found_once(_original: Any) -> Any:
    from moto.dynamodb.parsing.ast_nodes import Expression, UpdateExpressionFunction

    from sdlf_cli.local.runtime.dynamodb_expressions import _pickled

    def walk(node: Any, clause_types: Any) -> list:
        # moto's Node.find_clauses (no node class has its own), recursing here rather than through the method.
        clauses = []
        for child in node.children or []:
            if type(child) in clause_types:
                clauses.append(child)
            elif isinstance(child, (Expression, UpdateExpressionFunction)):
                clauses.extend(walk(child, clause_types))
        return clauses

    def find_clauses(self: Any, clause_types: Any) -> Any:
        remembered = _pickled.get(id(self))
        if remembered is None or remembered[0] is not self:
            return walk(self, clause_types)
        key = (id(self), tuple(clause_types))
        known = _clauses.get(key)
        if known is None or known[0] is not self:
            known = (self, walk(self, clause_types))
            with _lock:
                if len(_clauses) >= MAX_PLANS:
                    _clauses.clear()
                _clauses[key] = known
        return list(known[1])

    return find_clauses


def install() -> None:
    from moto.dynamodb.parsing.ast_nodes import Node
    from moto.dynamodb.parsing.validators import UpdateExpressionValidator, Validator

    from sdlf_cli.local.cfn import _patching

    _patching.wrap(Node, "find_clauses", CLAUSES_PATCH, _clauses_found_once)

    # UpdateExpressionValidator inherits both: the originals to fall back on are Validator's.
    _patching.install(_patching.Patch(INIT_PATCH, UpdateExpressionValidator, "__init__",
                                      _planned_init(Validator.__init__)))
    _patching.install(_patching.Patch(VALIDATE_PATCH, UpdateExpressionValidator, "validate",
                                      _planned_validate(Validator.validate)))


def uninstall() -> None:
    from sdlf_cli.local.cfn import _patching

    _patching.uninstall(VALIDATE_PATCH)
    _patching.uninstall(INIT_PATCH)
    _patching.uninstall(CLAUSES_PATCH)
