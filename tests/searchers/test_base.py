"""The RafikiSearcher base: what every searcher inherits (no Ray cluster needed)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rafiki_ray.searchers._base import RafikiSearcher
from rafiki_ray.spaces import Categorical, Conditional, Float, Int, Option, SearchSpace


class _Random(RafikiSearcher):
    """The smallest possible subclass: seeded random proposals."""

    def _propose(self, trial_id: str) -> dict:
        return self.space.sample(self.rng)


SPACE = SearchSpace(
    {
        "x": Float(-5, 5),
        "n": Int(1, 4),
        "opt": Conditional(
            (
                Option("sgd", SearchSpace({"momentum": Float(0, 1)})),
                Option("adam", SearchSpace({"beta": Float(0.5, 0.999, log=True)})),
            )
        ),
        "nested": {"c": Categorical(("a", "b"))},
    }
)


def _searcher(**kw) -> _Random:
    kw.setdefault("metric", "y")
    kw.setdefault("mode", "min")
    return _Random(SPACE, **kw)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "maximize"}, "mode: must be 'min' or 'max', got 'maximize'"),
        ({"seed": 1.5}, "seed: must be None or an int, got 1.5"),
        ({"constant_liar_type": "best"}, "constant_liar_type: must be one of"),
        ({"max_concurrent": 0}, "max_concurrent: must be an int >= 1, got 0"),
        ({"points_to_evaluate": {"x": 1}}, "points_to_evaluate: must be a list of dicts"),
        ({"points_to_evaluate": [{"x": 99.0}]}, "points_to_evaluate[0].x: is outside"),
    ],
)
def test_bad_arguments_name_the_field(kwargs, message):
    with pytest.raises((ValueError, TypeError)) as err:
        _searcher(**kwargs)
    assert message in str(err.value)


def test_partial_points_are_completed_and_come_first():
    s = _searcher(seed=0, points_to_evaluate=[{"x": 1.25, "nested": {"c": "b"}}])
    first = s.suggest("t0")
    assert first["x"] == 1.25 and first["nested"] == {"c": "b"}
    assert SPACE.contains(first)
    assert SPACE.contains(s.suggest("t1"))


def test_failed_nan_and_inf_results_do_not_poison_model_data():
    s = _searcher(seed=0, constant_liar_type=None)
    results = [{"y": 1.0}, {"y": float("nan")}, None, {"y": float("inf")}, {"y": -2.0}, {}]
    for i, r in enumerate(results):
        s.suggest(str(i))
        s.on_trial_complete(str(i), r, error=r is None)
    X, A, y = s.model_data()
    assert s.n_observations == 6
    assert y.tolist() == [1.0, 1.0, -2.0]  # NaN, error, missing dropped; +inf clipped to worst
    assert X.shape == (3, s.encoder.n_dims) and A.shape == X.shape
    assert s.best()[1] == -2.0


@pytest.mark.parametrize(("liar", "expected"), [("min", -3.0), ("max", 5.0), ("mean", 1.0)])
def test_constant_liar_value(liar, expected):
    s = _searcher(seed=0, constant_liar_type=liar)
    for i, v in enumerate([5.0, -3.0, 1.0]):
        s.suggest(str(i))
        s.on_trial_complete(str(i), {"y": v})
    s.suggest("pending-a")
    s.suggest("pending-b")
    _, _, y = s.model_data()
    assert y[-2:].tolist() == [expected, expected]
    assert len(s.model_data(with_pending=False)[2]) == 3


def test_mode_max_negates_into_a_loss():
    s = _searcher(mode="max", seed=0)
    s.suggest("a")
    s.on_trial_complete("a", {"y": 3.0})
    assert s.model_data()[2].tolist() == [-3.0]
    assert s.best()[1] == 3.0


def test_state_round_trip_restores_everything(tmp_path):
    s = _searcher(seed=7, points_to_evaluate=[{"x": 0.0}, {"x": 1.0}])
    s.suggest("a")
    s.on_trial_complete("a", {"y": 2.0})
    s.suggest("pending")
    path = tmp_path / "searcher.pkl"
    s.save(str(path))
    blank = _Random()  # what Tune restores into: no space, metric or mode
    blank.restore(str(path))
    assert blank.metric == "y" and blank.mode == "min" and blank.space == SPACE
    assert blank.pending_configs() == s.pending_configs()
    assert [blank.suggest(str(i)) for i in range(3)] == [s.suggest(str(i)) for i in range(3)]
    # the restored searcher accepts the result of a trial that was pending at save time
    blank.on_trial_complete("pending", {"y": 1.0})
    assert blank.best()[1] == 1.0


def test_restore_refuses_another_class(tmp_path):
    class Other(_Random):
        pass

    path = tmp_path / "s.pkl"
    _searcher(seed=1).save(str(path))
    with pytest.raises(ValueError, match="saved by _Random"):
        Other().restore(str(path))


def test_warm_start_from_a_tune_style_dataframe():
    rows = []
    rng = np.random.default_rng(0)
    for cfg in SPACE.samples(5, rng):
        row = {"y": cfg["x"] ** 2, "config/x": cfg["x"], "config/n": cfg["n"], "config/opt": cfg["opt"]}
        row["config/nested/c"] = cfg["nested"]["c"]
        rows.append(row)
    s = _searcher(seed=0)
    assert s.warm_start(pd.DataFrame(rows)) == 5
    assert math.isclose(s.best()[1], min(r["y"] for r in rows))


def test_warm_start_names_the_bad_row():
    df = pd.DataFrame([{"y": 1.0, "config/x": 100.0, "config/n": 1, "config/opt": {"_name": "sgd", "momentum": 0.1},
                        "config/nested/c": "a"}])
    with pytest.raises(ValueError, match=r"results\[0\]\.x"):
        _searcher().warm_start(df)


def test_from_args_uses_the_alias_table():
    s = _Random.from_args({"optimize_mode": "maximize", "random_state": 3}, space=SPACE, metric="y")
    assert s.mode == "max"
    with pytest.raises(ValueError, match="_Random.population: is not an argument"):
        _Random.from_args({"population": 3})


def test_same_seed_same_sequence_different_seed_differs():
    def seq(seed):
        s = _searcher(seed=seed)
        return [s.suggest(str(i)) for i in range(4)]

    assert seq(3) == seq(3)
    assert seq(3) != seq(4)


def test_suggest_without_space_or_metric_is_a_clear_error():
    with pytest.raises(RuntimeError, match="no search space"):
        _Random(metric="y", mode="min").suggest("a")
    with pytest.raises(ValueError, match="metric: is not set"):
        _Random(SPACE).suggest("a")
    with pytest.raises(ValueError, match="mode: is not set"):
        _Random(SPACE, metric="y").suggest("a")


def test_set_search_properties_from_a_tune_param_space():
    from ray import tune

    s = _Random()
    assert s.set_search_properties("acc", "max", {"lr": tune.loguniform(1e-4, 1e-1), "k": 3})
    cfg = s.suggest("a")
    assert 1e-4 <= cfg["lr"] <= 1e-1 and cfg["k"] == 3
    assert not s.set_search_properties("acc", "max", {"lr": tune.uniform(0, 1)})  # already set


def test_max_concurrent_limits_pending():
    s = _searcher(seed=0, max_concurrent=2)
    assert s.suggest("a") is not None and s.suggest("b") is not None
    assert s.suggest("c") is None
    s.on_trial_complete("a", {"y": 1.0})
    assert s.suggest("c") is not None


def test_warm_start_from_a_real_tune_dataframe_with_conditional_holes(ray_session, storage):
    from ray import tune

    def trainable(config):
        tune.report({"y": config["x"] ** 2})

    results = tune.Tuner(
        trainable,
        param_space=SPACE.to_tune(),
        tune_config=tune.TuneConfig(num_samples=6, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    ).fit()
    s = _searcher(seed=0)
    assert s.warm_start(results) == 6
    assert math.isclose(s.best()[1], min(r.metrics["y"] for r in results))


@pytest.mark.parametrize("limit", [None, 4])
def test_max_concurrent_trials_lets_tune_keep_trials_pending_ahead(ray_session, storage, limit):
    """The README's advice for short trials: Tune keeps one trial pending for any Searcher
    (ours too) unless ``TuneConfig(max_concurrent_trials=N)`` is set, and then up to N
    unfinished trials, so suggestions wait ahead of the 2 slots (2 running + 2 pending; 3
    while the first trials start)."""
    import time

    from ray import tune

    from rafiki_ray.searchers import TPESearch

    seen: list[int] = []

    class CountPending(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            seen.append(sum(t.status == "PENDING" for t in trials))

    def trainable(config):
        for i in range(3):
            time.sleep(0.3)
            tune.report({"y": config["x"] + i})

    grid = tune.Tuner(
        trainable, param_space={"x": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(metric="y", mode="max", num_samples=8,
                                    search_alg=TPESearch(seed=0), reuse_actors=True,
                                    max_concurrent_trials=limit),
        run_config=tune.RunConfig(storage_path=storage, verbose=0, callbacks=[CountPending()]),
    ).fit()
    assert grid.num_errors == 0 and len(grid) == 8
    if limit is None:
        assert max(seen) == 1, seen
    else:
        assert 2 <= max(seen) <= limit - 1 and seen.count(2) > len(seen) // 2, seen
