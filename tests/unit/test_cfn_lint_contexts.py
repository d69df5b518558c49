"""The seam of sdlf_cli.cfn_lint_contexts: cfn-lint finds the same problems with its contexts made by copy, each
method gives what cfn-lint's gives (and its errors), and the patch comes out again."""
from __future__ import annotations

import contextlib
import dataclasses
from collections import deque

import pytest
from cfnlint.context import context as cfn_context
from cfnlint.context import create_context_for_template
from cfnlint.decode.decode import decode_str
from cfnlint.template import Template

from sdlf_cli.cfn_lint_contexts import contexts_made_by_copy
from sdlf_cli.lint import cfn_lint_rules, lint_template
from tests.unit.test_cfn_lint_validators import BROKEN, templates


OWNERS = ((cfn_context.Context, "evolve"), (cfn_context.Path, "evolve"), (cfn_context.Path, "descend"))


@contextlib.contextmanager
def cfn_lint_s_own_contexts():
    """cfn-lint's own methods for the length of the block (the patch is put back after it)."""
    cfn_lint_rules()  # installs the patch in this process, as every lint does
    patched = [owner.__dict__[name] for owner, name in OWNERS]
    for (owner, name), method in zip(OWNERS, patched):
        setattr(owner, name, method._sdlf_original)
    try:
        yield
    finally:
        for (owner, name), method in zip(OWNERS, patched):
            setattr(owner, name, method)


def _context():
    body, matches = decode_str(BROKEN)
    assert not matches
    return create_context_for_template(Template("broken.yaml", body, ["us-east-1"]))


def test_the_findings_are_cfn_lint_s_own():
    cases = templates()
    patched = [lint_template(t) for t in cases]
    with cfn_lint_s_own_contexts():
        assert not hasattr(cfn_context.Context.evolve, "_sdlf_original")
        own = [lint_template(t) for t in cases]
    assert patched == own
    assert patched[:3] == [[], [], []] and len(patched[3]) >= 8


def _fields(obj) -> dict:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


def test_each_method_gives_what_cfn_lint_s_gives():
    context = _context()
    calls = [
        ("evolve", {}),
        ("evolve", {"ref_values": {"pSize": 4}}),
        ("evolve", {"functions": ["Ref"], "strict_types": False, "is_resolved_value": True}),
        ("evolve", {"path": context.path.descend(path="Resources", cfn_path="Resources")}),
    ]
    for name, kwargs in calls:
        made = getattr(context, name)(**dict(kwargs))
        with cfn_lint_s_own_contexts():
            own = getattr(context, name)(**dict(kwargs))
        assert type(made) is type(own) and made == own and _fields(made) == _fields(own), (name, kwargs)
    merged = context.evolve(ref_values={"a": 1}).evolve(ref_values={"b": 2})
    assert merged.ref_values == {**context.ref_values, "a": 1, "b": 2} and "a" not in context.ref_values

    path = context.path.descend(path="Resources", cfn_path="Resources").descend(path="rBucket",
                                                                                cfn_path="AWS::S3::Bucket")
    for name, kwargs in [("descend", {"path": "Properties", "cfn_path": "Properties"}), ("descend", {"path": 0}),
                         ("descend", {}), ("evolve", {"value_path": deque(["Parameters", "pSize", "Default"])}),
                         ("evolve", {})]:
        made = getattr(path, name)(**dict(kwargs))
        with cfn_lint_s_own_contexts():
            own = getattr(path, name)(**dict(kwargs))
        assert made == own and _fields(made) == _fields(own), (name, kwargs)
        assert made.path is not path.path or name == "evolve" or not kwargs.get("path")


def test_cfn_lint_s_errors_are_kept():
    context = _context()
    path = context.path
    for kwargs, error in [({"cfn_path": "Fn::Sub"}, ValueError), ({"cfn_path": 3}, ValueError),
                          ({"nope": 1}, TypeError)]:
        with pytest.raises(error) as made:
            path.descend(**kwargs)
        with cfn_lint_s_own_contexts(), pytest.raises(error) as own:
            path.descend(**kwargs)
        assert str(made.value) == str(own.value)
    for target in (context, path):
        with pytest.raises(TypeError) as made:
            target.evolve(nope=1)
        with cfn_lint_s_own_contexts(), pytest.raises(TypeError) as own:
            target.evolve(nope=1)
        assert str(made.value) == str(own.value)


def test_module_names_are_carried_only_with_the_same_resources():
    context = _context()
    assert context.module_names == ()  # computed and cached on this instance
    assert context.evolve(functions=["Ref"]).__dict__["module_names"] is context.module_names
    assert "module_names" not in _context().evolve().__dict__  # not computed yet: nothing to carry
    body, _ = decode_str('Resources:\n  rModule:\n    Type: Acme::Lake::Queue::MODULE\n')
    modules = create_context_for_template(Template("module.yaml", body, ["us-east-1"])).resources
    assert context.evolve(resources=modules).module_names == ("rModule",)


def test_the_patch_comes_out_and_is_not_installed_twice():
    cfn_lint_rules()
    patched = [owner.__dict__[name] for owner, name in OWNERS]
    assert contexts_made_by_copy() is None  # already in place: steps aside
    with cfn_lint_s_own_contexts():
        undo = contexts_made_by_copy()
        assert undo is not None
        assert all(owner.__dict__[name] is not method for (owner, name), method in zip(OWNERS, patched))
        undo()
        assert [owner.__dict__[name] for owner, name in OWNERS] == [m._sdlf_original for m in patched]


def test_contexts_of_another_shape_are_left_alone():
    cfn_lint_rules()

    @dataclasses.dataclass  # not frozen: cfn-lint built differently
    class Other:
        ref_values: dict = dataclasses.field(default_factory=dict)

    with cfn_lint_s_own_contexts():
        own = cfn_context.Context
        cfn_context.Context = Other
        try:
            assert contexts_made_by_copy() is None
            assert not hasattr(Other.__dict__.get("evolve"), "_sdlf_original")
        finally:
            cfn_context.Context = own
