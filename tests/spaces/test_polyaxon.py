"""Polyaxon v0.x hptuning adapter: every matrix option and syntax, settings, statistics, Tune."""

from __future__ import annotations

import logging
import math
import textwrap

import numpy as np
import pytest
import yaml
from scipy import stats

from rafiki_ray.spaces import (
    Categorical,
    Fixed,
    Float,
    Int,
    Normal,
    PolyaxonMatrix,
    SearchSpace,
    from_polyaxon,
)
from rafiki_ray.spaces.adapters._configlist import INDEX_KEY, canonical
from rafiki_ray.testing.spaces import SpaceAdapterContract

DOCS_RANDOM = """
hptuning:
  concurrency: 2
  random_search:
    n_experiments: 40
  matrix:
    lr:
      logspace: 0.01:0.1:5
    dropout:
      values: [0.2, 0.5]
    activation:
      pvalues: [[elu, 0.1], [relu, 0.2], [sigmoid, 0.7]]
    param1:
      uniform: [0, 1]
  early_stopping:
  - metric: accuracy
    value: 0.9
    optimization: maximize
  - metric: loss
    value: 0.05
    optimization: minimize
"""

DISTRIBUTIONS = {
    "random_search": {"n_experiments": 3},
    "matrix": {
        "a": {"quniform": "0:1:0.25"},
        "b": {"loguniform": [-5, 0]},
        "c": {"qloguniform": {"low": 0, "high": 3, "q": 2}},
        "d": {"normal": "0:1"},
        "e": {"qnormal": [5, 2, 1]},
        "f": {"lognormal": {"loc": 0, "scale": 0.5}},
        "g": {"qlognormal": "1:0.5:0.5"},
        "h": {"range": "0:10:2"},
    },
}


class TestPolyaxonContract(SpaceAdapterContract):
    tune_samples = 2

    @pytest.fixture
    def adapter(self):
        return from_polyaxon

    @pytest.fixture(params=[DOCS_RANDOM, DISTRIBUTIONS], ids=["docs_random", "distributions"])
    def valid_spec(self, request):
        return request.param

    @pytest.fixture(
        params=[
            ({"lr": {"logspace": "0.1:0.01:5"}}, "hptuning.matrix.lr.logspace"),
            ({"lr": {"range": 4202}}, "quote it ('1:10:2')"),
            ({"lr": {"values": [1], "range": "1:3:1"}}, "hptuning.matrix.lr"),
            (
                {"grid_search": {}, "matrix": {"lr": {"uniform": [0, 1]}}},
                "hptuning.matrix.lr.uniform",
            ),
            ({"lr": {"pvalues": [["a", 0.7], ["b", 0.6]]}}, "hptuning.matrix.lr.pvalues"),
        ],
        ids=["logspace_order", "yaml_4202", "two_options", "grid_distribution", "pvalues_sum"],
    )
    def invalid_spec(self, request):
        return request.param


# ---------------------------------------------------------------------------------------
# Options and syntaxes


@pytest.mark.parametrize(
    ("option", "raw", "expected"),
    [
        ("values", [1, "a", 2.5], Categorical((1, "a", 2.5))),
        ("range", "0:10:2", Int(0, 8, q=2)),
        ("range", [1, 10, 2], Categorical((1, 3, 5, 7, 9))),
        ("range", {"start": 1, "stop": 4, "step": 1}, Int(1, 3)),
        ("range", "0:1:0.25", Categorical((0.0, 0.25, 0.5, 0.75))),
        ("linspace", "1:2:3", Categorical((1.0, 1.5, 2.0))),
        ("linspace", {"start": 0, "stop": 1, "num": 2}, Categorical((0.0, 1.0))),
        ("logspace", "-2:0:3", Categorical((0.01, 0.1, 1.0))),
        ("logspace", [1, 3, 3, 2], Categorical((2.0, 4.0, 8.0))),
        ("logspace", {"start": 0, "stop": 2, "num": 3, "base": 3}, Categorical((1.0, 3.0, 9.0))),
        ("geomspace", "1:100:3", Categorical((1.0, 10.0, 100.0))),
        ("uniform", "0:1", Float(0, 1)),
        ("uniform", {"low": -1, "high": 1, "size": 7}, Float(-1, 1)),
        ("quniform", [0, 1, 0.25], Float(0, 1, q=0.25, rounding="floor", clip=False)),
        ("loguniform", "-3:0", Float(math.exp(-3), 1.0, log=True)),
        (
            "qloguniform",
            {"low": 0, "high": 2, "q": 1},
            Float(1.0, math.exp(2), log=True, q=1, rounding="floor", clip=False),
        ),
        ("normal", "5:1", Normal(5, 1)),
        ("qnormal", [0, 1, 0.5], Normal(0, 1, q=0.5, rounding="floor")),
        ("lognormal", {"loc": 0, "scale": 2}, Normal(0, 2, log=True)),
        ("qlognormal", "0:1:2", Normal(0, 1, log=True, q=2, rounding="floor")),
    ],
)
def test_option_and_syntax(option, raw, expected):
    m = from_polyaxon({"random_search": {"n_experiments": 1}, "matrix": {"p": {option: raw}}})
    got = m.space["p"]
    if isinstance(expected, Categorical):
        assert isinstance(got, Categorical) and len(got.choices) == len(expected.choices)
        for g, e in zip(got.choices, expected.choices):
            assert type(g) is type(e) and (g == e or math.isclose(g, e, rel_tol=1e-12))
    else:
        assert got == expected


def test_logspace_follows_the_code_not_the_docs(caplog):
    """Docs: 0.01:0.1:5 spans 0.01..0.1; the code (kept): 10**0.01..10**0.1, with a warning."""
    with caplog.at_level(logging.WARNING, logger="rafiki_ray.spaces.adapters.polyaxon"):
        m = from_polyaxon({"lr": {"logspace": "0.01:0.1:5"}})
    np.testing.assert_allclose(m.space["lr"].choices, 10 ** np.linspace(0.01, 0.1, 5))
    assert "geomspace" in caplog.text


def test_grid_logspace_5_by_values_2_is_10_configs_in_cartesian_order():
    m = from_polyaxon(
        {"matrix": {"lr": {"logspace": "0.01:0.1:5"}, "dropout": {"values": [0.2, 0.5]}}}
    )
    assert m.algorithm == "grid_search" and m.space.grid_size() == 10
    configs = m.configs()
    assert len(configs) == 10
    assert [c["dropout"] for c in configs[:4]] == [0.2, 0.5, 0.2, 0.5]  # last key fastest
    assert configs[0]["lr"] == configs[1]["lr"] < configs[2]["lr"]
    assert all(isinstance(v, dict) and "grid_search" in v for v in m.to_tune().values())
    truncated = from_polyaxon(
        {
            "grid_search": {"n_experiments": 4},
            "matrix": {"lr": {"logspace": "0.01:0.1:5"}, "dropout": {"values": [0.2, 0.5]}},
        }
    )
    assert truncated.configs() == configs[:4]
    space = truncated.to_tune()
    assert space[INDEX_KEY] == {"grid_search": [0, 1, 2, 3]} and set(space) == {
        INDEX_KEY,
        "lr",
        "dropout",
    }


def test_unquoted_yaml_range_gets_a_hint_to_quote_it():
    spec = yaml.safe_load("lr:\n  range: 1:10:2\n")
    assert spec["lr"]["range"] == 4202  # YAML 1.1 sexagesimal
    with pytest.raises(
        ValueError, match=r"hptuning\.matrix\.lr\.range: .*4202.*quote it \('1:10:2'\)"
    ):
        from_polyaxon(spec)
    assert from_polyaxon(yaml.safe_load("lr:\n  range: '1:10:2'\n")).space["lr"].choices == (
        1,
        3,
        5,
        7,
        9,
    )


@pytest.mark.parametrize(
    ("matrix", "path"),
    [
        ({"lr": {"range": "5:1:1"}}, "hptuning.matrix.lr.range: needs start < stop"),
        ({"lr": {"range": "1:5:0"}}, "hptuning.matrix.lr.range.step"),
        ({"lr": {"linspace": "1:5:0"}}, "hptuning.matrix.lr.linspace.num"),
        ({"lr": {"linspace": "1:5:2.5"}}, "hptuning.matrix.lr.linspace.num"),
        ({"lr": {"range": "1:x:1"}}, "hptuning.matrix.lr.range.stop: must be a number"),
        ({"lr": {"range": "1:5"}}, "hptuning.matrix.lr.range: needs 3 numbers"),
        ({"lr": {"range": {"start": 1, "stop": 5}}}, "hptuning.matrix.lr.range: dict needs keys"),
        ({"lr": {"geomspace": "-1:5:3"}}, "hptuning.matrix.lr.geomspace: needs non-zero"),
        ({"lr": {"logspace": "1:2:3:1"}}, "hptuning.matrix.lr.logspace.base"),
        ({"lr": {"uniform": "1:1"}}, "hptuning.matrix.lr.uniform: needs low < high"),
        ({"lr": {"quniform": "0:1:0"}}, "hptuning.matrix.lr.quniform.q"),
        (
            {"lr": {"loguniform": "0:800"}},
            "hptuning.matrix.lr.loguniform: low/high are natural-log",
        ),
        ({"lr": {"normal": "0:0"}}, "hptuning.matrix.lr.normal.scale"),
        ({"lr": {"values": []}}, "hptuning.matrix.lr.values: must be a non-empty list"),
        ({"lr": {"pvalues": [["a", 1.0]]}}, "hptuning.matrix.lr.pvalues[0]: probability"),
        (
            {"lr": {"pvalues": [["a"]]}},
            "hptuning.matrix.lr.pvalues[0]: must be a [value, probability]",
        ),
        ({"lr": {"choice": [1, 2]}}, "hptuning.matrix.lr: has unknown options"),
        ({"lr": {}}, "hptuning.matrix.lr: needs exactly one option"),
        ({"lr": [1, 2]}, "hptuning.matrix.lr: must be a dict"),
        ({"lr": {"uniform": 0.5}}, "hptuning.matrix.lr.uniform: must be a 'low:high' string"),
    ],
)
def test_invalid_matrix_names_the_field(matrix, path):
    with pytest.raises((ValueError, TypeError)) as info:
        from_polyaxon({"random_search": {"n_experiments": 2}, "matrix": matrix})
    assert path in str(info.value)


# ---------------------------------------------------------------------------------------
# Sampling laws


def test_pvalues_frequencies_chi_square():
    m = from_polyaxon(
        {
            "random_search": {"n_experiments": 1},
            "matrix": {"act": {"pvalues": [["elu", 0.1], ["relu", 0.2], ["sigmoid", 0.7]]}},
        }
    )
    assert m.space["act"].weights == pytest.approx((0.1, 0.2, 0.7))
    draws = [c["act"] for c in m.space.samples(5000, seed=0)]
    observed = [draws.count(v) for v in ("elu", "relu", "sigmoid")]
    assert stats.chisquare(observed, [500, 1000, 3500]).pvalue > 1e-3


def test_pvalues_last_value_gets_the_remainder():
    """numpy.multinomial (what Polyaxon calls) ignores the last probability."""
    m = from_polyaxon(
        {
            "random_search": {"n_experiments": 1},
            "matrix": {"a": {"pvalues": [["x", 0.1], ["y", 0.2], ["z", 0.3]]}},
        }
    )
    assert m.space["a"].weights == pytest.approx((0.1, 0.2, 0.7))
    draws = [c["a"] for c in m.space.samples(4000, seed=1)]
    assert stats.chisquare([draws.count(v) for v in "xyz"], [400, 800, 2800]).pvalue > 1e-3


def test_quniform_floors_and_does_not_clip():
    m = from_polyaxon(
        {
            "random_search": {"n_experiments": 1},
            "matrix": {"a": {"quniform": [0, 1, 0.5]}, "b": {"quniform": [0.1, 1, 0.3]}},
        }
    )
    samples = m.space.samples(2000, seed=0)
    a = [c["a"] for c in samples]
    assert set(a) == {0.0, 0.5}  # floor: 1.0 is never drawn (round would give it 1/4)
    assert stats.binomtest(a.count(0.5), len(a)).pvalue > 1e-3
    b = {c["b"] for c in samples}
    assert b == {0.0, 0.3, 0.6, 0.9}  # floor(0.1/0.3)*0.3 = 0 < low: no clip, as Polyaxon


def test_loguniform_bounds_are_log_space_and_uniform_in_log():
    m = from_polyaxon(
        {"random_search": {"n_experiments": 1}, "matrix": {"a": {"loguniform": "-4:1"}}}
    )
    logs = np.log([c["a"] for c in m.space.samples(2000, seed=3)])
    assert logs.min() >= -4 and logs.max() <= 1
    assert stats.kstest(logs, stats.uniform(loc=-4, scale=5).cdf).pvalue > 1e-3


def test_qlognormal_is_floor_of_lognormal_over_q():
    """Decision: floor(exp(N)/q)*q (Polyaxon's code ignores q and exponentiates twice)."""
    m = from_polyaxon(
        {"random_search": {"n_experiments": 1}, "matrix": {"a": {"qlognormal": "1:0.5:0.5"}}}
    )
    values = np.array([c["a"] for c in m.space.samples(3000, seed=4)])
    np.testing.assert_allclose(values / 0.5, np.round(values / 0.5), atol=1e-9)
    reference = np.floor(np.exp(np.random.default_rng(5).normal(1, 0.5, 3000)) / 0.5) * 0.5
    assert stats.ks_2samp(values, reference).pvalue > 1e-3
    assert values.max() < 50  # exp(exp(N)) would exceed this easily


# ---------------------------------------------------------------------------------------
# Algorithms, settings, declarations


def test_random_search_is_seeded_distinct_and_capped():
    spec = {
        "seed": 0,
        "random_search": {"n_experiments": 50},
        "matrix": {"a": {"values": [1, 1, 2]}, "b": {"pvalues": [["x", 0.0], ["y", 0.5]]}},
    }
    m = from_polyaxon(spec)
    assert m.seed == 0  # Polyaxon would ignore a 0 seed
    configs = m.configs()
    assert sorted(canonical(c) for c in configs) == sorted(
        canonical(c) for c in [{"a": 1, "b": "y"}, {"a": 2, "b": "y"}]
    )
    docs = from_polyaxon(
        yaml.safe_load(DOCS_RANDOM.replace("concurrency: 2", "concurrency: 2\n  seed: 7"))
    )
    first = docs.configs()
    assert (
        len(first) == 40 and len({canonical(c) for c in first}) == 40 and first == docs.configs()
    )
    for c in first:
        docs.space.validate(c)


def test_random_search_raises_instead_of_looping_forever():
    m = from_polyaxon(
        {
            "seed": 1,
            "random_search": {"n_experiments": 5},
            "matrix": {"a": {"quniform": [0, 1, 0.5]}},
        }
    )
    with pytest.raises(
        ValueError, match="hptuning.random_search.n_experiments: .*only 2 distinct"
    ):
        m.configs()


def test_docs_file_with_declarations_and_early_stopping(caplog):
    doc = yaml.safe_load(DOCS_RANDOM + "declarations:\n  batch_size: 128\n  dropout: 0.0\n")
    with caplog.at_level("WARNING"):
        m = from_polyaxon(doc)
    assert isinstance(m, PolyaxonMatrix)
    assert (m.algorithm, m.n_experiments, m.concurrency) == ("random_search", 40, 2)
    assert m.declarations == {"batch_size": 128, "dropout": 0.0}
    # as in Polyaxon's parser (matrix values deep-updated with the declarations), the
    # declared dropout wins over the matrix's, with a warning naming it
    assert m.space["batch_size"] == Fixed(128) and m.space["dropout"] == Fixed(0.0)
    assert "['dropout'] are also declarations" in caplog.text
    assert m.early_stopping == [
        {"metric": "accuracy", "value": 0.9, "optimization": "maximize", "policy": None},
        {"metric": "loss", "value": 0.05, "optimization": "minimize", "policy": None},
    ]
    params = from_polyaxon({"params": {"x": 1}, "hptuning": {"matrix": {"a": {"values": [1]}}}})
    assert params.declarations == {"x": 1} and params.configs() == [{"x": 1, "a": 1}]
    section_yaml = textwrap.dedent(DOCS_RANDOM.split("hptuning:\n", 1)[1])  # the section alone
    assert from_polyaxon(section_yaml).n_experiments == 40


HYPERBAND = {
    "concurrency": 2,
    "hyperband": {
        "max_iter": 81,
        "eta": 3,
        "resource": {"name": "num_steps", "type": "int"},
        "metric": {"name": "loss", "optimization": "minimize"},
        "resume": False,
    },
    "matrix": {
        "learning_rate": {"uniform": [0, 0.9]},
        "dropout": {"values": [0.25, 0.3]},
        "activation": {"pvalues": [["relu", 0.1], ["sigmoid", 0.8]]},
    },
    "early_stopping": [
        {
            "metric": "accuracy",
            "value": 0.9,
            "policy": {"kind": "truncation", "percent": 10, "evaluation_interval": 2},
        }
    ],
}

BO = {
    "bo": {
        "n_iterations": 15,
        "n_initial_trials": 30,
        "metric": {"name": "loss", "optimization": "Minimize"},
        "utility_function": {
            "acquisition_function": "ei",
            "eps": 1.2,
            "gaussian_process": {"kernel": "rbf", "nu": 1.9},
        },
    },
    "matrix": {
        "learning_rate": {"uniform": [0.001, 0.09]},
        "dropout": {"values": [0.25, 0.3]},
        "activation": {"values": ["relu", "sigmoid"]},
    },
}


def test_hyperband_and_bo_settings():
    hb = from_polyaxon(HYPERBAND)
    assert hb.algorithm == "hyperband" and (hb.metric, hb.mode) == ("loss", "min")
    assert hb.settings == {
        "max_iter": 81,
        "eta": 3.0,
        "resource": {"name": "num_steps", "type": "int"},
        "metric": {"name": "loss", "optimization": "minimize"},
        "resume": False,
    }
    assert hb.space["activation"].weights == pytest.approx((0.1, 0.9))
    assert hb.early_stopping[0]["policy"] == {
        "kind": "truncation",
        "evaluation_interval": 2,
        "percent": 10,
    }
    assert hb.early_stopping[0]["optimization"] == "maximize"
    bo = from_polyaxon(BO)
    assert bo.num_samples == 45 and bo.mode == "min"
    uf = bo.settings["utility_function"]
    assert (uf["acquisition_function"], uf["eps"], uf["n_warmup"], uf["n_iter"]) == (
        "ei",
        1.2,
        5000,
        150,
    )
    assert uf["gaussian_process"] == {
        "kernel": "rbf",
        "length_scale": 1.0,
        "nu": 1.9,
        "n_restarts_optimizer": 0,
    }
    with pytest.raises(ValueError, match="configs\\(\\) exists for grid_search"):
        bo.configs()


@pytest.mark.parametrize(
    ("patch", "path"),
    [
        ({"hyperband": {**HYPERBAND["hyperband"], "eta": 1}}, "hptuning.hyperband.eta"),
        (
            {"hyperband": {**HYPERBAND["hyperband"], "resource": {"name": "n", "type": "long"}}},
            "hptuning.hyperband.resource.type",
        ),
        (
            {"hyperband": {k: v for k, v in HYPERBAND["hyperband"].items() if k != "metric"}},
            "hptuning.hyperband: is missing ['metric']",
        ),
        ({"hyperband": {**HYPERBAND["hyperband"], "max_iter": 0}}, "hptuning.hyperband.max_iter"),
        ({"random_search": {"n_experiments": 2}}, "hptuning: takes only one search algorithm"),
        (
            {"early_stopping": [{"metric": "acc"}]},
            "hptuning.early_stopping[0]: is missing ['value']",
        ),
        (
            {"early_stopping": [{"metric": "acc", "value": 1, "policy": {"kind": "median"}}]},
            "hptuning.early_stopping[0].policy: is missing",
        ),
        ({"concurrency": 0}, "hptuning.concurrency"),
        ({"seed": -1}, "hptuning.seed"),
        ({"bayes": {}}, "hptuning: has unknown keys ['bayes']"),
        ({"matrix": None}, "hptuning.matrix: must be a non-empty dict"),
    ],
)
def test_invalid_hyperband_settings_name_the_field(patch, path):
    with pytest.raises((ValueError, TypeError)) as info:
        from_polyaxon({**HYPERBAND, **patch})
    assert path in str(info.value)


@pytest.mark.parametrize(
    ("patch", "path"),
    [
        (
            {"utility_function": {"acquisition_function": "ucb"}},
            "hptuning.bo.utility_function: acquisition_function 'ucb' needs 'kappa'",
        ),
        (
            {"utility_function": {"acquisition_function": "pi", "eps": 1}},
            "hptuning.bo.utility_function.acquisition_function",
        ),
        ({"utility_function": None}, "hptuning.bo: is missing ['utility_function']"),
        ({"metric": {"optimization": "minimize"}}, "hptuning.bo.metric: is missing ['name']"),
    ],
)
def test_invalid_bo_settings_name_the_field(patch, path):
    with pytest.raises((ValueError, TypeError)) as info:
        from_polyaxon({**BO, "bo": {**BO["bo"], **patch}})
    assert path in str(info.value)


def test_bo_refuses_non_uniform_distributions_like_polyaxon():
    """The docs' BO example uses pvalues, which Polyaxon's own validation rejects."""
    matrix = {**BO["matrix"], "activation": {"pvalues": [["relu", 0.1], ["sigmoid", 0.8]]}}
    with pytest.raises(ValueError, match=r"hptuning\.matrix\.activation\.pvalues: bo accepts"):
        from_polyaxon({**BO, "matrix": matrix})


# ---------------------------------------------------------------------------------------
# End to end: Tune's BasicVariantGenerator over the adapter's output


def _report(config):
    from ray import tune

    tune.report({"score": float(config["dropout"])})


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(
            {"matrix": {"lr": {"logspace": "-3:-1:5"}, "dropout": {"values": [0.2, 0.5]}}},
            marks=pytest.mark.slow,
        ),
        {
            "seed": 3,
            "random_search": {"n_experiments": 4},
            "matrix": {
                "lr": {"loguniform": "-7:-2"},
                "dropout": {"pvalues": [[0.2, 0.5], [0.5, 0.5]]},
            },
        },
    ],
    ids=["full_grid", "random_search"],
)
def test_tune_runs_exactly_the_polyaxon_experiments(spec, ray_session, storage):
    from ray import tune
    from ray.tune.search import BasicVariantGenerator

    m = from_polyaxon(spec)
    tuner = tune.Tuner(
        _report,
        param_space=m.to_tune(),
        tune_config=tune.TuneConfig(
            search_alg=BasicVariantGenerator(random_state=0),
            num_samples=m.num_samples,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    )
    results = tuner.fit()
    assert not results.errors
    got = sorted(canonical({k: v for k, v in r.config.items() if k != INDEX_KEY}) for r in results)
    assert got == sorted(canonical(c) for c in m.configs())
    assert isinstance(SearchSpace.from_tune(m.space.to_tune()), SearchSpace)


def test_section_or_bare_matrix_is_told_apart_by_content():
    bare = from_polyaxon({"matrix": {"values": [1, 2]}, "seed": {"range": "0:3:1"}})
    assert set(bare.space) == {"matrix", "seed"} and bare.seed is None
    section = from_polyaxon({"matrix": {"a": {"values": [1, 2]}}, "seed": 1})
    assert set(section.space) == {"a"} and section.seed == 1


def test_grid_too_large_to_list_is_an_error_naming_n_experiments():
    """A grid of more than MAX_COUNT experiments: ``configs()`` raises, naming the setting
    that bounds it, instead of listing the whole product; with n_experiments it is listed."""
    from rafiki_ray.spaces.adapters._polyaxon_settings import MAX_COUNT

    matrix = {k: {"range": [0, 1000, 1]} for k in "abc"}  # 10**9 experiments
    m = from_polyaxon({"matrix": matrix})
    assert m.space.grid_size() == 10**9
    with pytest.raises(ValueError, match=rf"hptuning\.matrix: its grid has more than {MAX_COUNT} "
                                         r"experiments to list; set hptuning\.grid_search\."
                                         r"n_experiments, got 1000000000"):
        m.configs()
    cut = from_polyaxon({"matrix": matrix, "grid_search": {"n_experiments": 5}})
    assert [c["c"] for c in cut.configs()] == [0, 1, 2, 3, 4]
    assert len(cut.to_tune()[INDEX_KEY]["grid_search"]) == 5


def test_logspace_that_overflows_is_one_clear_error_without_a_numpy_warning():
    """Exponents beyond float range: a ValueError naming the option, and no RuntimeWarning
    from numpy on the way (the slow property test saw 'overflow encountered in power')."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"hptuning\.matrix\.lr\.logspace: overflows "
                                             r"\(start and stop are exponents of base\)"):
            from_polyaxon({"matrix": {"lr": {"logspace": "1:400:3"}}})
