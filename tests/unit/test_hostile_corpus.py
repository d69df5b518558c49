"""The hostile corpus through stage A's default transform: each file reaches its stated end state, the good
ones beside the bad ones are unaffected, and every refusal says what was wrong and what was expected."""
from __future__ import annotations

import json

import pytest

from sdlf_datalake.errors import InvalidInputError
from sdlf_datalake.transforms import RawObject, get_transform
from tests.corpus import cases

CASES = cases()


def _run(name: str, body: bytes):
    return get_transform("default")(RawObject("raw", f"engineering/hostile/{name}", "engineering", "hostile", body))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_file_reaches_its_end_state(case):
    if case.records is not None:
        [output] = _run(case.name, case.body)
        assert output.records == case.records
        for line in output.body.decode("utf-8").splitlines():
            assert isinstance(json.loads(line), dict)
    else:
        with pytest.raises(InvalidInputError) as refused:
            _run(case.name, case.body)
        assert str(refused.value).startswith(case.reason), str(refused.value)


def test_a_batch_of_all_of_them_processes_every_good_file_whatever_its_neighbours():
    outcomes = {}
    for case in CASES:
        try:
            outcomes[case.name] = _run(case.name, case.body)[0].records
        except InvalidInputError as exc:
            outcomes[case.name] = str(exc)
    assert {name: n for name, n in outcomes.items() if isinstance(n, int)} == \
        {c.name: c.records for c in CASES if c.records is not None}


def test_a_50_mb_single_line_is_one_record():
    value = "x" * (50 * 1024**2)
    body = json.dumps({"id": 1, "blob": value}).encode()
    [output] = _run("one-line.jsonl", body)
    assert output.records == 1 and len(output.body) > 50 * 1024**2


def test_refusals_say_what_was_expected():
    for case in CASES:
        if case.reason:
            with pytest.raises(InvalidInputError) as refused:
                _run(case.name, case.body)
            assert "expected" in str(refused.value) or "Expecting" in str(refused.value), str(refused.value)
