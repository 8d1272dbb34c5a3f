"""ProgressiveGridSearch: NNI v2's GridSearchTuner order. The expected sequences are derived by
hand from the algorithm (midpoint, then quartiles, then eighths of each numeric range;
odometer order with the last parameter fastest; points of earlier epochs and duplicates
skipped), with normal quantiles from the standard library's NormalDist."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest
from ray.tune.search import Searcher

from rafiki_ray.searchers.grid import ProgressiveGridSearch, grid_points, is_finite_grid
from rafiki_ray.spaces import as_space
from rafiki_ray.spaces.adapters.nni import from_nni
from rafiki_ray.testing._searcher_cases import SPACES
from rafiki_ray.testing.searchers import (
    OPT_SPACE,
    SearcherContract,
    _conditional_space,
    check_types,
    drive,
    objective,
    opt_objective,
)


class TestProgressiveGridContract(SearcherContract):
    """The searcher contract, where it applies to a fixed order: the exhaustive order reaches a
    later branch only after the earlier one's grid (the contract's conditional space reaches
    "adam" at point 16, the adapted space "mlp" at 72), so the space cases take 80 steps; a grid
    is not an optimiser and ignores its seed, so those cases check the order instead (and a
    small space is complete before the contract's step count: FINISHED)."""

    searcher_path = "rafiki_ray.searchers:ProgressiveGridSearch"

    @pytest.fixture
    def searcher_factory(self):
        return lambda **kw: ProgressiveGridSearch(**kw)

    @pytest.mark.parametrize("space_name", list(SPACES))
    def test_suggestions_have_right_types_and_stay_in_space(self, searcher_factory, space_name):
        raw = SPACES[space_name]()
        space = as_space(raw)
        n = len(list(grid_points(space, 80)))  # small spaces are complete sooner
        s = searcher_factory(space=raw, metric="loss", mode="min", seed=1)
        configs = drive(s, n, lambda c: objective(space, c))
        assert configs == list(grid_points(space, n))
        for i, cfg in enumerate(configs):
            check_types(space, cfg, f"suggestion[{i}]")
        if n < 80:
            assert s.suggest("after") == Searcher.FINISHED
        if space_name == "conditional":  # every branch, in the grid's order
            assert {c["optimizer"]["_name"] for c in configs} >= {"sgd", "adam"}
        if space_name == "adapted":  # the architecture is the 2nd dimension: it moves late
            assert {c["model"]["_name"] for c in configs} == {"cnn", "mlp"}
            later = list(grid_points(space, 8300))
            assert len({repr(c["cell"]) for c in later}) > 1

    @pytest.mark.parametrize("poison", [False, True], ids=["clean", "poisoned"])
    def test_beats_its_random_baseline(self, searcher_factory, poison):
        # not an optimiser: it gives the grid's first points whatever the results
        s = searcher_factory(space=OPT_SPACE, metric="loss", mode="min", seed=0)
        configs = drive(s, self.optimise_budget, opt_objective, poison=poison)
        assert configs == list(grid_points(OPT_SPACE, self.optimise_budget))

    def test_mode_max_maximises(self, searcher_factory):
        s = searcher_factory(space=OPT_SPACE, metric="score", mode="max", seed=0)
        configs = drive(s, 20, lambda c: -opt_objective(c), metric="score")
        assert s.best()[1] == max(-opt_objective(c) for c in configs)

    def test_same_seed_same_sequence_different_seed_differs(self, searcher_factory):
        space = _conditional_space()
        runs = [drive(searcher_factory(space=space, metric="loss", mode="min", seed=seed),
                      20, lambda c: objective(space, c)) for seed in (7, 8)]
        assert runs[0] == runs[1] == list(grid_points(space, 20))  # NNI's fixed order


def _nni(**params):
    return from_nni({k: {"_type": t, "_value": v} for k, (t, v) in params.items()})


def _same(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.keys() == w.keys()
        for k in w:
            assert g[k] == pytest.approx(w[k], rel=1e-12, abs=1e-12), (k, g, w)


def test_nni_docstring_example_choice_normal_quniform():
    # NNI's own example: x choice(5, 7), y normal(0, 1), z quniform(2, 3, 1)
    space = _nni(x=("choice", [5, 7]), y=("normal", [0, 1]), z=("quniform", [2, 3, 1]))
    q = NormalDist().inv_cdf
    # epoch 1: y at 1/2 (0), z at 1/2 (2.5 rounds half to even: 2)
    want = [{"x": 5, "y": 0, "z": 2}, {"x": 7, "y": 0, "z": 2}]
    # epoch 2: y adds 1/4, 3/4; z adds 3/4 (3; 1/4 would repeat 2); (y 1/2, z 1/2) is old
    for x in (5, 7):
        want += [{"x": x, "y": 0, "z": 3}]
        for y in (q(0.25), q(0.75)):
            want += [{"x": x, "y": y, "z": 2}, {"x": x, "y": y, "z": 3}]
    # epoch 3: y adds 1/8, 3/8, 5/8, 7/8; z has nothing new (5/8 gives 3 again)
    want += [{"x": 5, "y": q(0.125), "z": 2}, {"x": 5, "y": q(0.125), "z": 3},
             {"x": 5, "y": q(0.375), "z": 2}]
    _same(list(grid_points(space, len(want))), want)
    assert not is_finite_grid(space)  # a normal refines without end


def test_log_and_uniform_ranges_are_halved_epoch_by_epoch():
    space = _nni(lr=("loguniform", [1e-4, 1.0]), b=("uniform", [0, 8]))
    want = [{"lr": 1e-2, "b": 4}]  # the midpoints (in log space for lr)
    want += [{"lr": 1e-2, "b": 2}, {"lr": 1e-2, "b": 6}]
    for lr in (1e-3, 1e-1):
        want += [{"lr": lr, "b": b} for b in (4, 2, 6)]
    want += [{"lr": 1e-2, "b": b} for b in (1, 3, 5, 7)]  # epoch 3 starts: eighths of b
    want += [{"lr": 10 ** -3.5, "b": 4}]  # ... then lr's eighths
    got = list(grid_points(space, 13))
    _same(got[:13], want[:13])
    assert len(list(grid_points(space, 49))) == 49  # 7 x 7 after three epochs, and on


def test_quantised_range_ends_in_nni_order():
    # quniform(0, 4, 2): 1/2 -> 2; then 1/4 -> round(0.5)*2 = 0, 3/4 -> round(1.5)*2 = 4;
    # then 3/8 and 5/8 give 2 again: no new value, the search is complete
    space = _nni(c=("choice", ["a", "b"]), q=("quniform", [0, 4, 2]))
    want = [{"c": "a", "q": 2}, {"c": "b", "q": 2},
            {"c": "a", "q": 0}, {"c": "a", "q": 4}, {"c": "b", "q": 0}, {"c": "b", "q": 4}]
    _same(list(grid_points(space)), want)
    assert is_finite_grid(space)


def test_nested_choices_and_the_categorical_order():
    finite = from_nni({
        "m": {"_type": "choice", "_value": [
            {"_name": "A", "u": {"_type": "choice", "_value": [1, 2]}},
            {"_name": "B", "v": {"_type": "choice", "_value": [3]}}]},
        "k": {"_type": "randint", "_value": [0, 2]}})
    assert list(grid_points(finite)) == list(finite.grid())  # all categorical: the product
    mixed = from_nni({
        "m": {"_type": "choice", "_value": [
            {"_name": "A", "u": {"_type": "uniform", "_value": [0, 1]}}, {"_name": "B"}]},
        "k": {"_type": "randint", "_value": [0, 2]}})
    assert list(grid_points(mixed, 8)) == [
        {"m": {"_name": "A", "u": 0.5}, "k": 0}, {"m": {"_name": "A", "u": 0.5}, "k": 1},
        {"m": {"_name": "B"}, "k": 0}, {"m": {"_name": "B"}, "k": 1},
        # epoch 2: u's quartiles under A; B's points are not repeated
        {"m": {"_name": "A", "u": 0.25}, "k": 0}, {"m": {"_name": "A", "u": 0.25}, "k": 1},
        {"m": {"_name": "A", "u": 0.75}, "k": 0}, {"m": {"_name": "A", "u": 0.75}, "k": 1}]


def test_searcher_state_replays_and_it_finishes():
    space = _nni(x=("uniform", [0, 1]), c=("choice", [0, 1]))
    s = ProgressiveGridSearch(space, metric="m", mode="max")
    first = [s.suggest(f"t{i}") for i in range(5)]
    for i, cfg in enumerate(first):
        s.on_trial_complete(f"t{i}", {"m": cfg["x"]})
    assert first == list(grid_points(space, 5))
    state = s.get_state()
    again = ProgressiveGridSearch()
    again.set_state(state)
    assert [again.suggest(f"u{i}") for i in range(4)] == list(grid_points(space, 9))[5:]
    assert again.best()[1] == 0.75
    done = ProgressiveGridSearch(_nni(q=("quniform", [0, 4, 2])), metric="m", mode="min")
    assert [done.suggest(str(i)) for i in range(4)] == [
        {"q": 2.0}, {"q": 0.0}, {"q": 4.0}, Searcher.FINISHED]
    with pytest.raises(ValueError, match="grid search needs a finite list"):
        list(grid_points(_nni(a=("randint", [0, 10**7]))))  # ten million values


def test_specs_grid_search_maps_to_nni_order(tmp_path):
    from rafiki_ray.specs import load_experiment

    def spec(space: str) -> str:
        path = tmp_path / "exp.yml"
        path.write_text(f"searchSpace: {space}\ntrialCommand: python t.py\n"
                        "maxTrialNumber: 4\ntuner: {name: GridSearch}\n")
        return str(path)

    finite = load_experiment(spec("{q: {_type: quniform, _value: [0, 4, 2]}}"))
    assert finite.configs == ({"q": 2.0}, {"q": 0.0}, {"q": 4.0}) and finite.searcher is None
    endless = load_experiment(spec("{lr: {_type: loguniform, _value: [0.0001, 1]}}"))
    assert endless.configs is None and endless.num_samples == 4
    assert endless.searcher.class_name == "ProgressiveGridSearch"
    assert any("refined" in n for n in endless.notes)
    searcher, _ = endless.build_components()
    assert math.isclose(searcher.suggest("a")["lr"], 1e-2)


def test_tune_runs_the_grid_until_it_is_complete(ray_session, storage):
    from ray import tune

    space = _nni(c=("choice", ["a", "b"]), q=("quniform", [0, 4, 2]))

    def trainable(config):
        tune.report({"m": config["q"]})

    results = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=ProgressiveGridSearch(space, metric="m", mode="max"),
            num_samples=-1, max_concurrent_trials=1),  # no limit: the searcher finishes
        run_config=tune.RunConfig(storage_path=storage, name="grid", verbose=0),
    ).fit()
    got = sorted((r.config["c"], r.config["q"]) for r in results)
    assert got == sorted((c["c"], c["q"]) for c in grid_points(space)) and len(got) == 6
