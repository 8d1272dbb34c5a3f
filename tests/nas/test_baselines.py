"""RandomNAS and RegularizedEvolutionNAS: the searcher contract, aging, and the schedule."""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar

import pytest

from rafiki_ray.nas import RafikiSchedule, RandomNAS, RegularizedEvolutionNAS
from rafiki_ray.spaces import Arch, SearchSpace
from rafiki_ray.testing.searchers import SearcherContract, check_types


class TestRegularizedEvolutionNASContract(SearcherContract):
    searcher_path = "rafiki_ray.nas:RegularizedEvolutionNAS"
    searcher_kwargs: ClassVar[dict[str, Any]] = {"population_size": 4, "sample_size": 2}
    optimise_budget = 60
    heavy_in_default_run = False  # ENASSearch's contract runs the Tune cases by default

    @pytest.fixture
    def searcher_factory(self):
        def make(**kw):
            kw.setdefault("population_size", 8)
            kw.setdefault("sample_size", 3)
            return RegularizedEvolutionNAS(**kw)

        return make


class TestRandomNASContract(SearcherContract):
    """The contract, except that random search cannot beat random search: those two cases
    check uniformity instead."""

    searcher_path = "rafiki_ray.nas:RandomNAS"
    heavy_in_default_run = False

    @pytest.fixture
    def searcher_factory(self):
        return RandomNAS

    def test_beats_its_random_baseline(self, searcher_factory, poison=None):  # type: ignore[override]
        space = SearchSpace({"a": Arch((("x", "y", "z"),) * 2)})
        s = searcher_factory(space=space, metric="m", mode="max", seed=0)
        counts = Counter()
        for i in range(600):
            c = s.suggest(f"t{i}")
            counts[c["a"][0]] += 1
            s.on_trial_complete(f"t{i}", {"m": float(c["a"][0] == "x")})  # no learning
        assert all(150 < n < 250 for n in counts.values()), counts

    def test_mode_max_maximises(self, searcher_factory):  # type: ignore[override]
        pytest.skip("random search ignores the mode (uniformity is checked above)")


OPS = ("a", "b", "c", "d")
SPACE = SearchSpace({"arch": Arch((OPS,) * 6)})


def _score(c):
    return sum(x == "a" for x in c["arch"]) / 6


def test_regularized_evolution_ages_out_and_mutates_one_position():
    s = RegularizedEvolutionNAS(SPACE, metric="s", mode="max", seed=0, population_size=5,
                                sample_size=2)
    seen: list = []
    before: list = []
    for i in range(40):
        c = s.suggest(f"t{i}")
        check_types(SPACE, c)
        if i >= 5:  # a mutant of a member: exactly one position differs
            assert any(sum(x != y for x, y in zip(c["arch"], m["config"]["arch"])) == 1
                       for m in before)
        s.on_trial_complete(f"t{i}", {"s": _score(c)})
        seen.append(c)
        before = s.population
        assert len(before) == min(i + 1, 5)
        assert [m["config"] for m in before] == seen[-5:]  # the most recent, oldest first
    assert s.best()[1] > max(_score(c) for c in seen[:5])


def test_baselines_follow_the_schedule():
    sched = RafikiSchedule(n_train=1, n_eval=1, n_final_eval=2, final_after_trials=4)
    for cls in (RandomNAS, RegularizedEvolutionNAS):
        s = cls(SPACE, metric="s", mode="max", seed=0, schedule=sched)
        scores = {}
        for i in range(4):
            c = s.suggest(f"t{i}")
            phase = c.pop("_rafiki")["phase"]
            scores[f"t{i}"] = _score(c)
            s.on_trial_complete(f"t{i}", {"s": _score(c) if phase == "EVAL" else float("nan")})
        f = [s.suggest(f"f{i}") for i in range(2)]
        assert [c["_rafiki"]["phase"] for c in f] == ["FINAL_EVAL"] * 2
        # FINAL_EVAL re-evaluates the best EVAL architectures seen
        best_eval = max(s.suggest and [o for o in s.get_state()["observations"]
                                       if o["loss"] is not None], key=lambda o: -o["loss"])
        assert f[0]["arch"] == best_eval["config"]["arch"]
        for i, c in enumerate(f):
            s.on_trial_complete(f"f{i}", {"s": 0.5 + i})
        ft = s.suggest("final")
        assert ft["_rafiki"]["phase"] == "FINAL_TRAIN" and ft["arch"] == f[1]["arch"]
        assert s.suggest("x") == s.FINISHED


def test_bad_arguments():
    with pytest.raises(ValueError, match="sample_size"):
        RegularizedEvolutionNAS(population_size=3, sample_size=4)
    with pytest.raises(ValueError, match="population_size"):
        RegularizedEvolutionNAS(population_size=0)
