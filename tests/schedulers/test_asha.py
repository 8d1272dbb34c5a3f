"""ASHA: the scheduler contract (both variants) plus Algorithm 2's promotion order."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from rafiki_ray.schedulers import ASHA
from rafiki_ray.testing._driver import SimController, drive
from rafiki_ray.testing.schedulers import SchedulerContract


def _rungs_kept(before, after):
    """Every score recorded and every promotion made before the crash survives the restore."""
    for rb, ra in zip(before["sub"]["rungs"], after["sub"]["rungs"]):
        for g0, g1 in zip(rb, ra):
            s0 = {t: s for t, s, _ in g0["scores"]}
            s1 = {t: s for t, s, _ in g1["scores"]}
            assert s0.items() <= s1.items()
            assert set(g0["promoted"]) <= set(g1["promoted"])


class TestASHAContract(SchedulerContract):
    pauses = True
    cost_in_default_run = True
    scheduler_path = "rafiki_ray.schedulers:ASHA"
    cost_full_history = True
    crash_kwargs: ClassVar[dict] = {"max_t": 9, "grace_period": 1, "reduction_factor": 3, "time_attr": "epoch"}

    @pytest.fixture
    def scheduler_factory(self):
        def make(*, horizon=9, **kw):
            return ASHA(max_t=horizon, grace_period=horizon / 9, reduction_factor=3, **kw)
        return make

    def check_restored_state(self, before, after, report):
        _rungs_kept(before, after)


class TestASHAStopContract(SchedulerContract):
    pauses = False
    cost_in_default_run = True
    e2e_in_default_run = False  # the pausing variant's run covers the default run
    scheduler_path = "rafiki_ray.schedulers:ASHA"
    cost_full_history = True
    crash_kwargs: ClassVar[dict] = {"max_t": 9, "grace_period": 1, "reduction_factor": 3, "time_attr": "epoch",
                    "promotion": "stop"}

    @pytest.fixture
    def scheduler_factory(self):
        def make(*, horizon=9, **kw):
            return ASHA(max_t=horizon, grace_period=horizon / 9, reduction_factor=3,
                        promotion="stop", **kw)
        return make


def _constant(values):
    return lambda i, t: values[i]


def test_promotion_order_follows_algorithm_2():
    """One worker, constant losses: the hand-traced order of Li et al.'s Algorithm 2."""
    losses = [0.5, 0.9, 0.1, 0.8, 0.7, 0.3, 0.2]
    sched = ASHA(metric="loss", mode="min", max_t=9, grace_period=1, reduction_factor=3)
    log = drive(sched, _constant(losses), n_trials=7, horizon=9, workers=1)
    # t2 is promoted in place at rung 0; t5, t6 too; t6 reaching rung 1 frees the worker for
    # the best paused trial of the highest rung with one in its top 1/eta: t2 (rung 1).
    assert log.starts == [0, 1, 2, 3, 4, 5, 6, 2]
    assert [(i, t, d) for i, t, d in log.decisions if i == 2] == [
        (2, 1, "CONTINUE"), (2, 2, "CONTINUE"), (2, 3, "PAUSE")] + [
        (2, t, "CONTINUE") for t in range(4, 9)] + [(2, 9, "STOP")]
    assert log.steps == {0: 1, 1: 1, 2: 9, 3: 1, 4: 1, 5: 3, 6: 3}
    assert set(log.statuses.values()) == {"TERMINATED"}


@pytest.mark.parametrize("workers", [1, 4])
def test_rung_sizes_when_every_new_trial_is_worse(workers):
    """Arrivals in order of quality: exactly floor(n/eta) promotions per rung (+1 in the drain)."""
    sched = ASHA(metric="loss", mode="min", max_t=27, grace_period=1, reduction_factor=3)
    log = drive(sched, lambda i, t: i + 1.0 / t, n_trials=60, horizon=27, workers=workers)
    rows = sched.rungs()
    assert [r["recorded"] for r in rows] == [60, 20, 7, 3]
    assert [r["promoted"] for r in rows[:-1]] == [20, 7, 3]
    assert sorted(i for i, s in log.steps.items() if s == 27) == [0, 1, 2]


def test_stop_variant_matches_rays_asha_scheduler():
    from ray.tune.schedulers import ASHAScheduler

    kw = {"metric": "loss", "mode": "min", "max_t": 9, "grace_period": 1,
          "reduction_factor": 3}
    ours = drive(ASHA(promotion="stop", **kw), n_trials=40, horizon=9, workers=4)
    ray_log = drive(ASHAScheduler(time_attr="training_iteration", **kw),
                    n_trials=40, horizon=9, workers=4)
    assert ours.decisions == ray_log.decisions
    assert "STOP" in {d for _, t, d in ours.decisions if t < 9}


def test_stop_variant_with_brackets_matches_rays_asha_scheduler():
    """Brackets as Ray's: the same rungs per bracket, the same bracket weights, and, given
    the same bracket for each trial (Ray draws it from the global ``np.random``, we from the
    scheduler's own generator), the same decisions."""
    from ray.tune.schedulers import ASHAScheduler

    kw = {"metric": "loss", "mode": "min", "max_t": 27, "grace_period": 1,
          "reduction_factor": 3}
    ours = ASHA(promotion="stop", brackets=3, seed=4, **kw)
    ctrl = SimController(ours)
    ours_log = drive(ours, n_trials=60, horizon=27, workers=4, controller=ctrl)
    index = {t.trial_id: t.config["i"] for t in ctrl.trials}  # trial ids differ between runs
    bracket_of = {index[t]: b for t, b in ours.get_state()["sub"]["bracket_of"].items()}
    assert len(set(bracket_of.values())) == 3

    class SameBrackets(ASHAScheduler):
        def on_trial_add(self, tune_controller, trial):
            super().on_trial_add(tune_controller, trial)  # Ray's checks and its own draw
            self._trial_info[trial.trial_id] = self._brackets[bracket_of[trial.config["i"]]]

    ray = SameBrackets(time_attr="training_iteration", brackets=3, **kw)
    assert [sorted(m) for m in ours._milestones] == [
        sorted(t for t, _ in b._rungs) for b in ray._brackets]
    sizes = np.array([len(b._rungs) for b in ray._brackets])
    np.testing.assert_allclose(ours._bracket_probs, np.exp(sizes) / np.exp(sizes).sum())
    ray_log = drive(ray, n_trials=60, horizon=27, workers=4)
    assert ours_log.decisions == ray_log.decisions
    stops = {b: 0 for b in range(3)}
    for i, _, d in ours_log.decisions:
        stops[bracket_of[i]] += d == "STOP"
    assert all(stops.values()), stops  # every bracket made decisions of its own


def test_brackets_use_the_seeded_generator():
    def run(seed):
        s = ASHA(metric="loss", mode="min", max_t=27, grace_period=1, reduction_factor=3,
                 brackets=3, seed=seed)
        drive(s, n_trials=30, horizon=27, workers=3)
        return dict(s.get_state()["sub"]["bracket_of"].items())

    a, b = run(1), run(1)
    assert list(a.values()) == list(b.values())
    assert len(set(a.values())) > 1


def test_aliases_and_validation():
    a = ASHA(min_resource=1, max_resource=9, eta=3, metric="m", mode="max")
    b = ASHA(grace_period=1, max_t=9, reduction_factor=3, metric="m", mode="max")
    assert a.get_state()["sub"]["milestones"] == b.get_state()["sub"]["milestones"] == [[1, 3, 9]]
    with pytest.raises(ValueError, match="together"):
        ASHA(grace_period=1, min_resource=1)
    with pytest.raises(ValueError, match="promotion"):
        ASHA(promotion="halt")
    with pytest.raises(ValueError, match="grace_period"):
        ASHA(grace_period=10, max_t=9)
    with pytest.raises(ValueError, match="reduction_factor"):
        ASHA(reduction_factor=1)
    with pytest.raises(TypeError, match=r"ASHA.grace: is not an argument \(known: .*min_resource"):
        ASHA(grace=1)


def _no_checkpoint_trainable(config):
    from ray import tune

    for i in range(9):
        tune.report({"loss": config["x"] + 1.0 / (i + 1)})


def test_real_tune_run_without_checkpoints_fails_clearly(ray_session, storage):
    from ray import tune
    from ray.tune.error import TuneError

    tuner = tune.Tuner(
        _no_checkpoint_trainable,
        param_space={"x": tune.grid_search([0.1, 0.2, 0.3, 0.4])},
        tune_config=tune.TuneConfig(
            scheduler=ASHA(metric="loss", mode="min", max_t=9, grace_period=1,
                           reduction_factor=3),
            reuse_actors=True),
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    )
    with pytest.raises(TuneError, match=r"never reported a checkpoint.*tune\.report"):
        tuner.fit()


@pytest.mark.slow
@pytest.mark.parametrize("limit", [1, 2])
def test_with_tunes_own_searcher_and_a_concurrency_limit(ray_session, storage, limit):
    """HyperOptSearch behind max_concurrent_trials: paused trials free their slot and take one
    back when promoted.

    The first two trials always pause at rung 1 (``floor(n / 3) == 0``), so the other six
    could not start unless a pause released its slot. Whether a later promotion resumes a
    paused trial or continues the trial that just reported depends, with two slots, on the
    order in which the two running trials report; with one slot that order is fixed, and the
    third trial's report (worse than the second's) promotes the paused second trial.
    """
    from ray import tune
    from ray.tune.search.hyperopt import HyperOptSearch

    from rafiki_ray.testing.schedulers import torch_trainable

    grid = tune.Tuner(
        torch_trainable,
        param_space={"lr": tune.loguniform(1e-3, 1.0), "horizon": 9},
        tune_config=tune.TuneConfig(
            metric="loss", mode="min", num_samples=8, max_concurrent_trials=limit,
            search_alg=HyperOptSearch(random_state_seed=0),
            scheduler=ASHA(max_t=9, grace_period=1, reduction_factor=3), reuse_actors=True),
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    ).fit()
    assert grid.num_errors == 0 and len(grid) == 8
    assert max(r.metrics["epoch"] for r in grid) == 9
    for r in grid:  # every resume continued from the checkpoint, none restarted from scratch
        epochs = list(r.metrics_dataframe["epoch"])
        assert epochs == list(range(1, len(epochs) + 1)), epochs
    ended = sorted(r.metrics["epoch"] for r in grid)
    assert ended[:2] == [1, 1]  # paused at the first rung and never promoted
    if limit == 1:
        assert any(r.metrics["start"] > 0 for r in grid)  # a paused trial resumed


def test_state_is_persisted_in_the_experiment_folder_and_restored(ray_session, tmp_path):
    """What a restored driver sees: the file in Tune's experiment folder, found via a trial."""
    import os

    from ray.train._internal.storage import StorageContext
    from ray.tune.experiment import Trial

    from rafiki_ray.schedulers._base import STATE_FILE
    from rafiki_ray.testing._driver import SimController

    ctx = StorageContext(storage_path=str(tmp_path), experiment_dir_name="exp",
                         trial_dir_name="t")
    trials = [Trial("__fake", config={"i": i}, stub=True, storage=ctx,
                    trial_id=f"abcde_{i:05d}") for i in range(4)]
    kw = {"metric": "loss", "mode": "min", "max_t": 9, "grace_period": 1,
          "reduction_factor": 3}
    first = ASHA(**kw)
    ctrl = SimController(first)
    for t in trials[:3]:
        ctrl.add_trial(t)
        t.set_status(Trial.RUNNING)
        decision = first.on_trial_result(ctrl, t, {"loss": 1.0 + t.config["i"],
                                                   "training_iteration": 1,
                                                   "should_checkpoint": True})
        assert decision == "PAUSE"
    assert first.state_path == os.path.join(ctx.experiment_driver_staging_path, STATE_FILE)
    assert os.path.exists(first.state_path)

    # a fresh scheduler (as unpickled by Tuner.restore) finds it through any trial of the run,
    # even one created after the last write
    for probe in (trials[1], trials[3]):
        restored = ASHA(**kw)
        restored.on_trial_add(SimController(restored), probe)
        assert restored.get_state()["sub"]["rungs"] == first.get_state()["sub"]["rungs"]
    # a file left by another run under the same name is ignored
    other = ASHA(**kw)
    other.on_trial_add(SimController(other), Trial("__fake", config={"i": 9}, stub=True,
                                                   storage=ctx, trial_id="fffff_00000"))
    assert other.get_state()["sub"]["rungs"][0][0]["scores"] == []
