"""The modular-arithmetic datasets."""

import pytest
import torch

from grokwatch.examples.tasks import OPS, make_task


@pytest.mark.parametrize("op", sorted(OPS))
def test_labels_follow_the_operation(op):
    p = 11
    train, val = make_task(op, p, 0.4, seed=3)
    expect = {"add": lambda a, b: (a + b) % p, "sub": lambda a, b: (a - b) % p,
              "mul": lambda a, b: (a * b) % p, "sq_add": lambda a, b: (a * a + b * b) % p}[op]
    for split in (train, val):
        for a, b, y in zip(split.a.tolist(), split.b.tolist(), split.y.tolist()):
            assert y == expect(a, b)


def test_split_is_a_partition_of_all_pairs_with_the_asked_share():
    p = 13
    train, val = make_task("add", p, 0.3, seed=0)
    pairs = {(a, b) for s in (train, val) for a, b in zip(s.a.tolist(), s.b.tolist())}
    assert len(pairs) == p * p == len(train) + len(val)
    assert len(train) == round(0.3 * p * p)


def test_split_depends_on_the_seed_only():
    torch.manual_seed(123)
    a1, _ = make_task("add", 17, 0.5, seed=1)
    torch.manual_seed(999)  # global RNG state must not matter
    a2, _ = make_task("add", 17, 0.5, seed=1)
    b, _ = make_task("add", 17, 0.5, seed=2)
    assert torch.equal(a1.a, a2.a) and torch.equal(a1.b, a2.b)
    assert not (torch.equal(a1.a, b.a) and torch.equal(a1.b, b.b))


@pytest.mark.parametrize("kw, msg", [
    ({"op": "div"}, "unknown op"),
    ({"p": 1}, "modulus"),
    ({"frac": 0.0}, "empty"),
    ({"frac": 1.0}, "empty"),
])
def test_bad_arguments_are_refused_with_a_clear_message(kw, msg):
    args = {"op": "add", "p": 7, "frac": 0.5, **kw}
    with pytest.raises(ValueError, match=msg):
        make_task(args["op"], args["p"], args["frac"])


@pytest.mark.parametrize("name, order", [("D5", 10), ("D30", 60), ("S4", 24)])
def test_groups_are_non_abelian_groups(name, order):
    from grokwatch.examples.tasks import group_order, group_table

    t = group_table(name)
    assert t.shape == (order, order) and group_order(name) == order
    n = order
    for row in t.tolist():  # a Latin square: every element once per row and column
        assert sorted(row) == list(range(n))
    assert all(sorted(col) == list(range(n)) for col in t.T.tolist())
    i, j, k = torch.meshgrid(torch.arange(n), torch.arange(n), torch.arange(0, n, 3), indexing="ij")
    assert torch.equal(t[t[i, j], k], t[i, t[j, k]])  # associative
    assert (t != t.T).any()  # not abelian
    e = int((t == torch.arange(n)[None, :]).all(1).nonzero()[0])
    assert torch.equal(t[e], torch.arange(n))  # an identity


def test_group_task_labels_are_compositions():
    from grokwatch.examples.tasks import group_table

    train, val = make_task("D7", 14, 0.5, seed=1)
    t = group_table("D7")
    for s in (train, val):
        assert torch.equal(s.y, t[s.a, s.b])
    with pytest.raises(ValueError, match="14 elements"):
        make_task("D7", 13, 0.5)
    with pytest.raises(ValueError, match="unknown op"):
        make_task("Q8", 8, 0.5)


def test_digits_split_is_seeded_and_ships_with_scikit_learn():
    pytest.importorskip("sklearn", reason="the digits task needs scikit-learn (the sklearn extra)")
    from grokwatch.examples.tasks import make_digits

    tr, va = make_digits(300, seed=2)
    assert tr.x.shape == (300, 64) and len(tr) + len(va) == 1797
    assert float(tr.x.max()) <= 1.0 and set(tr.y.tolist()) == set(range(10))
    tr2, _ = make_digits(300, seed=2)
    assert torch.equal(tr.y, tr2.y)
