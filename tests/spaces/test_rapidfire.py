"""RapidFire AI adapter: List / Range laws, GridSearch, RandomSearch, lists of groups, Tune."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from rafiki_ray.spaces import (
    Categorical,
    Conditional,
    Float,
    GridSearch,
    Int,
    List,
    RandomSearch,
    Range,
    SearchSpace,
    from_rapidfire,
)
from rafiki_ray.spaces.adapters._configlist import INDEX_KEY, canonical
from rafiki_ray.spaces.adapters.rapidfire import GROUP_KEY, expand_runs, runs_to_tune
from rafiki_ray.testing.spaces import SpaceAdapterContract


def docs_grid() -> GridSearch:
    """The docs' ImageNet example: 2 model types x 2 batch sizes x 2 learning rates = 8."""
    return GridSearch(
        {
            "user_knobs": {"model_type": List(["resnet", "vgg"])},
            "train": {
                "epochs": 3,
                "batch_size": List([128, 256]),
                "optimizer": {
                    "name": "Adam",
                    "args": {"lr": List([1e-4, 1e-6]), "weight_decay": 1e-6},
                },
            },
            "named_metrics": ["top1_accuracy", "top5_accuracy"],
        }
    )


def docs_random(num_runs: int = 7, seed: int | None = 42) -> RandomSearch:
    """The docs' IMDB example (7 runs), with the docs' reversed weight_decay Range."""
    return RandomSearch(
        {
            "train": {
                "epochs": 5,
                "batch_size": List([16, 32]),
                "optimizer": {
                    "name": "Adam",
                    "args": {
                        "lr": Range(1e-4, 9e-4, dtype="float"),
                        "weight_decay": Range(1e-4, 1e-5, dtype="float"),
                    },
                },
            },
            "named_metrics": ["top1_accuracy"],
        },
        num_runs=num_runs,
        seed=seed,
    )


NESTED = {
    "model": {
        "layers": Range(1, 4),
        "width": Range(16, 256, log=True),
        "act": List(["relu", "tanh"]),
    },
    "optimizer": List(
        [{"name": "sgd", "momentum": Range(0.0, 0.9, step=0.3)}, {"name": "adam", "args": {}}]
    ),
    "lr": Range(1e-4, 1e-1, log=True),
    "seed": 0,
}


class TestRapidFireContract(SpaceAdapterContract):
    tune_samples = 2

    @pytest.fixture
    def adapter(self):
        return from_rapidfire

    @pytest.fixture(params=["nested", "mixed_list"])
    def valid_spec(self, request):
        if request.param == "nested":
            return NESTED
        return [
            {"model_type": "vit", "train": {"epochs": 1}},
            docs_grid(),
            docs_random(num_runs=3),
        ]

    @pytest.fixture(
        params=[
            ({"a": {"b": [List([1, 2]), 3]}}, "config.a.b"),
            ([{"a": 1}, 5], "config[1]"),
            ({"opt": List([{"lr": Range(0.1, 1.0)}, "plain"])}, "config.opt[1]"),
            ({"a": {"b": GridSearch({"c": List([1])})}}, "config.a.b"),
            ({1: List([1, 2])}, "config"),
        ],
        ids=[
            "generator_in_plain_list",
            "list_element",
            "list_mixing_dicts",
            "nested_group",
            "int_key",
        ],
    )
    def invalid_spec(self, request):
        return request.param


# ---------------------------------------------------------------------------------------
# Range and List


@pytest.mark.parametrize(
    ("rng_args", "expected"),
    [
        ((1, 5), Int(1, 5)),
        ((1.0, 5), Float(1.0, 5.0)),
        ((1, 5, "float"), Float(1.0, 5.0)),
        ((1.0, 5.0, "int"), Int(1, 5)),
        ((1, 100, None, True), Int(1, 100, log=True)),
        ((1e-4, 1e-1, None, True), Float(1e-4, 1e-1, log=True)),
        ((0, 10, None, False, 5), Int(0, 10, q=5)),
        ((2, 11, None, False, 3), Categorical((2, 5, 8, 11))),
        ((0.0, 1.0, None, False, 0.25), Categorical((0.0, 0.25, 0.5, 0.75, 1.0))),
        ((1e-4, 1e-5, "float"), Float(1e-5, 1e-4)),
    ],
)
def test_range_to_param(rng_args, expected):
    assert Range(*rng_args).to_param() == expected


def test_float_step_keeps_the_inclusive_end_despite_rounding():
    """RapidFire's int((0.3 - 0.0) / 0.1) = 2 drops 0.3; the documented bounds are inclusive."""
    p = Range(0.0, 0.3, step=0.1).to_param()
    assert len(p.choices) == 4 and math.isclose(p.choices[-1], 0.3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"start": 1, "end": 10, "log": True, "step": 1},
            "Range: log=True and step are mutually exclusive",
        ),
        ({"start": 0, "end": 10, "log": True}, "Range: log=True needs start > 0"),
        ({"start": 5, "end": 1}, "Range: needs start <= end"),
        ({"start": 1.0, "end": 0.5, "step": 0.1}, "Range: needs start <= end"),
        ({"start": 1, "end": 5, "dtype": "long"}, "Range.dtype"),
        ({"start": 1.5, "end": 5, "dtype": "int"}, "Range.start: must be integral"),
        ({"start": 1, "end": 5, "step": 0}, "Range.step: must be > 0"),
        ({"start": 1, "end": 5, "step": 1.5}, "Range.step: must be an integer"),
        ({"start": "1", "end": 5}, "Range.start: must be an int or a float"),
        ({"start": True, "end": 5}, "Range.start"),
    ],
)
def test_range_validation(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match.replace(".", r"\.")):
        Range(**kwargs)


@pytest.mark.parametrize("bad", [[], "ab", 3, None])
def test_list_validation(bad):
    with pytest.raises((ValueError, TypeError), match="List"):
        List(bad)


@pytest.mark.parametrize("args", [(1, 3), (0.0, 1.0, None, False, 0.5), (2, 8, None, True)])
def test_range_bounds_are_inclusive(args):
    r = Range(*args)
    space = from_rapidfire({"x": r})
    values = {c["x"] for c in space.samples(400, seed=0)}
    assert min(values) == r.start and max(values) == r.end


def test_log_range_is_uniform_in_log_space():
    space = from_rapidfire({"lr": Range(1e-5, 1e-1, log=True)})
    logs = np.log10([c["lr"] for c in space.samples(2000, seed=1)])
    assert stats.kstest(logs, stats.uniform(loc=-5, scale=4).cdf).pvalue > 1e-3
    ints = [c["w"] for c in from_rapidfire({"w": Range(1, 1000, log=True)}).samples(3000, seed=2)]
    assert sum(w <= 31 for w in ints) == pytest.approx(1500, abs=150)  # log-midpoint ~ sqrt(1001)


def test_list_is_uniform_and_keeps_types():
    draws = [
        c["v"] for c in from_rapidfire({"v": List([1, "a", 2.5, None])}).samples(4000, seed=3)
    ]
    assert (
        stats.chisquare(
            [sum(1 for d in draws if d is v or d == v) for v in (1, "a", 2.5)]
            + [draws.count(None)]
        ).pvalue
        > 1e-3
    )
    assert {type(d) for d in draws} == {int, str, float, type(None)}


# ---------------------------------------------------------------------------------------
# GridSearch


def test_docs_grid_is_8_configs_with_nesting_kept():
    g = docs_grid()
    configs = g.configs()
    assert len(g) == len(configs) == 8 and len({canonical(c) for c in configs}) == 8
    first = configs[0]
    assert first == {
        "user_knobs": {"model_type": "resnet"},
        "train": {
            "epochs": 3,
            "batch_size": 128,
            "optimizer": {"name": "Adam", "args": {"lr": 1e-4, "weight_decay": 1e-6}},
        },
        "named_metrics": ["top1_accuracy", "top5_accuracy"],
    }
    assert configs[1]["train"]["optimizer"]["args"]["lr"] == 1e-6  # the last knob varies fastest
    assert configs[4]["user_knobs"]["model_type"] == "vgg"
    assert g.to_tune()["train"]["batch_size"] == {"grid_search": [128, 256]}


def test_grid_with_a_range_names_its_path():
    with pytest.raises(
        ValueError, match=r"config\.train\.optimizer\.args\.lr: GridSearch cannot expand a Range"
    ):
        GridSearch({"train": {"optimizer": {"args": {"lr": Range(1e-4, 1e-3)}}}})
    with pytest.raises(
        ValueError, match=r"config\.opt\[0\]\.lr: GridSearch cannot expand a Range"
    ):
        GridSearch({"opt": List([{"lr": Range(1e-4, 1e-3)}])})


def test_grid_expands_lists_of_dicts_recursively():
    g = GridSearch(
        {
            "opt": List([{"name": "sgd", "momentum": List([0.0, 0.9])}, {"name": "adam"}]),
            "bs": List([8, 16]),
        }
    )
    assert isinstance(g.space["opt"], Conditional) and g.space["opt"].label_key is None
    assert g.configs() == [
        {"opt": {"name": "sgd", "momentum": 0.0}, "bs": 8},
        {"opt": {"name": "sgd", "momentum": 0.0}, "bs": 16},
        {"opt": {"name": "sgd", "momentum": 0.9}, "bs": 8},
        {"opt": {"name": "sgd", "momentum": 0.9}, "bs": 16},
        {"opt": {"name": "adam"}, "bs": 8},
        {"opt": {"name": "adam"}, "bs": 16},
    ]


# ---------------------------------------------------------------------------------------
# RandomSearch and lists of groups


def test_random_search_is_distinct_and_seeded():
    r = docs_random()
    configs = r.configs()
    assert len(configs) == 7 and len({canonical(c) for c in configs}) == 7
    assert configs == docs_random().configs()
    assert configs != docs_random(seed=1).configs()
    for c in configs:
        r.space.validate(c)
        assert (
            1e-5 <= c["train"]["optimizer"]["args"]["weight_decay"] <= 1e-4
        )  # reversed bounds swapped


def test_random_search_that_cannot_yield_num_runs_says_so():
    with pytest.raises(
        ValueError, match=r"num_runs: config has only 4 distinct configurations.*got 5"
    ):
        RandomSearch({"a": List([1, 2]), "b": List(["x", "y"]), "c": 3}, num_runs=5)
    assert len(RandomSearch({"a": List([1, 2]), "b": List(["x", "y"])}, num_runs=4).configs()) == 4
    with pytest.raises(ValueError, match="num_runs"):
        RandomSearch({"a": List([1, 2])}, num_runs=0)


def test_mixed_list_is_weighted_by_runs_and_expands_like_run_fit():
    """The docs' advanced example: 1 config + a 2x2 grid + 6 random runs = 11 runs."""
    grid = GridSearch(
        {"model_type": "vit", "train": {"lr": List([1e-4, 1e-5]), "wd": List([1e-6, 1e-5])}}
    )
    rand = RandomSearch(
        {"model_type": "resnet", "train": {"lr": Range(1e-4, 9e-4), "bs": List([64, 128, 256])}},
        num_runs=6,
    )
    mix = [{"model_type": "vit", "train": {"lr": 1e-4}}, grid, rand]
    runs = expand_runs(mix)
    assert len(runs) == 11 and runs[1:5] == grid.configs() and runs[5:] == rand.configs()
    space = from_rapidfire(mix)
    cond = space[GROUP_KEY]
    assert isinstance(cond, Conditional) and cond.label_key is None
    assert cond.weights == pytest.approx((1 / 11, 4 / 11, 6 / 11))
    picked = [cond.which(c[GROUP_KEY]) for c in space.samples(2200, seed=0)]
    assert stats.chisquare(np.bincount(picked, minlength=3), [200, 800, 1200]).pvalue > 1e-3
    assert SearchSpace.from_json(space.to_json()) == space
    with pytest.raises(ValueError, match=r"config\[0\]: holds List/Range"):
        expand_runs([{"a": List([1, 2])}])


# ---------------------------------------------------------------------------------------
# End to end: Tune's BasicVariantGenerator over the adapter's output


def _report(config):
    from ray import tune

    tune.report({"score": 1.0})


@pytest.mark.parametrize("which", ["grid", "random", pytest.param("list", marks=pytest.mark.slow)])
def test_tune_runs_exactly_the_rapidfire_runs(which, ray_session, storage):
    from ray import tune
    from ray.tune.search import BasicVariantGenerator

    if which == "grid":
        g = GridSearch(
            {"train": {"bs": List([8, 16]), "opt": {"lr": List([0.1, 0.01])}}, "tag": "x"}
        )
        param_space, expected, strip = g.to_tune(), g.configs(), lambda c: c
    elif which == "random":
        r = RandomSearch(
            {"train": {"bs": List([8, 16]), "opt": {"lr": Range(1e-3, 1e-1, log=True)}}},
            num_runs=3,
            seed=0,
        )
        param_space, expected = r.to_tune(), r.configs()
        strip = lambda c: {k: v for k, v in c.items() if k != INDEX_KEY}
    else:
        mix = [{"a": 1}, RandomSearch({"b": Range(0, 9)}, num_runs=2, seed=0)]
        param_space, expected = runs_to_tune(mix), expand_runs(mix)
        strip = lambda c: c[GROUP_KEY]
    results = tune.Tuner(
        _report,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            search_alg=BasicVariantGenerator(random_state=0), num_samples=1, reuse_actors=True
        ),
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    ).fit()
    assert not results.errors
    assert sorted(canonical(strip(r.config)) for r in results) == sorted(
        canonical(c) for c in expected
    )


def test_grid_too_large_to_list_is_an_error_naming_the_config():
    """More combinations than GRID_LIMIT: ``configs()`` says so (it listed them all, without
    bound, before); ``len`` still counts them, and a grid at the limit is listed."""
    from rafiki_ray.spaces._params import GRID_LIMIT

    big = GridSearch({"a": List(list(range(1000))), "b": {"c": List(list(range(1000)))}})
    assert len(big) == 10**6
    with pytest.raises(ValueError, match=rf"config: GridSearch has more than {GRID_LIMIT} "
                                         r"combinations, got 1000000"):
        big.configs()
    with pytest.raises(ValueError, match=r"config: GridSearch has more than"):
        expand_runs([{"x": 1}, big])
    edge = GridSearch({"a": List(list(range(GRID_LIMIT // 10))), "b": List(list(range(10)))})
    assert len(edge.configs()) == GRID_LIMIT
    # RandomSearch draws and lists its runs at construction: the same bound on num_runs
    with pytest.raises(ValueError, match=rf"num_runs: must be at most {GRID_LIMIT}, got 10000000"):
        RandomSearch({"x": Range(0.0, 1.0)}, num_runs=10**7)
