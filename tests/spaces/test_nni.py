"""NNI / T9k adapter: the contract, NNI's exact sampling semantics, and a real Tune run."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from rafiki_ray.spaces import (
    Categorical,
    Conditional,
    Float,
    Int,
    Normal,
    SearchSpace,
    Subset,
    from_nni,
)
from rafiki_ray.testing import SpaceAdapterContract

ALL_TEN = {
    "batch": {"_type": "choice", "_value": [16, 32, 64]},
    "layers": {"_type": "randint", "_value": [1, 5]},
    "dropout": {"_type": "uniform", "_value": [0.0, 0.5]},
    "units": {"_type": "quniform", "_value": [2, 10, 5]},
    "lr": {"_type": "loguniform", "_value": [1e-4, 0.1]},
    "hidden": {"_type": "qloguniform", "_value": [8, 512, 8]},
    "shift": {"_type": "normal", "_value": [0, 1]},
    "qshift": {"_type": "qnormal", "_value": [1, 2, 0.5]},
    "decay": {"_type": "lognormal", "_value": [-3, 0.5]},
    "qdecay": {"_type": "qlognormal", "_value": [0, 1, 0.25]},
}
NESTED = {
    "model": {
        "_type": "choice",
        "_value": [
            {"_name": "svm", "C": {"_type": "loguniform", "_value": [0.01, 100]},
             "kernel": {"_type": "choice", "_value": ["rbf", "linear"]}},
            {"_name": "tree", "depth": {"_type": "randint", "_value": [1, 8]},
             "inner": {"_type": "choice", "_value": [{"_name": "a"}, {"_name": "b",
                       "w": {"_type": "uniform", "_value": [0, 1]}}]}},
            {"_name": "empty"},
        ],
    },
    "seed": {"_type": "choice", "_value": [0]},
}
PLAIN_DICTS = {
    "opt": {"_type": "choice", "_value": [{"name": "sgd", "momentum": 0.9}, {"name": "adam"}, [1, 2], True, None]},
}
NAS = {
    "conv": {"_type": "layer_choice", "_value": ["conv3x3", "conv5x5", "maxpool"]},
    "skip": {"_type": "input_choice", "_value": {"candidates": ["in0", "in1", "in2"], "n_chosen": 2}},
}
T9K_STRING = """{
  "batch_size": {"_type": "choice", "_value": [512, 1024, 2048, 4096, 8092]},
  "learning_rate": {"_type": "choice", "_value": [0.0001, 0.001, 0.01, 0.1]}
}"""
EVERYTHING = {**ALL_TEN, **NESTED, **PLAIN_DICTS, **NAS}


def _with(name: str, type_: str, value: object) -> dict:
    return {name: {"_type": type_, "_value": value}}


class TestNNIContract(SpaceAdapterContract):
    @pytest.fixture
    def adapter(self):
        return from_nni

    @pytest.fixture(
        params=[ALL_TEN, NESTED, PLAIN_DICTS, NAS, T9K_STRING, json.dumps(EVERYTHING), {}],
        ids=["all-ten", "nested", "plain-dicts", "nas", "t9k-string", "everything-json", "empty"],
    )
    def valid_spec(self, request):
        return request.param

    # The default run covers Tune through test_end_to_end_tune_run_with_basic_variant_generator.
    @pytest.fixture(
        params=[pytest.param(s, marks=pytest.mark.slow) for s in (EVERYTHING, T9K_STRING)],
        ids=["everything", "t9k"],
    )
    def tune_spec(self, request):
        return request.param

    @pytest.fixture(
        params=[
            (_with("lr", "loguniform", [0, 0.1]), "searchSpace.lr._value: loguniform needs 0 < low < high"),
            (_with("lr", "qloguniform", [-1, 1, 0.1]), "searchSpace.lr._value: qloguniform needs 0 < low"),
            (_with("x", "quniform", [0, 1]), "searchSpace.x._value: quniform needs 3 values"),
            (_with("x", "uniform", [0, 1, 0.1]), "searchSpace.x._value: uniform needs 2 values"),
            (_with("x", "qnormal", [0, 1]), "searchSpace.x._value: qnormal needs 3 values"),
            (_with("x", "uniform", [1, 1]), "searchSpace.x._value: uniform needs low < high"),
            (_with("x", "quniform", [0, 1, 0]), "searchSpace.x._value: quniform needs q > 0"),
            (_with("x", "uniform", [0, True]), "searchSpace.x._value"),
            (_with("x", "uniform", [0, "1"]), "searchSpace.x._value"),
            (_with("x", "uniform", [0, float("inf")]), "searchSpace.x._value"),
            (_with("n", "randint", [0.0, 3]), "searchSpace.n._value: randint needs integers"),
            (_with("n", "randint", [3, 3]), "searchSpace.n._value: randint needs low < high"),
            (_with("s", "normal", [0, 0]), "searchSpace.s._value: normal needs sigma > 0"),
            (_with("s", "lognormal", [0, -1]), "searchSpace.s._value: lognormal needs sigma > 0"),
            (_with("x", "qlognoraml", [0, 1, 1]), "did you mean 'qlognormal'"),
            (_with("x", "Uniform", [0, 1]), "searchSpace.x._type"),
            (_with("x", "uniform", {"low": 0}), "searchSpace.x._value"),
            (_with("c", "choice", []), "searchSpace.c._value: choice needs at least one value"),
            ({"x": {"_type": "uniform"}}, "searchSpace.x: is missing ['_value']"),
            ({"x": {"_type": "uniform", "_value": [0, 1], "extra": 1}}, "searchSpace.x: has keys"),
            ({"x": [0, 1]}, "searchSpace.x: must be a dict"),
            ({"_name": "top"}, "searchSpace._name"),
            ([{"_type": "uniform", "_value": [0, 1]}], "searchSpace: must be a dict"),
            ('{"x": {"_type": "uniform", "_value": [0, 1]},}', "searchSpace: is not valid JSON"),
            ('{"x": 1, "x": 2}', "duplicate key 'x'"),
            (
                _with("m", "choice", [{"_name": "a"}, {"_name": "b", "lr": {"_type": "loguniform", "_value": [0, 1]}}]),
                "searchSpace.m._value[1].lr._value: loguniform needs 0 < low < high",
            ),
            (_with("m", "choice", [{"_name": "a"}, {"k": 1}]), "searchSpace.m._value[1]: a nested choice"),
            (_with("m", "choice", [{"_name": "a"}, {"_name": "a"}]), "searchSpace.m._value[1]._name"),
            (_with("m", "choice", [{"_name": "a", "k": 3}]), "searchSpace.m._value[0].k: must be a dict"),
            (_with("l", "layer_choice", []), "searchSpace.l._value"),
            (_with("i", "input_choice", ["a", "b"]), "searchSpace.i._value"),
            (_with("i", "input_choice", {"candidates": ["a"], "n_chosen": None}), "searchSpace.i._value.n_chosen"),
            (_with("i", "input_choice", {"candidates": ["a"], "n_chosen": 2}), "searchSpace.i._value.n_chosen"),
            (_with("i", "input_choice", {"candidates": ["a", "a"], "n_chosen": 1}), "searchSpace.i._value.candidates"),
        ],
        ids=lambda p: p[1][:40] if isinstance(p, tuple) else None,
    )
    def invalid_spec(self, request):
        return request.param


def test_exact_error_message_shape():
    with pytest.raises(ValueError) as info:
        from_nni(_with("lr", "loguniform", [0, 0.1]))
    assert str(info.value) == "searchSpace.lr._value: loguniform needs 0 < low < high, got [0, 0.1]"
    with pytest.raises(ValueError, match=r"^spec\.searchSpace\.lr\._value: "):
        from_nni(_with("lr", "loguniform", [0, 0.1]), path="spec.searchSpace")


def test_mapping_to_params():
    s = from_nni(EVERYTHING)
    assert s["layers"] == Int(1, 4)
    assert s["units"] == Float(2, 10, q=5)
    assert s["hidden"] == Float(8, 512, log=True, q=8)
    assert s["qshift"] == Normal(1, 2, q=0.5)
    assert s["qdecay"] == Normal(0, 1, log=True, q=0.25)
    assert s["conv"] == Categorical(("conv3x3", "conv5x5", "maxpool"), emit="nni")
    assert s["skip"] == Subset(("in0", "in1", "in2"), 2, emit="nni")
    assert isinstance(s["model"], Conditional) and s["model"].label_key == "_name"
    assert isinstance(s["opt"], Categorical) and len(s["opt"].choices) == 5
    assert from_nni(T9K_STRING) == from_nni(json.loads(T9K_STRING)) == from_nni(T9K_STRING.encode())


def _draws(spec: dict, n: int, seed: int = 0) -> np.ndarray:
    name = next(iter(spec))
    return np.array([c[name] for c in from_nni(spec).samples(n, seed=seed)])


def test_randint_never_draws_its_upper_bound():
    xs = _draws(_with("n", "randint", [0, 5]), 5000)
    counts = Counter(xs.tolist())
    assert set(counts) == {0, 1, 2, 3, 4}
    assert stats.chisquare([counts[k] for k in range(5)]).pvalue > 1e-3


def test_quniform_exact_value_set_and_frequencies():
    xs = _draws(_with("u", "quniform", [2, 10, 5]), 8000)
    counts = Counter(xs.tolist())
    assert set(counts) == {2.0, 5.0, 10.0}
    # round(U(2, 10)/5): 0 below 2.5 (1/16), 1 in [2.5, 7.5) (10/16), 2 above (5/16).
    expected = np.array([1, 10, 5]) / 16 * xs.size
    assert stats.chisquare([counts[2.0], counts[5.0], counts[10.0]], expected).pvalue > 1e-3
    # T9k's documented example: [0, 10, 2.5] gives [0, 2.5, 5, 7.5, 10].
    assert set(_draws(_with("u", "quniform", [0, 10, 2.5]), 2000).tolist()) == {0, 2.5, 5, 7.5, 10}
    assert from_nni(_with("u", "quniform", [2, 10, 5]))["u"].grid_values() == [2.0, 5.0, 10.0]


def test_loguniform_is_uniform_in_log_space():
    xs = _draws(_with("lr", "loguniform", [1e-4, 1e-1]), 3000)
    assert xs.min() >= 1e-4 and xs.max() <= 1e-1
    u = (np.log(xs) - math.log(1e-4)) / (math.log(1e-1) - math.log(1e-4))
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    # ... and not uniform in linear space
    assert stats.kstest((xs - 1e-4) / (1e-1 - 1e-4), "uniform").pvalue < 1e-6


def test_qloguniform_is_clipped_onto_the_grid():
    xs = _draws(_with("h", "qloguniform", [1, 100, 10]), 3000)
    values = set(xs.tolist())
    assert 1.0 in values and 100.0 in values  # round(...)=0 clips up to low
    assert values <= {1.0} | {10.0 * k for k in range(1, 11)}


@pytest.mark.parametrize(("type_", "args"), [("qnormal", [1, 2, 0.5]), ("qlognormal", [0, 1, 0.25])])
def test_q_normals_lie_on_the_grid_without_clipping(type_, args):
    xs = _draws(_with("x", type_, args), 4000)
    k = xs / args[2]
    assert np.allclose(k, np.round(k))
    if type_ == "qnormal":
        # no clip: the tails reach beyond mu +- 3 sigma; round(N(1, 2)/0.5) = 2 iff N in [0.75, 1.25)
        assert xs.min() < 1 - 6 and xs.max() > 1 + 6
        p = stats.norm.cdf(1.25, 1, 2) - stats.norm.cdf(0.75, 1, 2)
        assert abs(np.mean(xs == 1.0) - p) < 0.03
    else:
        assert xs.min() == 0.0  # round(exp(N)/q) reaches 0 for small draws
        p = stats.norm.cdf(math.log(0.125))  # exp(N) < q/2
        assert abs(np.mean(xs == 0.0) - p) < 0.03


@pytest.mark.parametrize(
    ("type_", "args", "transform"),
    [("normal", [2, 3], lambda x: x), ("lognormal", [-3, 0.5], np.log)],
)
def test_normal_and_lognormal_laws(type_, args, transform):
    xs = _draws(_with("x", type_, args), 3000)
    assert stats.kstest(transform(xs), "norm", args=(args[0], args[1])).pvalue > 1e-3


def test_nested_choice_output_format():
    space = from_nni(NESTED)
    seen = Counter()
    for cfg in space.samples(300, seed=5):
        m = cfg["model"]
        seen[m["_name"]] += 1
        if m["_name"] == "svm":
            assert set(m) == {"_name", "C", "kernel"} and 0.01 <= m["C"] <= 100
        elif m["_name"] == "tree":
            assert set(m) == {"_name", "depth", "inner"} and 1 <= m["depth"] <= 7
            assert m["inner"] in ({"_name": "a"},) or set(m["inner"]) == {"_name", "w"}
        else:
            assert m == {"_name": "empty"}
        assert cfg["seed"] == 0
    assert set(seen) == {"svm", "tree", "empty"}


def test_choice_of_plain_dicts_is_categorical():
    values = [c["opt"] for c in from_nni(PLAIN_DICTS).samples(200, seed=2)]
    assert {json.dumps(v) for v in values} == {json.dumps(v) for v in PLAIN_DICTS["opt"]["_value"]}


def test_layer_and_input_choice_formats():
    cands = NAS["skip"]["_value"]["candidates"]
    combos = Counter()
    for cfg in from_nni(NAS).samples(300, seed=3):
        conv = cfg["conv"]
        assert set(conv) == {"_value", "_idx"}
        assert conv["_value"] == NAS["conv"]["_value"][conv["_idx"]]
        skip = cfg["skip"]
        assert len(skip["_idx"]) == 2 and skip["_idx"] == sorted(set(skip["_idx"]))
        assert skip["_value"] == [cands[i] for i in skip["_idx"]]
        combos[tuple(skip["_idx"])] += 1
    assert set(combos) == {(0, 1), (0, 2), (1, 2)}


def test_grid_of_finite_nni_space():
    space = from_nni({
        **_with("n", "randint", [0, 3]),
        **_with("c", "choice", ["a", "b"]),
        **_with("u", "quniform", [2, 10, 5]),
    })
    grid = list(space.grid())
    assert space.grid_size() == len(grid) == 18
    assert {g["u"] for g in grid} == {2.0, 5.0, 10.0}
    assert {g["n"] for g in grid} == {0, 1, 2}


def _check_nni_config(config):
    """Trainable: asserts NNI's formats inside the Tune worker and scores the config."""
    from ray import tune

    assert config["model"]["_name"] in ("svm", "tree", "empty")
    assert 1 <= config["layers"] <= 4
    assert config["units"] in (2.0, 5.0, 10.0)
    assert config["conv"]["_value"] in ("conv3x3", "conv5x5", "maxpool")
    assert len(config["skip"]["_value"]) == 2
    tune.report({"score": config["dropout"] + config["layers"]})


def test_end_to_end_tune_run_with_basic_variant_generator(ray_session, storage):
    from ray import tune
    from ray.tune.search import BasicVariantGenerator

    space = from_nni(json.dumps(EVERYTHING))
    tuner = tune.Tuner(
        _check_nni_config,
        param_space=space.to_tune(),
        tune_config=tune.TuneConfig(
            metric="score", mode="max", num_samples=6, reuse_actors=True,
            search_alg=BasicVariantGenerator(random_state=1, max_concurrent=1),
        ),
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    )
    results = tuner.fit()
    assert len(results) == 6 and not results.errors
    configs = [r.config for r in results]
    for cfg in configs:
        space.validate(cfg)
    best = results.get_best_result()
    assert best.metrics["score"] == max(c["dropout"] + c["layers"] for c in configs)
    assert len({json.dumps(c, sort_keys=True) for c in configs}) == 6
    assert isinstance(SearchSpace.from_tune(space.to_tune()), SearchSpace)
