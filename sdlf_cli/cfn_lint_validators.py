"""cfn-lint's schema validators without a new dataclass for every extension.

cfn-lint (1.x) validates a template by walking JSON schemas with a `Validator` class. Each rule that adds
keywords calls `Validator.extend(...)`, and `extend` calls `cfnlint.jsonschema.validators.create(...)`, which
defines a new class and runs `@dataclass` on it: generating and compiling `__init__`, `__repr__` and `__eq__`
from source text every time. Linting the dev lake's four templates called it ~1,700 times, and building those
classes was about a seventh of the lint's CPU.

`validator_classes_made_once()` replaces `create` with one that makes the dataclass once and, per call, a plain
subclass holding that call's validators, function filter and function resolvers - the three values the original
class captured in its field defaults. Instances get the same fields and values, so every rule sees what it saw.
The subclass's `evolve` (called at every step of the schema walk) fills the new instance with the same field
values cfn-lint's would give - the init fields from the list made once rather than from `dataclasses.fields()`
at every call, the checkers from their factories, then `__post_init__` - without running the dataclass's
`__init__`; a call naming an unknown field takes cfn-lint's way, and its error.
If the installed cfn-lint's `create` does not have the shape this relies on, nothing is patched.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable

# What `create` captures per call: passed at construction (function_filter) or set by field defaults.
_CAPTURED = ("validators", "function_filter", "fn_resolvers")


def validator_classes_made_once() -> Callable[[], None] | None:
    """Installs the faster `create`; returns the function that puts cfn-lint's own back, or None when it steps
    aside (already installed, or a cfn-lint whose validators are built differently)."""
    from cfnlint.jsonschema import validators as module
    from cfnlint.jsonschema._filter import FunctionFilter

    original = module.create
    if getattr(original, "_sdlf_original", None) is not None:
        return None
    if list(inspect.signature(original).parameters) != list(_CAPTURED):
        return None
    base = original()
    fields = {f.name: f for f in dataclasses.fields(base)}
    if not all(name in fields for name in _CAPTURED) or not fields["function_filter"].init \
            or fields["validators"].init or fields["fn_resolvers"].init:
        return None
    init_names = [name for name, f in fields.items() if f.init]
    init_known = frozenset(init_names)
    function_filter_position = init_names.index("function_filter")
    base_init = base.__init__
    # The other fields the dataclass's __init__ sets from a factory (the type and format checkers), when it has
    # only those besides what a call captures: then `evolve` can fill an instance without running __init__.
    factories = {name: f.default_factory for name, f in fields.items() if not f.init and name not in _CAPTURED}
    copyable = hasattr(base, "__post_init__") and all(callable(factory) for factory in factories.values())

    def create(validators: Any = None, function_filter: Any = None, fn_resolvers: Any = None) -> type:
        validators_arg = validators or {}
        function_filter_arg = function_filter or FunctionFilter()
        fn_resolvers_arg = fn_resolvers or {}

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if len(args) <= function_filter_position and "function_filter" not in kwargs:
                kwargs["function_filter"] = function_filter_arg
            base_init(self, *args, **kwargs)
            self.validators = validators_arg
            self.fn_resolvers = fn_resolvers_arg

        def evolve(self, **kwargs: Any) -> Any:
            if not copyable or not init_known.issuperset(kwargs):
                for name in init_names:
                    kwargs.setdefault(name, getattr(self, name))
                return self.__class__(**kwargs)  # cfn-lint's own path, and its error for an unknown field
            state = self.__dict__
            new = object.__new__(self.__class__)
            values = new.__dict__
            for name in init_names:
                values[name] = kwargs[name] if name in kwargs else state[name]
            for name, factory in factories.items():
                values[name] = factory()
            values["validators"] = validators_arg
            values["fn_resolvers"] = fn_resolvers_arg
            new.__post_init__()  # a context or resolver given as None is made, as __init__ would
            return new

        return type(base.__name__, (base,), {"__init__": __init__, "evolve": evolve, "__qualname__": base.__qualname__,
                                             "__module__": base.__module__, "__doc__": base.__doc__})

    create._sdlf_original = original  # type: ignore[attr-defined]
    module.create = create

    def undo() -> None:
        if module.create is create:
            module.create = original

    return undo
