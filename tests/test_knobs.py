"""Rafiki's knob language and ``from_knobs`` (exact semantics, our deliberate fixes)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from rafiki_ray.knobs import (
    ArchKnob,
    CategoricalKnob,
    FixedKnob,
    FloatKnob,
    IntegerKnob,
    KnobValue,
    PolicyKnob,
)
from rafiki_ray.spaces import Arch, Categorical, Fixed, Float, Int, Policy, SearchSpace, from_knobs
from rafiki_ray.testing import SpaceAdapterContract

TF_FEED_FORWARD = {
    "max_epochs": FixedKnob(10),
    "hidden_layer_count": IntegerKnob(1, 2),
    "hidden_layer_units": IntegerKnob(2, 128),
    "learning_rate": FloatKnob(1e-5, 1e-1, is_exp=True),
    "batch_size": CategoricalKnob([16, 32, 64, 128]),
    "max_image_size": CategoricalKnob([16, 32, 48]),
    "quick_train": PolicyKnob("EARLY_STOP"),
}
SK_SVM = {
    "max_iter": FixedKnob(20),
    "kernel": CategoricalKnob(["rbf", "linear", "poly"]),
    "gamma": CategoricalKnob(["scale", "auto"]),
    "C": FloatKnob(1e-4, 1e4, is_exp=True),
}
ENAS_LIKE = {
    "cell": ArchKnob([[KnobValue(0), KnobValue(1)], ["conv3", "conv5", "pool"], [True, False]]),
    "epochs": FixedKnob(3),
    "share": PolicyKnob("SHARE_PARAMS"),
    "units": IntegerKnob(8, 512, is_exp=True),
}


class _Model:
    @staticmethod
    def get_knob_config() -> dict:
        return dict(SK_SVM)


class TestKnobContract(SpaceAdapterContract):
    @pytest.fixture
    def adapter(self):
        return from_knobs

    @pytest.fixture(params=[TF_FEED_FORWARD, SK_SVM, ENAS_LIKE, _Model], ids=["ff", "svm", "enas", "model"])
    def valid_spec(self, request):
        return request.param

    @pytest.fixture(
        params=[
            {**TF_FEED_FORWARD, **ENAS_LIKE},
            pytest.param(SK_SVM, marks=pytest.mark.slow),
            pytest.param(_Model, marks=pytest.mark.slow),
        ],
        ids=["ff+enas", "svm", "model"],
    )
    def tune_spec(self, request):
        return request.param

    @pytest.fixture(
        params=[
            ({"x": 3}, "knob_config.x"),
            ({"x": FixedKnob(1), 3: FixedKnob(2)}, "knob_config"),
            ([FixedKnob(1)], "knob_config"),
        ],
        ids=["not-a-knob", "int-name", "not-a-dict"],
    )
    def invalid_spec(self, request):
        return request.param


@pytest.mark.parametrize(
    ("make", "field", "exc"),
    [
        (lambda: CategoricalKnob([1, True]), "CategoricalKnob.values", TypeError),
        (lambda: CategoricalKnob([]), "CategoricalKnob.values", ValueError),
        (lambda: CategoricalKnob("abc"), "CategoricalKnob.values", TypeError),
        (lambda: CategoricalKnob([1, [2]]), "CategoricalKnob.values[1]", TypeError),
        (lambda: CategoricalKnob([1, 2.5]), "CategoricalKnob.values", TypeError),
        (lambda: IntegerKnob(1.5, 3), "IntegerKnob.value_min", TypeError),
        (lambda: IntegerKnob(1, True), "IntegerKnob.value_max", TypeError),
        (lambda: IntegerKnob(5, 3), "IntegerKnob", ValueError),
        (lambda: IntegerKnob(0, 3, is_exp=True), "is_exp needs 0 < value_min", ValueError),
        (lambda: IntegerKnob(1, 3, is_exp=1), "IntegerKnob.is_exp", TypeError),
        (lambda: FloatKnob("0", 1), "FloatKnob.value_min", TypeError),
        (lambda: FloatKnob(2, 1), "needs value_min <= value_max", ValueError),
        (lambda: FloatKnob(0, 1, is_exp=True), "is_exp needs 0 < value_min", ValueError),
        (lambda: PolicyKnob("FAST"), "PolicyKnob.policy", ValueError),
        (lambda: FixedKnob([1]), "FixedKnob.value", TypeError),
        (lambda: KnobValue(None), "KnobValue.value", TypeError),
        (lambda: ArchKnob([]), "ArchKnob.items", ValueError),
        (lambda: ArchKnob([[1], []]), "ArchKnob.items[1]", ValueError),
        (lambda: ArchKnob([[1], 2]), "ArchKnob.items[1]", TypeError),
        (lambda: ArchKnob([[1, {"a": 1}]]), "ArchKnob.items[0][1]", TypeError),
    ],
)
def test_bad_knobs_name_the_field(make, field, exc):
    with pytest.raises(exc) as info:
        make()
    assert field in str(info.value)
    assert "got" in str(info.value) or "must" in str(info.value)


def test_bool_is_its_own_type():
    assert CategoricalKnob([True, False]).values == [True, False]
    assert CategoricalKnob([1, 2]).values == [1, 2]
    space = from_knobs({"flag": CategoricalKnob([True, False])})
    for cfg in space.samples(20, seed=0):
        assert type(cfg["flag"]) is bool


def test_float_knob_allows_equal_bounds_and_casts():
    k = FloatKnob(1, 1)
    assert (k.value_min, k.value_max) == (1.0, 1.0) and type(k.value_min) is float
    assert from_knobs({"x": k}).sample(0) == {"x": 1.0}


def test_from_knobs_maps_each_knob_type():
    space = from_knobs({**TF_FEED_FORWARD, **ENAS_LIKE})
    assert space["max_epochs"] == Fixed(10)
    assert space["hidden_layer_units"] == Int(2, 128)
    assert space["learning_rate"] == Float(1e-5, 1e-1, log=True)
    assert space["batch_size"] == Categorical((16, 32, 64, 128))
    assert space["quick_train"] == Policy("EARLY_STOP")
    assert space["units"] == Int(8, 512, log=True)
    assert space["cell"] == Arch(((0, 1), ("conv3", "conv5", "pool"), (True, False)))
    assert from_knobs(_Model) == from_knobs(SK_SVM)


def test_integer_knob_is_exp_is_log_uniform():
    """is_exp is honoured for integers (the original ignored it): log(x) is ~uniform."""
    space = from_knobs({"n": IntegerKnob(1, 1000, is_exp=True)})
    xs = np.array([c["n"] for c in space.samples(4000, seed=1)])
    assert xs.min() >= 1 and xs.max() <= 1000
    # log-uniform integers: about half the draws below sqrt(1001) ~ 31.6, uniform gives ~3 %.
    assert 0.45 < np.mean(xs <= 31) < 0.55
    # Exact law: P(a <= n <= b) = (log(b + 1) - log(a)) / log(1001); chi-square over octaves.
    edges = [1, 2, 3, 5, 9, 17, 33, 65, 129, 257, 513, 1001]
    observed = np.histogram(xs, bins=edges)[0]
    expected = np.diff(np.log(edges)) / math.log(1001) * xs.size
    assert stats.chisquare(observed, expected).pvalue > 1e-3


def test_float_knob_is_exp_is_log_uniform():
    space = from_knobs({"lr": FloatKnob(1e-5, 1e-1, is_exp=True)})
    xs = np.array([c["lr"] for c in space.samples(3000, seed=3)])
    u = (np.log(xs) - math.log(1e-5)) / (math.log(1e-1) - math.log(1e-5))
    assert stats.kstest(u, "uniform").pvalue > 1e-3


def test_policy_knob_samples_its_default_and_arch_keeps_positions():
    space = from_knobs(ENAS_LIKE)
    for cfg in space.samples(30, seed=4):
        assert cfg["share"] is False
        assert cfg["cell"][0] in (0, 1) and cfg["cell"][1] in ("conv3", "conv5", "pool")
        assert type(cfg["cell"][2]) is bool
    assert isinstance(space, SearchSpace)


def test_repr_names_fields():
    assert repr(FloatKnob(0.1, 1.0, is_exp=True)) == "FloatKnob(value_min=0.1, value_max=1.0, is_exp=True)"
