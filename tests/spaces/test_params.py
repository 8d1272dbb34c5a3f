"""Parameter types: validation errors, sampling laws, membership, grids and plain-data round trips."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from rafiki_ray.spaces import (
    Arch,
    Categorical,
    Conditional,
    Fixed,
    Float,
    Int,
    Normal,
    Option,
    Policy,
    SearchSpace,
    Subset,
)
from rafiki_ray.spaces._space import _param_from_dict

ALL_PARAMS = [
    Float(0.0, 1.0),
    Float(1e-3, 1.0, log=True),
    Float(2, 10, q=5),
    Float(0, 1, q=0.3, rounding="floor", clip=False),
    Int(-3, 3),
    Int(1, 1000, log=True),
    Int(1, 10, q=3),
    Normal(0, 1),
    Normal(0, 1, log=True, q=0.5),
    Categorical(("a", 1, 2.5, True, None, [1, 2], {"k": "v"})),
    Categorical(("x", "y"), weights=(0.25, 0.75)),
    Categorical(("conv", "pool"), emit="nni"),
    Fixed({"nested": [1, 2]}),
    Policy("EARLY_STOP"),
    Arch((("a", "b"), (1, 2, 3))),
    Subset(("i0", "i1", "i2"), 2),
    Subset(("i0", "i1", "i2"), 1, emit="nni"),
    Conditional(
        (Option("svm", SearchSpace({"C": Float(0.1, 10, log=True)})), Option("tree", SearchSpace({}))),
        weights=(0.5, 0.5),
    ),
    Conditional((Option(0, SearchSpace({"a": Int(0, 2)})), Option(1, SearchSpace({"b": Int(5, 6)}))), label_key=None),
]


@pytest.mark.parametrize("param", ALL_PARAMS, ids=lambda p: repr(p)[:50])
def test_samples_are_contained_and_plain_data_round_trips(param):
    rng = np.random.default_rng(0)
    for _ in range(50):
        assert param.contains(param.sample(rng))
    assert _param_from_dict(param.to_dict(), "p") == param
    grid = param.grid_values()
    if grid is not None:
        assert grid and all(param.contains(v) for v in grid)


@pytest.mark.parametrize(
    ("make", "exc", "message"),
    [
        (lambda: Float(1, 0), ValueError, "float: needs low <= high, got [1.0, 0.0]"),
        (lambda: Float(0, 1, log=True), ValueError, "float: log scale needs 0 < low <= high"),
        (lambda: Float("0", 1), TypeError, "float.low: must be a number"),
        (lambda: Float(True, 1), TypeError, "float.low: must be a number"),
        (lambda: Float(0, math.inf), ValueError, "float.high: must be finite"),
        (lambda: Float(0, 1, q=0), ValueError, "float.q: must be > 0"),
        (lambda: Float(0, 1, rounding="ceil"), ValueError, "float.rounding"),
        (lambda: Int(0.5, 3), TypeError, "int.low: must be an integer"),
        (lambda: Int(0, False), TypeError, "int.high: must be an integer"),
        (lambda: Int(3, 1), ValueError, "int: needs low <= high"),
        (lambda: Int(0, 3, log=True), ValueError, "int: log scale needs 0 < low"),
        (lambda: Int(0, 3, q=0), ValueError, "int.q: must be a positive integer"),
        (lambda: Int(0, 3, q=1.5), ValueError, "int.q: must be a positive integer"),
        (lambda: Int(1, 2, q=5), ValueError, "int: has no multiple of q=5"),
        (lambda: Normal(0, 0), ValueError, "normal.sigma: must be > 0"),
        (lambda: Normal(0, 1, q=-1), ValueError, "normal.q: must be > 0"),
        (lambda: Normal("a", 1), TypeError, "normal.mu: must be a number"),
        (lambda: Categorical(()), ValueError, "categorical.choices: must not be empty"),
        (lambda: Categorical("abc"), TypeError, "categorical.choices: must be a list"),
        (lambda: Categorical((1, 2), weights=(1.0,)), ValueError, "categorical.weights: needs one weight per choice"),
        (lambda: Categorical((1, 2), weights=(0.5, 0.6)), ValueError, "categorical.weights: must sum to 1"),
        (lambda: Categorical((1, 2), weights=(1.5, -0.5)), ValueError, "categorical.weights: must be finite and >= 0"),
        (lambda: Categorical((1, 2), emit="json"), ValueError, "categorical.emit"),
        (lambda: Policy("FAST"), ValueError, "policy: must be one of"),
        (lambda: Policy("EARLY_STOP", default=1), TypeError, "policy.default: must be a bool"),
        (lambda: Arch(()), ValueError, "arch.items: must not be empty"),
        (lambda: Arch((("a",), ())), ValueError, "arch.items[1]: must not be empty"),
        (lambda: Arch((("a",), 3)), TypeError, "arch.items[1]: must be a list of candidates"),
        (lambda: Subset((), 0), ValueError, "subset.candidates: must not be empty"),
        (lambda: Subset(("a", "b"), 3), ValueError, "subset.n_chosen: must be an int in [0, 2]"),
        (lambda: Subset(("a", "b"), True), ValueError, "subset.n_chosen"),
        (lambda: Subset(("a", "b"), 1, emit=float("inf")), ValueError, "subset.emit: must be 'value' or 'nni'"),
        (lambda: Conditional(()), ValueError, "conditional.options: must not be empty"),
        (lambda: Conditional(("a",)), TypeError, "conditional.options[0]: must be an Option"),
        (
            lambda: Conditional((Option("a", SearchSpace({"_name": Int(0, 1)})),)),
            ValueError,
            "conditional.options[0]: sub-space must not define '_name'",
        ),
        (
            lambda: Conditional((Option("a", SearchSpace({})),), weights=(0.5,)),
            ValueError,
            "conditional.weights",
        ),
    ],
)
def test_validation_errors_name_field_rule_and_value(make, exc, message):
    with pytest.raises(exc) as info:
        make()
    assert message in str(info.value)


def test_float_quantisation_round_clip_vs_floor_no_clip():
    nni = Float(2, 10, q=5)  # NNI: clip(round(U/q)*q, lo, hi)
    assert {nni.from_unit(u) for u in np.linspace(0, 1, 101)} == {2.0, 5.0, 10.0}
    assert nni.grid_values() == [2.0, 5.0, 10.0]
    poly = Float(0, 1, q=0.3, rounding="floor", clip=False)  # Polyaxon: floor(U/q)*q
    assert {poly.from_unit(u) for u in np.linspace(0, 1, 101)} == {0.0, 0.3, 0.6, 0.9}
    assert poly.contains(0.9) and not poly.contains(0.5)
    assert not nni.contains(11.0) and nni.contains(2.0) and not nni.contains(3.0)


def test_float_unit_maps_are_inverse():
    for p in (Float(-2, 3), Float(1e-4, 1e2, log=True)):
        for u in np.linspace(0, 1, 11):
            assert p.to_unit(p.from_unit(u)) == pytest.approx(u, abs=1e-9)
    assert Float(3, 3).to_unit(3) == 0.5 and Float(3, 3).grid_values() == [3.0]


def test_int_bounds_inclusive_and_uniform():
    p = Int(-2, 2)
    xs = [p.sample(np.random.default_rng(s)) for s in range(2000)]
    counts = Counter(xs)
    assert set(counts) == {-2, -1, 0, 1, 2}
    assert stats.chisquare([counts[k] for k in range(-2, 3)]).pvalue > 1e-3
    assert all(type(x) is int for x in xs)
    assert not p.contains(True) and not p.contains(1.0) and p.contains(np.int64(1))
    assert Int(1.0, 3.0) == Int(1, 3)  # integral floats are accepted


def test_int_with_q_draws_only_multiples_and_unit_map_hits_every_value():
    p = Int(1, 10, q=3)
    rng = np.random.default_rng(0)
    assert {p.sample(rng) for _ in range(300)} == {3, 6, 9}
    assert p.size == 3 and p.grid_values() == [3, 6, 9]
    assert {p.from_unit(u) for u in np.linspace(0, 1, 50)} == {3, 6, 9}
    for v in (3, 6, 9):
        assert p.from_unit(p.to_unit(v)) == v


def test_log_int_law():
    p = Int(1, 100, log=True)
    rng = np.random.default_rng(1)
    xs = np.array([p.sample(rng) for _ in range(4000)])
    edges = [1, 2, 4, 8, 16, 32, 64, 101]
    expected = np.diff(np.log(edges)) / math.log(101) * xs.size
    assert stats.chisquare(np.histogram(xs, bins=edges)[0], expected).pvalue > 1e-3
    for v in (1, 7, 50, 100):
        assert p.from_unit(p.to_unit(v)) == v


def test_normal_laws_and_membership():
    rng = np.random.default_rng(2)
    xs = np.array([Normal(1, 2).sample(rng) for _ in range(3000)])
    assert stats.kstest(xs, "norm", args=(1, 2)).pvalue > 1e-3
    ln = Normal(0, 0.5, log=True)
    # exp(N) underflows to 0.0 for a draw far below mu: a sample the space must contain
    assert ln.contains(0.3) and not ln.contains(-0.1) and ln.contains(0.0)
    qln = Normal(0, 0.5, log=True, q=0.5)
    assert qln.contains(0.0) and qln.contains(1.5) and not qln.contains(-0.5)
    q = Normal(0, 1, q=0.25)
    assert q.contains(0.75) and not q.contains(0.1) and q.contains(-100.0)  # no clip
    assert q.from_unit(q.to_unit(0.5)) == 0.5


def test_categorical_weights_and_bool_is_not_int():
    p = Categorical(("x", "y", "z"), weights=(0.2, 0.3, 0.5))
    rng = np.random.default_rng(3)
    counts = Counter(p.sample(rng) for _ in range(4000))
    assert stats.chisquare([counts[c] for c in "xyz"], [800, 1200, 2000]).pvalue > 1e-3
    c = Categorical((1, True))
    assert c.index(True) == 1 and c.index(1) == 0
    assert not Categorical((1, 2)).contains(True)
    with pytest.raises(ValueError, match="categorical: value is not one of"):
        Categorical((1, 2)).index(3)


def test_nni_emit_formats():
    c = Categorical(("conv", "pool"), emit="nni")
    assert c.pick(1) == {"_value": "pool", "_idx": 1}
    assert c.contains({"_value": "pool", "_idx": 1}) and c.index({"_value": "pool", "_idx": 1}) == 1
    s = Subset(("a", "b", "c"), 2, emit="nni")
    assert s.pick([2, 0]) == {"_value": ["a", "c"], "_idx": [0, 2]}
    assert s.contains({"_value": ["a", "c"], "_idx": [0, 2]})
    assert not Subset(("a", "b", "c"), 2).contains(["a"])
    assert len(Subset(("a", "b", "c", "d"), 2).grid_values()) == 6


def test_fixed_samples_are_copies():
    p = Fixed({"a": [1]})
    v = p.sample(np.random.default_rng(0))
    v["a"].append(2)
    assert p.value == {"a": [1]} and p.contains({"a": [1]}) and not p.contains({"a": [1, 2]})
    assert Fixed(1).contains(1) and not Fixed(1).contains(True)


def test_arch_positions_and_grid():
    p = Arch((("a", "b"), (1, 2, 3)))
    assert p.contains(["b", 3]) and not p.contains(["b", 4]) and not p.contains(["b"])
    assert len(p.grid_values()) == 6
    assert p.index(1, 2) == 1


def test_conditional_labels_weights_and_grid():
    p = ALL_PARAMS[-2]
    rng = np.random.default_rng(4)
    labels = Counter(p.sample(rng)["_name"] for _ in range(1000))
    assert set(labels) == {"svm", "tree"}
    assert p.which({"_name": "tree"}) == 1 and p.sub_value({"_name": "svm", "C": 1.0}) == {"C": 1.0}
    assert not p.contains({"_name": "svm", "C": 100.0}) and not p.contains({"_name": "knn"})
    assert p.grid_values() is None  # svm's C is continuous
    unlabeled = ALL_PARAMS[-1]
    assert unlabeled.which({"b": 6}) == 1 and unlabeled.contains({"a": 2})
    assert unlabeled.grid_values() == [{"a": 0}, {"a": 1}, {"a": 2}, {"b": 5}, {"b": 6}]


def test_params_are_immutable_and_hashable():
    p = Float(0, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.low = 5  # type: ignore[misc]
    assert len({hash(x) for x in ALL_PARAMS}) > 1
    assert Float(0, 1) == Float(0.0, 1.0) and Categorical((1, 2)) != Categorical((1, 2), emit="nni")


def test_conditional_rejects_two_options_with_one_label():
    """A value names its option by label, so two options with one label are ambiguous: the
    second option's samples were judged against the first's space (the slow property test
    found it in a corrupted serialized space whose labels read [0, 0])."""
    a = SearchSpace({"x": Categorical([1, 2])})
    b = SearchSpace({"y": Float(0.0, 1.0)})
    with pytest.raises(ValueError, match=r"options\[1\]\.label.*options\[0\].*got 0"):
        Conditional((Option(0, a), Option(0, b)))
    with pytest.raises(ValueError, match=r"options\[1\]\.label"):
        SearchSpace.from_dict({"_": {"type": "conditional", "options": [
            {"label": 0, "space": {"x": {"type": "categorical", "choices": [1, 2]}}},
            {"label": 0, "space": {"y": {"type": "float", "low": 0.0, "high": 1.0}}}]}})
    assert Conditional((Option(0, a), Option(1, b))).contains({"_name": 1, "y": 0.5})
    assert Conditional((Option(0, a), Option(0, b)), label_key=None).contains({"y": 0.5})


def test_conditional_with_a_huge_option_grid_is_not_finite_without_enumerating_it():
    """An option whose grid is a product of large finite parameters (10**15 configurations
    here) makes the Conditional too large to list: ``grid_values`` says so from the sizes.
    It enumerated the option's whole grid before checking the limit, and the slow RapidFire
    property test (a List of dicts holding stepped Ranges) grew to 24 GB and was OOM-killed."""
    from rafiki_ray.spaces._params import GRID_LIMIT

    big = SearchSpace({k: Int(0, 99_999) for k in "abc"})
    p = Conditional((Option(0, SearchSpace({"x": Fixed(1)})), Option(1, big)), label_key=None)
    assert p.grid_values() is None
    assert not SearchSpace({"c": p}).is_finite()
    # the limit is the same as before: a grid of exactly GRID_LIMIT values is listed
    edge = Conditional((Option(0, SearchSpace({"x": Int(1, GRID_LIMIT - 1)})),
                        Option(1, SearchSpace({"y": Fixed(0)}))), label_key=None)
    assert len(edge.grid_values()) == GRID_LIMIT
    over = Conditional((Option(0, SearchSpace({"x": Int(0, GRID_LIMIT - 1)})),
                        Option(1, SearchSpace({"y": Fixed(0)}))), label_key=None)
    assert over.grid_values() is None


def test_grid_count_is_the_length_of_grid_values():
    from rafiki_ray.spaces._params import GRID_LIMIT

    extra = [Int(0, GRID_LIMIT), Int(0, GRID_LIMIT - 1), Int(0, 10**9, q=10**4)]
    for p in [*ALL_PARAMS, *extra]:
        vals = p.grid_values()
        assert p.grid_count() == (None if vals is None else len(vals)), p


def test_nested_choices_count_their_grid_in_linear_time():
    """A chain of nested finite choices (NNI's nested choice, a RapidFire List of dicts):
    is_finite / grid_size re-listed every inner grid at every level, exponential in the depth
    (2**d: depth 20 took 16 s, so the depth MAX_NESTING allows would take hours); counting is
    linear and listing visits each value once."""
    import time

    depth = 30  # just under MAX_NESTING (32)
    s = SearchSpace({"x": Int(0, 2)})
    for k in range(depth):
        inner = Conditional((Option(0, SearchSpace({"y": Fixed(k)})), Option(1, s)),
                            label_key=None)
        s = SearchSpace({f"c{k}": inner})
    t = time.perf_counter()
    assert s.is_finite() and s.grid_size() == depth + 3 == s.grid_count()
    grid = list(s.grid())
    assert len(grid) == depth + 3 and len({repr(c) for c in grid}) == depth + 3
    s.validate(grid[-1])
    assert time.perf_counter() - t < 10
