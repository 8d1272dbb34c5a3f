"""NNI-style perturbation (PBT explore): per-type rules, bounds, determinism, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ray import tune

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
    perturb,
)
from rafiki_ray.spaces._perturb import perturb_value


def _moves(param, value, n=400, seed=0, **kw):
    rng = np.random.default_rng(seed)
    kw.setdefault("resample_probability", 0.0)
    return [perturb_value(param, value, rng, **kw) for _ in range(n)]


@pytest.mark.parametrize(
    "param, value, expected",
    [
        (Float(0.0, 10.0), 5.0, {3.0, 7.0}),  # +- factor * range
        (Float(1e-4, 1e0, log=True), 1e-2, {1e-2 * 10 ** -0.8, 1e-2 * 10**0.8}),  # log range
        (Float(0.0, 1.0, q=0.1), 0.5, {0.4, 0.6}),  # +- q
        (Int(0, 10), 4, {3, 5}),  # +- 1
        (Int(0, 20, q=5), 10, {5, 15}),  # +- q
        (Categorical(("a", "b", "c", "d")), "b", {"a", "c"}),  # +- 1 index
        (Normal(0.0, 2.0), 1.0, {0.6, 1.4}),  # +- factor * sigma
        (Normal(0.0, 1.0, q=0.5), 1.0, {0.5, 1.5}),  # qnormal: +- q
    ],
)
def test_moves_follow_nni_rules(param, value, expected):
    got = _moves(param, value)
    assert {round(v, 9) if isinstance(v, float) else v for v in got} == {
        round(v, 9) if isinstance(v, float) else v for v in expected
    }
    # 50/50 up or down
    ups = sum(1 for v in got if v > value)
    assert 0.4 < ups / len(got) < 0.6


def test_log_normal_moves_in_log_space():
    got = {round(v, 9) for v in _moves(Normal(0.0, 1.0, log=True), math.e)}
    assert got == {round(math.exp(1.2), 9), round(math.exp(0.8), 9)}


@pytest.mark.parametrize(
    "param, value, edge",
    [
        (Float(0.0, 1.0), 0.95, {0.75, 1.0}),
        (Float(0.0, 1.0), 0.05, {0.0, 0.25}),
        (Int(0, 3), 3, {2, 3}),
        (Categorical((1, 2, 3)), 1, {1, 2}),
        (Float(1.0, 100.0, log=True), 90.0, {100.0, 90.0 * 100 ** -0.2}),
    ],
)
def test_clipped_to_bounds(param, value, edge):
    got = {round(v, 9) for v in _moves(param, value)}
    assert got == {round(v, 9) for v in edge}
    assert all(param.contains(v) for v in _moves(param, value))


def test_resample_probability_one_draws_from_prior():
    p = Float(0.0, 1.0)
    got = _moves(p, 0.5, resample_probability=1.0)
    assert len(set(got)) > 300  # fresh draws, not two moved values
    assert all(0.0 <= v <= 1.0 for v in got)


@pytest.mark.parametrize("p", [0.0, 0.25, 0.5])
def test_resample_rate(p):
    param = Int(0, 1000)
    got = _moves(param, 500, n=2000, resample_probability=p)
    resampled = sum(1 for v in got if v not in (499, 501))
    assert abs(resampled / 2000 - p) < 0.05


def test_fixed_and_policy_never_change():
    space = SearchSpace({"a": Fixed(3), "b": Policy("EARLY_STOP", default=True), "x": Float(0, 1)})
    rng = np.random.default_rng(1)
    for _ in range(50):
        out = perturb(space, {"a": 3, "b": False, "x": 0.5}, rng, resample_probability=1.0)
        assert out["a"] == 3 and out["b"] is False


def test_arch_moves_each_position():
    arch = Arch(((1, 2, 3), ("a", "b", "c"), (True,)))
    got = _moves(arch, [2, "b", True], n=200)
    assert all(arch.contains(v) for v in got)
    assert {v[0] for v in got} == {1, 3} and {v[1] for v in got} == {"a", "c"}
    assert {v[2] for v in got} == {True}


def test_subset_swaps_one_candidate():
    s = Subset(("a", "b", "c", "d", "e"), 2)
    got = _moves(s, ["a", "b"], n=200)
    assert all(s.contains(v) for v in got)
    assert all(len(set(v) & {"a", "b"}) == 1 for v in got)
    nni = Subset((1, 2, 3), 1, emit="nni")
    out = perturb_value(nni, {"_value": [1], "_idx": [0]}, np.random.default_rng(0), resample_probability=0)
    assert out["_idx"] != [0] and nni.contains(out)


def test_conditional_perturbs_active_option_or_resamples():
    cond = Conditional(
        (
            Option("sgd", SearchSpace({"lr": Float(0.0, 1.0)})),
            Option("adam", SearchSpace({"lr": Float(0.0, 1.0), "beta": Float(0.5, 0.99)})),
        )
    )
    value = {"_name": "sgd", "lr": 0.5}
    kept = _moves(cond, value, n=100)
    assert all(v["_name"] == "sgd" and round(v["lr"], 9) in (0.3, 0.7) for v in kept)
    mixed = _moves(cond, value, n=400, resample_probability=0.5)
    assert {v["_name"] for v in mixed} == {"sgd", "adam"}
    assert all(cond.contains(v) for v in mixed)


def test_nested_space_and_extra_keys_and_tune_space():
    space = {"opt": {"lr": tune.loguniform(1e-4, 1e-1)}, "layers": tune.randint(1, 5)}
    cfg = {"opt": {"lr": 1e-3}, "layers": 2, "epochs": 7}
    out = perturb(space, cfg, np.random.default_rng(0), resample_probability=0.0)
    assert out["epochs"] == 7
    assert out["layers"] in (1, 3)
    assert out["opt"]["lr"] != 1e-3 and 1e-4 <= out["opt"]["lr"] <= 1e-1
    assert cfg == {"opt": {"lr": 1e-3}, "layers": 2, "epochs": 7}  # input untouched
    assert SearchSpace.from_tune(space).contains({k: out[k] for k in ("opt", "layers")})


def test_same_seed_same_result_and_full_space_stays_valid():
    space = SearchSpace(
        {
            "f": Float(0, 1), "lf": Float(1e-3, 1, log=True), "qf": Float(0, 1, q=0.25),
            "i": Int(1, 100, log=True), "n": Normal(0, 1), "c": Categorical(("x", "y", "z")),
            "a": Arch(((1, 2), (3, 4))), "s": Subset((1, 2, 3), 2),
        }
    )
    base = space.sample(3)
    a = perturb(space, base, np.random.default_rng(7))
    b = perturb(space, base, np.random.default_rng(7))
    assert a == b
    rng = np.random.default_rng(8)
    cfg = base
    for _ in range(200):
        cfg = perturb(space, cfg, rng, factor=0.5)
        assert space.contains(cfg), cfg


@pytest.mark.parametrize(
    "kwargs, exc, text",
    [
        ({"factor": -0.1}, ValueError, "perturb.factor"),
        ({"factor": "big"}, TypeError, "perturb.factor"),
        ({"resample_probability": 1.5}, ValueError, "perturb.resample_probability"),
    ],
)
def test_bad_arguments(kwargs, exc, text):
    with pytest.raises(exc, match=text):
        perturb({"x": tune.uniform(0, 1)}, {"x": 0.5}, np.random.default_rng(0), **kwargs)


def test_bad_config():
    space = {"x": tune.uniform(0, 1), "c": tune.choice(["a", "b"])}
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"config: is missing \['c'\]"):
        perturb(space, {"x": 0.5}, rng)
    with pytest.raises(TypeError, match=r"config.x: must be a number"):
        perturb(space, {"x": "half", "c": "a"}, rng, resample_probability=0.0)
    with pytest.raises(ValueError, match=r"not one of"):
        perturb(space, {"x": 0.5, "c": "zzz"}, rng, resample_probability=0.0)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        perturb(space, {"x": 0.5, "c": "a"}, 3)
