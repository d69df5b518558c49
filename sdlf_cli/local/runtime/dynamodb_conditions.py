"""A DynamoDB condition expression's syntax worked out once per text, with moto's results and errors.

moto 5.2.5 parses a ConditionExpression in seven passes over its tokens (paths, functions, comparators, IN,
BETWEEN, parentheses and booleans) at every request; with the tree of the update expression remembered and
validated from a plan, that parse was the largest part of an UpdateItem the lake sends with a condition
(every catalog write has one). Only the paths pass reads the request - each `:value` and `#name` placeholder
is looked up in the request's values and names as it is met - and none of the later passes reads what a
lookup returned, so the syntax tree is the same for every request with that text but for those leaves.

The tree is parsed once per text with stand-ins for the lookups, recording them in the order moto makes
them. A request then makes the same lookups, through moto's own methods and in the same order (so a missing
placeholder raises what moto raises, first), puts what they return in the leaves, and builds the condition
with moto's `_make_op_condition`. A text whose parse fails - a syntax error, a reserved word, a bad path -
is parsed by moto at every request, so its error is always moto's (a missing placeholder before a syntax
error, as in moto's order).
"""
from __future__ import annotations

import threading
from typing import Any

MAX_TEXTS = 512


class _Slot:
    """Stands in for one lookup's result while the text is parsed once."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


class _Recorder:
    """Stands in for the request's names or values: records each lookup, in order, shared by both."""

    def __init__(self, kind: str, lookups: list[tuple[str, str]]) -> None:
        self.kind, self.lookups = kind, lookups

    def __getitem__(self, name: str) -> _Slot:
        self.lookups.append((self.kind, name))
        return _Slot(len(self.lookups) - 1)


class _Template:
    __slots__ = ("node", "lookups", "names_found", "values_found")

    def __init__(self, node: Any, lookups: list, names_found: list, values_found: list) -> None:
        self.node, self.lookups, self.names_found, self.values_found = node, lookups, names_found, values_found


def _has_slot(node: Any) -> bool:
    return type(node.value) is _Slot or any(_has_slot(child) for child in node.children)


def _parse_template(parser_class: type, text: str) -> _Template:
    lookups: list[tuple[str, str]] = []
    parser = parser_class(text, _Recorder("names", lookups), _Recorder("values", lookups))
    # moto's ConditionExpressionParser.parse up to the syntax tree (the passes, in its order).
    nodes = parser._lex_condition_expression()
    nodes = parser._parse_paths(nodes)
    nodes = parser._apply_functions(nodes)
    nodes = parser._apply_comparator(nodes)
    nodes = parser._apply_in(nodes)
    nodes = parser._apply_between(nodes)
    nodes = parser._apply_parens_and_booleans(nodes)
    node = nodes[0]
    parser._assert_no_redundant_parentheses(node)
    return _Template(_marked(node), lookups, parser._find_literals(node), parser._find_expr_attr_values(node))


def _marked(node: Any) -> Any:
    """The tree with each subtree that holds a stand-in marked (children as a tuple: filled per request)."""
    if not _has_slot(node):
        return (False, node)
    return (True, node, [_marked(child) for child in node.children])


def _filled(marked: Any, found: list) -> Any:
    if not marked[0]:
        return marked[1]  # no placeholder below: the same (immutable) node serves every request
    node = marked[1]
    value = node.value
    if type(value) is _Slot:
        value = found[value.index]
    return node._replace(value=value, children=[_filled(child, found) for child in marked[2]])


def from_template(original: Any) -> Any:
    templates: dict[tuple[type, str], Any] = {}  # by parser class too: a subclass may parse otherwise
    lock = threading.Lock()

    def parse(self: Any) -> Any:
        text = self.condition_expression
        if not text:
            return original(self)
        key = (type(self), text)
        template = templates.get(key)
        if template is None:
            try:
                template = _parse_template(type(self), text)
            except Exception:  # noqa: BLE001 - moto's parse, at every request, raises its own error
                template = False
            with lock:
                if len(templates) >= MAX_TEXTS:
                    templates.clear()
                templates[key] = template
        if template is False:
            return original(self)
        found = [self._lookup_expression_attribute_name(name) if kind == "names"
                 else self._lookup_expression_attribute_value(name) for kind, name in template.lookups]
        node = _filled(template.node, found)
        self.expr_attr_names_found.extend(template.names_found)
        self.expr_attr_values_found.extend(template.values_found)
        return self._make_op_condition(node)

    return parse
