"""EvolutionSearch: the searcher contract (NNI and regularized) plus NNI's semantics step by step."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest

from rafiki_ray.searchers.evolution import EvolutionSearch, mutable_params, mutate
from rafiki_ray.spaces import Categorical, Conditional, Fixed, Float, Int, Option, SearchSpace
from rafiki_ray.testing.searchers import SearcherContract, check_types


class TestEvolutionContract(SearcherContract):
    searcher_path = "rafiki_ray.searchers:EvolutionSearch"
    searcher_kwargs: ClassVar[dict[str, Any]] = {"population_size": 4}
    regularized = False
    optimise_budget = 60  # a population of 6 needs a few generations

    @pytest.fixture
    def searcher_factory(self):
        def make(**kw):
            kw.setdefault("population_size", 6)
            kw.setdefault("regularized", self.regularized)
            return EvolutionSearch(**kw)

        return make


class TestRegularizedEvolutionContract(TestEvolutionContract):
    """The same contract with ``regularized=True``; its Tune cases run with ``-m slow``."""

    regularized = True
    searcher_kwargs: ClassVar[dict[str, Any]] = {"population_size": 4, "regularized": True}
    heavy_in_default_run = False


SPACE = SearchSpace(
    {"a": Float(0.0, 1.0), "b": Float(-1.0, 1.0), "n": Int(0, 1000), "fixed": Fixed("k")}
)


def _loss(c):
    return (c["a"] - 0.2) ** 2 + c["b"] ** 2 + abs(c["n"] - 500) / 1000


def _diff(x, y):
    return [k for k in ("a", "b", "n") if x[k] != y[k]]


def _key(c):
    return (c["a"], c["b"], c["n"])


def test_nni_semantics_step_by_step():
    s = EvolutionSearch(SPACE, metric="y", mode="min", seed=0, population_size=5)
    # 1. the initial population: 5 random members, handed out first, in order
    first = [s.suggest(f"i{k}") for k in range(5)]
    assert s.population == []  # every member is running
    for k, c in enumerate(first):
        check_types(SPACE, c)
        s.on_trial_complete(f"i{k}", {"y": _loss(c)})
    assert sorted(_key(m["config"]) for m in s.population) == sorted(_key(c) for c in first)
    for step in range(30):
        before = {_key(m["config"]): m["loss"] for m in s.population}
        child = s.suggest(f"c{step}")
        after = {_key(m["config"]): m["loss"] for m in s.population}
        # 2. one member dropped: the worse of the pair; the better (the parent) stays
        assert len(after) == len(before) - 1
        (dropped,) = set(before) - set(after)
        parents = [k for k in after if len(_diff(child, dict(zip("abn", k)))) == 1]
        assert parents, "the child is not a one-parameter mutation of a member"
        assert any(after[p] <= before[dropped] for p in parents)
        # 3. exactly ONE active parameter was resampled; the fixed value is kept
        assert child["fixed"] == "k"
        # 4. the child's result joins the population
        s.on_trial_complete(f"c{step}", {"y": _loss(child)})
        assert _key(child) in {_key(m["config"]) for m in s.population}
        assert len(s.population) == len(before)
    assert s.best()[1] < min(_loss(c) for c in first)


def test_failed_trial_is_replaced_by_a_new_random_member():
    s = EvolutionSearch(SPACE, metric="y", mode="min", seed=1, population_size=3)
    cfgs = [s.suggest(f"i{k}") for k in range(3)]
    s.on_trial_complete("i0", {"y": 1.0})
    s.on_trial_complete("i1", None, error=True)
    s.on_trial_complete("i2", {"y": float("nan")})  # NaN counts as a failure
    pop = s.population
    assert [m["loss"] for m in pop] == [1.0, None, None]
    assert pop[0]["config"] == cfgs[0]
    fresh = [m["config"] for m in pop[1:]]
    assert all(c not in cfgs for c in fresh)
    # the new random members are evaluated next, before any mutation
    assert [s.suggest("r1"), s.suggest("r2")] == fresh


def test_regularized_evolution_removes_the_oldest():
    s = EvolutionSearch(
        SPACE, metric="y", mode="min", seed=2, population_size=4, regularized=True, sample_size=2
    )
    for k in range(4):
        c = s.suggest(f"i{k}")
        s.on_trial_complete(f"i{k}", {"y": _loss(c)})
    for step in range(20):
        before = [m["config"] for m in s.population]
        losses = [m["loss"] for m in s.population]
        child = s.suggest(f"c{step}")
        parents = [i for i, b in enumerate(before) if len(_diff(child, b)) == 1]
        assert parents
        # the tournament winner never is the worst member (sample_size=2, distinct members)
        assert any(losses[i] < max(losses) for i in parents)
        assert [m["config"] for m in s.population] == before  # nothing removed on suggest
        s.on_trial_complete(f"c{step}", {"y": _loss(child)})
        after = [m["config"] for m in s.population]
        assert after == before[1:] + [child]  # oldest out, child in


def test_mutation_resamples_one_active_parameter_of_a_conditional_space():
    space = SearchSpace(
        {
            "opt": Conditional(
                (
                    Option(
                        "sgd",
                        SearchSpace({"lr": Float(1e-4, 1.0, log=True), "m": Float(0.0, 0.9)}),
                    ),
                    Option("adam", SearchSpace({"lr": Float(1e-4, 1.0, log=True)})),
                )
            ),
            "act": Categorical(("relu", "tanh")),
            "seed": Fixed(1),
        }
    )
    cfg = {"opt": {"_name": "sgd", "lr": 0.01, "m": 0.5}, "act": "relu", "seed": 1}
    paths = [p for p, _ in mutable_params(space, cfg)]
    assert paths == [("opt",), ("opt", "lr"), ("opt", "m"), ("act",)]
    rng = np.random.default_rng(0)
    changed = set()
    for _ in range(200):
        child = mutate(space, cfg, rng)
        assert space.contains(child) and child["seed"] == 1
        diffs = [p for p in paths[1:] if _get(child, p) != _get(cfg, p)]
        if child["opt"]["_name"] != "sgd" or diffs == [("opt", "lr"), ("opt", "m")]:
            changed.add(("opt",))  # the conditional itself: a fresh option and sub-parameters
            assert child["act"] == "relu"
        else:
            assert len(diffs) <= 1, diffs
            changed.update(diffs)
    assert changed == set(paths)


def _get(cfg, path, default=None):
    for k in path:
        if not isinstance(cfg, dict) or k not in cfg:
            return default
        cfg = cfg[k]
    return cfg


def test_no_duplicate_pending_points_on_a_small_discrete_space():
    space = SearchSpace({"c": Categorical(tuple("abcdefgh")), "n": Int(0, 7)})
    s = EvolutionSearch(space, metric="y", mode="max", seed=0, population_size=4)
    for k in range(4):
        c = s.suggest(f"i{k}")
        s.on_trial_complete(f"i{k}", {"y": float(c["n"])})
    batch = [s.suggest(f"p{k}") for k in range(3)]
    assert len({(c["c"], c["n"]) for c in batch}) == 3


def test_from_args_accepts_nni_class_arguments():
    s = EvolutionSearch.from_args(
        {"optimize_mode": "maximize", "population_size": 8}, space=SPACE, metric="acc"
    )
    assert (s.mode, s._population_size, s._regularized) == ("max", 8, False)
    r = EvolutionSearch.from_args(
        {"optimize_mode": "minimize", "population_size": 10, "sample_size": 3, "regularized": True}
    )
    assert (r.mode, r._population_size, r._sample_size, r._regularized) == ("min", 10, 3, True)
    with pytest.raises(ValueError, match=r"EvolutionSearch.mutation_prob: is not an argument"):
        EvolutionSearch.from_args({"mutation_prob": 0.1})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"population_size": 1}, "population_size: must be an int >= 2, got 1"),
        (
            {"population_size": 4, "sample_size": 5},
            "sample_size: must be <= population_size (4), got 5",
        ),
        ({"regularized": "yes"}, "regularized: must be a bool, got 'yes'"),
    ],
)
def test_bad_arguments_name_the_field(kwargs, message):
    with pytest.raises(ValueError) as err:
        EvolutionSearch(**kwargs)
    assert message in str(err.value)


@pytest.mark.parametrize("regularized", [False, True], ids=["nni", "regularized"])
@pytest.mark.parametrize("after_init", [False, True], ids=["before", "after-init"])
def test_warm_start_keeps_the_population_at_population_size(regularized, after_init):
    """More warm-start points than ``population_size``: the population keeps
    ``population_size`` of them (NNI: the best; regularized: the newest, as aging would) in
    place of random members; every point stays in the history (``best()``)."""
    s = EvolutionSearch(
        SPACE, metric="y", mode="min", seed=3, population_size=4, regularized=regularized
    )
    if after_init:  # a random population exists already, one member of it running
        running = s.suggest("r0")
    rng = np.random.default_rng(0)
    points = [SPACE.sample(rng) for _ in range(10)]
    for p in points:
        s.add_evaluated_point(p, _loss(p))
    assert s.n_observations == 10
    assert s.best()[1] == min(_loss(p) for p in points)  # nothing lost from the history
    pop = s.population
    assert len(pop) == 4 and all(m["loss"] is not None for m in pop)  # random members gave way
    kept = sorted(points, key=_loss)[:4] if not regularized else points[-4:]
    assert sorted(_key(m["config"]) for m in pop) == sorted(_key(c) for c in kept)
    if after_init:
        s.on_trial_complete("r0", {"y": _loss(running)})
        assert len(s.population) == 4
    for k in range(12):  # and it stays there, sequentially and with parallel trials
        batch = [(f"c{k}.{j}", s.suggest(f"c{k}.{j}")) for j in range(1 + k % 3)]
        for tid, c in batch:
            s.on_trial_complete(tid, {"y": _loss(c)})
        assert len(s.population) <= 4
    assert s.n_observations == 10 + after_init + sum(1 + k % 3 for k in range(12))
