from sdlf_cli.local.runtime.bounded_memo import BoundedMemo


def test_an_answer_is_computed_once_per_key_none_included_and_all_are_forgotten_at_the_bound():
    calls = []
    memo = BoundedMemo(2)

    def compute(key):
        calls.append(key)
        return None if key == "none" else key.upper()

    assert [memo.get(k, lambda k=k: compute(k)) for k in ("a", "none", "a", "none")] == ["A", None, "A", None]
    assert calls == ["a", "none"]
    assert memo.get("b", lambda: compute("b")) == "B"  # the bound: every answer forgotten, then b remembered
    assert memo.get("a", lambda: compute("a")) == "A"
    assert calls == ["a", "none", "b", "a"]
