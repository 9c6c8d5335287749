from collections import Counter
from itertools import permutations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchbot.config.protocol import default_protocol_path, load_protocol
from benchbot.config.schedule import make_schedule, placement_seed, williams_orders


@pytest.fixture(scope="module")
def paper():
    return load_protocol(default_protocol_path())


def small(paper, objects: int, methods: list[str], trials: int):
    proto = paper.protocol.model_copy(update={"objects": paper.protocol.objects[:objects],
                                              "methods": methods, "trials_per_object": trials})
    return paper.model_copy(update={"protocol": proto})


def test_every_trial_exactly_once(paper):
    s = make_schedule(paper)
    assert len(s) == 180
    keys = Counter((t.object_id, t.trial_index, t.method) for t in s)
    assert set(keys.values()) == {1}
    assert {k[0] for k in keys} == set(paper.protocol.objects)
    assert {k[1] for k in keys} == {1, 2, 3, 4, 5}
    assert [t.seq for t in s] == list(range(180))
    assert len({t.trial_id for t in s}) == 180
    assert all(t.trial_id == f"{t.object_id}/{t.trial_index}/{t.method}" for t in s)


def test_deterministic_and_defaults_to_protocol_seed(paper):
    assert make_schedule(paper) == make_schedule(paper)
    assert make_schedule(paper) == make_schedule(paper, seed=paper.protocol.seed)
    assert make_schedule(paper, seed=1) != make_schedule(paper, seed=2)


def test_placement_shared_by_the_methods_of_a_slot(paper):
    s = make_schedule(paper)
    for i in range(0, 180, 3):
        slot = s[i:i + 3]  # methods of a slot run back-to-back
        assert len({t.placement_id for t in slot}) == 1
        assert len({t.placement_seed for t in slot}) == 1
        assert {t.method for t in slot} == set(paper.protocol.methods)
        assert slot[0].placement_id == f"{slot[0].object_id}/{slot[0].trial_index}"
    assert len({t.placement_seed for t in s}) == 60
    assert placement_seed(2019, "mug/1") == placement_seed(2019, "mug/1")  # not salted
    assert placement_seed(2019, "mug/1") != placement_seed(2020, "mug/1")
    # placement seeds depend on the run seed only, not on the order
    a = {t.placement_id: t.placement_seed for t in make_schedule(paper, seed=7)}
    assert a["mug/3"] == placement_seed(7, "mug/3")


def test_each_method_in_each_position_equally_often(paper):
    s = make_schedule(paper)
    counts = Counter((t.method, t.seq % 3) for t in s)
    assert set(counts.values()) == {20} and len(counts) == 9
    # first-order carry-over balanced: each ordered pair adjacent equally often within slots
    pairs = Counter((s[i].method, s[i + 1].method) for b in range(0, 180, 3) for i in (b, b + 1))
    assert set(pairs.values()) == {20} and len(pairs) == 6


def test_objects_spread_over_the_day(paper):
    s = make_schedule(paper)
    slots = [t for t in s if t.seq % 3 == 0]
    for k in range(5):  # round k holds every object's (k+1)-th placement
        rnd = slots[12 * k:12 * (k + 1)]
        assert {t.trial_index for t in rnd} == {k + 1}
        assert len({t.object_id for t in rnd}) == 12
    assert all(a.object_id != b.object_id for a, b in zip(slots, slots[1:], strict=False))
    # object orders differ between rounds (shuffled per round)
    orders = {tuple(t.object_id for t in slots[12 * k:12 * (k + 1)]) for k in range(5)}
    assert len(orders) > 1


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_williams_design(n):
    rows = williams_orders(n)
    assert len(rows) == (1 if n == 1 else n if n % 2 == 0 else 2 * n)
    assert all(sorted(r) == list(range(n)) for r in rows)
    pos = Counter((m, i) for r in rows for i, m in enumerate(r))
    assert len(set(pos.values())) == 1
    if n > 1:
        adj = Counter((r[i], r[i + 1]) for r in rows for i in range(n - 1))
        assert set(adj) == set(permutations(range(n), 2)) and len(set(adj.values())) == 1


@settings(max_examples=25, deadline=None)
@given(objects=st.integers(1, 5), n_methods=st.integers(1, 4), trials=st.integers(1, 4),
       seed=st.integers(0, 2**40))
def test_any_size_complete_and_nearly_balanced(paper, objects, n_methods, trials, seed):
    methods = ["a", "b", "c", "d"][:n_methods]
    s = make_schedule(small(paper, objects, methods, trials), seed=seed)
    assert len(s) == objects * n_methods * trials
    assert len({(t.object_id, t.trial_index, t.method) for t in s}) == len(s)
    counts = Counter((t.method, t.seq % n_methods) for t in s)
    full = [counts.get((m, p), 0) for m in methods for p in range(n_methods)]
    assert max(full) - min(full) <= 1
