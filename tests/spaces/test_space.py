"""SearchSpace: structure, sampling, validation, grid, plain data, and the Ray Tune round trip."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from ray import tune
from ray.tune.search.variant_generator import generate_variants

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
    as_space,
)
from rafiki_ray.spaces._space import RafikiDomain


def _space() -> SearchSpace:
    return SearchSpace({
        "lr": Float(1e-4, 1e-1, log=True),
        "layers": Int(1, 3),
        "opt": {"name": Categorical(("adam", "sgd")), "momentum": Float(0.5, 0.9, q=0.1)},
        "epochs": 5,
        "policy": Policy("EARLY_STOP"),
    })


def _tune_configs(param_space: dict, n: int = 1, seed: int = 0) -> list[dict]:
    """Configs exactly as Tune's BasicVariantGenerator resolves them (no cluster needed)."""
    out = []
    rng = np.random.RandomState(seed)
    for _ in range(n):
        out.extend(spec["config"] for _, spec in generate_variants({"config": param_space}, random_state=rng))
    return out


def test_structure_plain_values_and_nested_dicts():
    s = _space()
    assert s["epochs"] == Fixed(5) and isinstance(s["opt"], SearchSpace)
    assert [p for p, _ in s.leaves()] == [("lr",), ("layers",), ("opt", "name"), ("opt", "momentum"), ("epochs",), ("policy",)]
    assert len(s) == 5 and not s.is_empty() and SearchSpace().is_empty()
    with pytest.raises(TypeError):
        s["lr"] = Float(0, 1)  # type: ignore[index]
    with pytest.raises(TypeError, match="space: keys must be strings, got 3"):
        SearchSpace({3: Float(0, 1)})
    assert SearchSpace({"a": 1}, b=2) == SearchSpace({"a": Fixed(1), "b": Fixed(2)})


def test_sampling_is_seeded():
    s = _space()
    assert s.sample(7) == s.sample(7) != s.sample(8)
    rng = np.random.default_rng(3)
    assert s.samples(3, seed=rng) != s.samples(3, seed=rng)
    cfg = s.sample(0)
    assert cfg["epochs"] == 5 and cfg["policy"] is False and set(cfg["opt"]) == {"name", "momentum"}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ([1], "config: must be a dict"),
        ({"lr": 0.01}, "config: is missing ['layers', 'opt', 'epochs', 'policy']"),
        ({"lr": 0.01, "layers": 1, "opt": {"name": "adam", "momentum": 0.5}, "epochs": 5, "policy": True, "x": 1},
         "config: has keys not in the space: ['x']"),
        ({"lr": 1.0, "layers": 1, "opt": {"name": "adam", "momentum": 0.5}, "epochs": 5, "policy": True},
         "config.lr: is outside Float"),
        ({"lr": 0.01, "layers": 1, "opt": {"name": "rmsprop", "momentum": 0.5}, "epochs": 5, "policy": True},
         "config.opt.name: is outside Categorical"),
        ({"lr": 0.01, "layers": 1, "opt": {"name": "adam", "momentum": 0.55}, "epochs": 5, "policy": True},
         "config.opt.momentum"),
        ({"lr": 0.01, "layers": 1, "opt": "adam", "epochs": 5, "policy": True}, "config.opt: must be a dict"),
    ],
)
def test_validate_names_the_key(config, message):
    with pytest.raises((ValueError, TypeError)) as info:
        _space().validate(config)
    assert message in str(info.value)
    assert not _space().contains(config)


def test_grid_order_size_and_infinite_spaces():
    s = SearchSpace({"a": Categorical((1, 2)), "b": {"c": Int(0, 2)}, "d": "k"})
    grid = list(s.grid())
    assert s.is_finite() and s.grid_size() == len(grid) == 6
    assert grid[:3] == [{"a": 1, "b": {"c": c}, "d": "k"} for c in range(3)]  # last key fastest
    with pytest.raises(ValueError, match="lr: is not finite"):
        _space().grid_size()
    with pytest.raises(ValueError, match="lr: is not finite"):
        next(_space().grid())
    assert not _space().is_finite()


def test_dict_json_and_pickle_round_trips():
    s = SearchSpace({
        **_space(),
        "cond": Conditional((Option("x", SearchSpace({"u": Normal(0, 1, q=0.5)})), Option("y", SearchSpace({})))),
        "arch": Arch((("a", "b"), (1, 2))),
        "inputs": Subset(("i0", "i1"), 1, emit="nni"),
        "w": Categorical((1, 2), weights=(0.1, 0.9)),
    })
    assert SearchSpace.from_dict(s.to_dict()) == s
    assert SearchSpace.from_json(s.to_json()) == s
    assert pickle.loads(pickle.dumps(s)) == s


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"a": {"type": "gaussian"}}, "space.a.type: must be one of"),
        ({"a": 3}, "space.a: must be a dict with a 'type'"),
        ({"a": {"type": "float", "low": 2, "high": 1}}, "space.a: float: needs low <= high"),
        ({"a": {"type": "space", "params": {"b": {"type": "int", "low": "x", "high": 1}}}}, "space.a.b: int.low"),
        ([1, 2], "space: must be a dict"),
    ],
)
def test_from_dict_errors_have_paths(data, message):
    with pytest.raises((ValueError, TypeError)) as info:
        SearchSpace.from_dict(data)
    assert message in str(info.value)


# -- Ray Tune ---------------------------------------------------------------------------

TUNE_DOMAINS = [
    (tune.uniform(-1, 2), Float(-1, 2)),
    (tune.loguniform(1e-4, 1e-1), Float(1e-4, 1e-1, log=True)),
    (tune.quniform(0, 1, 0.25), Float(0, 1, q=0.25)),
    (tune.qloguniform(5, 100, 5), Float(5, 100, log=True, q=5)),
    (tune.randn(1, 2), Normal(1, 2)),
    (tune.qrandn(0, 1, 0.5), Normal(0, 1, q=0.5)),
    (tune.randint(0, 5), Int(0, 4)),
    (tune.qrandint(1, 10, 3), Int(1, 10, q=3)),
    (tune.lograndint(1, 100), Int(1, 99, log=True)),
    (tune.qlograndint(2, 64, 2), Int(2, 64, log=True, q=2)),
    (tune.choice(["a", 1, None]), Categorical(("a", 1, None))),
    (tune.grid_search([1, 2, 3]), Categorical((1, 2, 3))),
    (7, Fixed(7)),
    ("text", Fixed("text")),
]


@pytest.mark.parametrize(("domain", "param"), TUNE_DOMAINS, ids=lambda x: type(x).__name__)
def test_from_tune_maps_every_tune_domain(domain, param):
    space = SearchSpace.from_tune({"x": domain})
    assert space["x"] == param
    # every value Tune itself draws from the domain lies in the converted parameter
    for cfg in _tune_configs({"x": domain}, n=30):
        assert param.contains(cfg["x"]), cfg


def test_from_tune_nested_and_as_space():
    ps = {"opt": {"lr": tune.loguniform(1e-3, 1), "name": "adam"}, "n": tune.randint(1, 3)}
    s = SearchSpace.from_tune(ps)
    assert s["opt"]["name"] == Fixed("adam") and s["n"] == Int(1, 2)
    assert as_space(ps) == s and as_space(s) is s
    with pytest.raises(TypeError, match="space: must be a SearchSpace or a Tune param_space dict"):
        as_space([1])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (tune.sample_from(lambda spec: 1), "param_space.x: sample_from functions cannot be converted"),
        ({"grid_search": []}, "param_space.x: grid_search needs a non-empty list"),
    ],
)
def test_from_tune_refuses_clearly(value, message):
    with pytest.raises(ValueError) as info:
        SearchSpace.from_tune({"x": value})
    assert message in str(info.value)


def test_to_tune_uses_tunes_own_domains_where_the_law_is_identical():
    from ray.tune.search import sample as s

    space = SearchSpace({
        "u": Float(0, 1), "lu": Float(1e-3, 1, log=True), "i": Int(0, 9), "li": Int(1, 64, log=True),
        "qi": Int(0, 20, q=5), "n": Normal(0, 1), "c": Categorical(("a", "b")),
        "nni_q": Float(2, 10, q=5), "w": Categorical(("a", "b"), weights=(0.2, 0.8)), "k": 3,
    })
    ps = space.to_tune()
    assert type(ps["u"]) is s.Float and type(ps["i"]) is s.Integer and type(ps["c"]) is s.Categorical
    assert isinstance(ps["qi"].get_sampler(), s.Quantized)
    assert isinstance(ps["nni_q"], RafikiDomain) and isinstance(ps["w"], RafikiDomain)
    assert ps["k"] == 3
    assert SearchSpace.from_tune(ps) == space
    for cfg in _tune_configs(ps, n=40, seed=1):
        space.validate(cfg)
    assert pickle.loads(pickle.dumps(ps["w"])).param == space["w"]


def test_constant_dicts_round_trip_through_tune():
    space = SearchSpace({"opt": Fixed({"name": "adam", "betas": [0.9, 0.99]}), "sub": {"k": Fixed(1)}})
    ps = space.to_tune()
    assert SearchSpace.from_tune(ps) == space
    assert _tune_configs(ps) == [{"opt": {"name": "adam", "betas": [0.9, 0.99]}, "sub": {"k": 1}}]


def test_to_tune_grid_enumerates_finite_params():
    space = SearchSpace({"a": Categorical((1, 2)), "b": Int(0, 2), "c": Float(0, 1), "d": Policy("EARLY_STOP")})
    ps = space.to_tune(grid=True)
    assert ps["a"] == {"grid_search": [1, 2]} and ps["b"] == {"grid_search": [0, 1, 2]}
    configs = _tune_configs(ps)
    assert len(configs) == 6
    assert {(c["a"], c["b"]) for c in configs} == {(a, b) for a in (1, 2) for b in range(3)}
    for c in configs:
        space.validate(c)
