"""tune_model end to end on a real Ray (2 CPUs): trial counts, the advisor's choice, FIXED,
parameter sharing that really shares, the time budget, custom searchers, the result files."""

from __future__ import annotations

import json
import logging
import os
import re
import time

import numpy as np
import pytest

from rafiki_ray.models import deploy, load_parameters, tune_model
from rafiki_ray.progress import ProgressCallback
from tests.models._probes import EpochProbe, FixedProbe, SharingProbe, slow_probe
from tests.models.conftest import example_model

DUMMY = (np.zeros((4, 2)), np.zeros(4, dtype=int))


def test_sksvm_on_digits_exact_count_table_and_best_files(ray_session, storage, small_digits,
                                                          caplog):
    train, val, _ = small_digits
    lines: list[str] = []
    progress = ProgressCallback(metric="score", total_trials=4, interval_s=0.0,
                                write=lines.append)
    with caplog.at_level(logging.INFO, logger="rafiki_ray.models.tuning"):
        result = tune_model(example_model("SkSvm"), train, val, {"MODEL_TRIAL_COUNT": 4},
                            seed=0, storage_path=storage, name="svm", k=2,
                            max_concurrent_trials=2, progress=progress)
    assert len(result.result_grid) == 4 and len(result.table) == 4
    assert result.advisor.name == "BAYES_OPT"
    assert "advisor BAYES_OPT" in caplog.text  # the choice and its reason are logged
    assert result.table["score"].is_monotonic_decreasing
    assert result.best_score == result.table["score"].max() > 0.5
    assert [b.rank for b in result.best] == [0, 1]
    with open(os.path.join(result.experiment_path, "rafiki_best", "index.json")) as f:
        index = json.load(f)
    assert index["advisor"]["name"] == "BAYES_OPT" and len(index["best"]) == 2
    assert index["best"][0]["knobs"] == result.best_knobs
    assert "clf_base64" in load_parameters(result.best[0].params_path)
    assert os.path.exists(os.path.join(result.experiment_path, "rafiki_trials.csv"))
    assert lines and lines[-1].startswith("[rafiki] trials 4/4 done")
    assert f"best score {result.best_score:.4g}" in lines[-1]


def test_fixed_model_runs_one_trial_with_boolean_policies(ray_session, storage):
    result = tune_model(FixedProbe, DUMMY, DUMMY, {"MODEL_TRIAL_COUNT": 5},
                        storage_path=storage, name="fixed", progress=False)
    assert result.advisor.name == "FIXED"
    assert len(result.result_grid) == 1  # one trial although the budget allowed five
    assert result.best_knobs == {"depth": 3, "name": "tree", "early": False}
    assert result.best_score == 0.5
    # resume=True restores the finished experiment (Tuner.restore) instead of starting again
    again = tune_model(FixedProbe, DUMMY, DUMMY, {"MODEL_TRIAL_COUNT": 5},
                       storage_path=storage, name="fixed", progress=False, resume=True)
    assert [r.metrics["trial_id"] for r in again.result_grid] == [
        r.metrics["trial_id"] for r in result.result_grid]


def test_global_best_sharing_hands_a_better_trials_parameters_on(ray_session, storage):
    """The original never filled its GLOBAL_BEST cache (only ENAS trials cached parameters),
    so models always got ``shared_params=None``. Here every trial publishes; a trial told to
    take GLOBAL_BEST receives the parameters of the best trial finished before it. The last
    quarter of the trials (SharingProbe has an EARLY_STOP policy) are FINAL_TRAIN: the best
    search configurations again, from scratch."""
    result = tune_model(SharingProbe, DUMMY, DUMMY, {"MODEL_TRIAL_COUNT": 8}, seed=1,
                        storage_path=storage, name="share", max_concurrent_trials=1,
                        share_decay=50.0, k=8, progress=False)
    assert result.advisor.name == "BAYES_OPT_WITH_PARAM_SHARING"
    rows = []
    for res in result.result_grid:
        params = load_parameters(os.path.join(res.checkpoint.path, "params.npz"))
        # Tune names trial folders <trainable>_<id>_<number>_<config>: the creation order
        number = int(re.search(r"_[0-9a-f]{5,}_(\d+)_", os.path.basename(res.path)).group(1))
        rows.append((number, res.metrics, params))
    rows.sort(key=lambda r: r[0])
    assert [r[1]["phase"] for r in rows] == ["SEARCH"] * 6 + ["FINAL_TRAIN"] * 2
    search_x = sorted((r[1]["config"]["x"] for r in rows[:6]), reverse=True)
    for (_, m, params), x in zip(rows[6:], search_x):
        assert m["config"]["x"] == x and m["config"]["share"] is False  # best first
        assert m["params_type"] == "" and params["received"] == ""  # from scratch
    shared = 0
    for i, (_, m, params) in enumerate(rows):
        if m["params_type"] != "GLOBAL_BEST" or not m["shared_from"]:
            continue
        earlier = {r[1]["trial_id"]: r for r in rows[:i]}
        source = earlier[m["shared_from"]]
        # the source is the best of the trials finished before, and the model got its arrays
        assert source[1]["score"] == max(r[1]["score"] for r in earlier.values())
        assert m["shared_score"] == source[1]["score"]
        assert params["received"] == source[2]["origin"]
        assert np.allclose(params["w"], source[2]["w"] + m["config"]["x"])
        shared += 1
    assert shared >= 4  # decay 50: after the first trial nearly every search trial shares


def test_time_budget_stops_new_trials_then_running_ones(ray_session, storage):
    """3 s of budget, trials that train for 120 s: the first trial starts, no other does, and
    after the 2 s grace Tune stops it; the run ends long before the trial would have."""
    t0 = time.monotonic()
    result = tune_model(slow_probe(120.0), DUMMY, DUMMY, {"TIME_HOURS": 3 / 3600},
                        storage_path=storage, name="time", grace_period_s=2.0,
                        max_concurrent_trials=1, progress=False)
    wall = time.monotonic() - t0
    assert wall < 100  # the trial alone would take 120 s (worker start-up is counted too)
    assert len(result.result_grid) == 1
    assert result.best == []  # stopped before it reported: nothing to deploy


def test_checkpoint_outside_a_trial_does_nothing():
    m = EpochProbe(x=0.5, epochs=3, seconds=0.0)
    m.train(DUMMY)  # calls self.checkpoint(epoch=...) three times: no Tune session, no-op
    assert m.done == 3 and m.evaluate(DUMMY) == 0.003


@pytest.mark.slow  # ~35 s: the grace must outlast a worker's start on a loaded machine
def test_a_trial_stopped_at_the_time_limit_keeps_its_last_checkpoint(ray_session, storage):
    """4 s of budget plus 30 s of grace, a trial of 400 half-second epochs that calls
    checkpoint() after each: Tune stops it at its first report after the grace, and its last
    checkpoint (score and parameters) is in the table and deployable. (With 8 s of grace
    the trial's worker once started too late, under load, to report anything.)"""
    t0 = time.monotonic()
    result = tune_model(EpochProbe, DUMMY, DUMMY, {"TIME_HOURS": 4 / 3600},
                        storage_path=storage, name="partial", grace_period_s=30.0,
                        max_concurrent_trials=1, progress=False)
    wall = time.monotonic() - t0
    assert wall < 150  # the trial alone would take 200 s
    assert len(result.result_grid) == 1 and len(result.table) == 1
    row = result.table.iloc[0]
    assert bool(row["partial"]) is True and row["status"] == "OK"
    epochs = int(result.result_grid[0].metrics["epoch"])
    assert 1 <= epochs < 400 and row["score"] == epochs / 1000
    assert len(result.best) == 1 and result.best_score == epochs / 1000
    # the kept parameters are those of the last checkpoint, and deploy loads them
    assert int(load_parameters(result.best[0].params_path)["done"]) == epochs
    assert deploy(result, k=1).predict([0]) == [float(epochs)]


@pytest.mark.slow  # Optuna's import and its own trials: ~35 s on the shared 2 cores
def test_any_tune_searcher_and_scheduler(ray_session, storage, small_digits):
    from ray.tune.schedulers import FIFOScheduler
    from ray.tune.search.optuna import OptunaSearch

    train, val, _ = small_digits
    result = tune_model(example_model("SkDt"), train, val, {"MODEL_TRIAL_COUNT": 3},
                        search_alg=OptunaSearch(seed=0), scheduler=FIFOScheduler(),
                        storage_path=storage, name="optuna", progress=False)
    assert result.advisor.name == "CUSTOM" and "OptunaSearch" in result.advisor.reason
    assert len(result.result_grid) == 3
    assert all(1 <= r.config["max_depth"] <= 32 for r in result.result_grid)
    assert result.best_score > 0.3


def test_bad_arguments_fail_before_any_trial(ray_session):
    with pytest.raises(ValueError, match="MODEL_TRIAL_COUNT"):
        tune_model(FixedProbe, DUMMY, DUMMY, {"MODEL_TRIAL_COUNT": 0})
    with pytest.raises(TypeError, match="model_class"):
        tune_model("SkDt", DUMMY, DUMMY)
    with pytest.raises(ValueError, match="FIXED needs only"):
        tune_model(SharingProbe, DUMMY, DUMMY, advisor="FIXED")
