"""Hyperband: the scheduler contract plus Polyaxon's bracket plan and budget injection."""

from __future__ import annotations

from typing import ClassVar

import pytest

from rafiki_ray.schedulers import Hyperband
from rafiki_ray.schedulers.hyperband import bracket_table, s_max
from rafiki_ray.testing._driver import SimController, default_curve, drive
from rafiki_ray.testing.schedulers import SchedulerContract


def _bracket_records_kept(before, after):
    for b0, b1 in zip(before["sub"]["brackets"], after["sub"]["brackets"]):
        assert b0["tag"] == b1["tag"] and b0["members"] == b1["members"][: len(b0["members"])]
        for r0, r1 in zip(b0["records"], b1["records"]):
            assert {t: s for t, s in r0}.items() <= {t: s for t, s in r1}.items()
    assert after["sub"]["next"] >= before["sub"]["next"]


class TestHyperbandContract(SchedulerContract):
    pauses = True
    cost_in_default_run = True
    e2e_in_default_run = False  # ~60 s on 2 loaded cores; ASHA's runs by default
    scheduler_path = "rafiki_ray.schedulers:Hyperband"
    crash_kwargs: ClassVar[dict] = {"max_iter": 9, "eta": 3, "resume": True, "time_attr": "epoch",
                    "resource": {"name": "_resource", "type": "int"}}

    @pytest.fixture
    def scheduler_factory(self):
        def make(*, horizon=9, **kw):
            return Hyperband(max_iter=horizon, eta=3, resume=True,
                             resource={"name": "_resource", "type": "float"}, **kw)
        return make

    def check_restored_state(self, before, after, report):
        _bracket_records_kept(before, after)

    def check_end_to_end(self, grid):
        for r in grid:  # the budget reached the trainable through its config
            assert r.metrics["resource"] == r.metrics["epoch"], r.metrics


@pytest.mark.parametrize("max_iter,eta,expected", [
    (81, 3, 4), (243, 3, 5), (100, 3, 4), (1, 3, 0), (27.0, 3.0, 3), (1000, 10, 3), (64, 2, 6),
])
def test_s_max_is_exact(max_iter, eta, expected):
    assert s_max(max_iter, eta) == expected


def test_polyaxon_bracket_table_81_3():
    table = bracket_table(81, 3, int)
    assert [row["s"] for row in table] == [4, 3, 2, 1, 0]
    assert [row["n"] for row in table] == [81, 34, 15, 8, 5]
    assert [row["r"] for row in table] == [1, 3, 9, 27, 81]
    assert [row["sizes"] for row in table] == [
        [81, 27, 9, 3, 1], [34, 11, 3, 1], [15, 5, 1], [8, 2], [5]]
    assert [row["budgets"] for row in table] == [
        [1, 3, 9, 27, 81], [3, 9, 27, 81], [9, 27, 81], [27, 81], [81]]
    assert Hyperband(max_iter=81, eta=3).table == bracket_table(81, 3, float)


def test_int_resource_truncates_like_polyaxon():
    table = bracket_table(100, 3, int)
    assert table[0]["budgets"] == [1, 3, 11, 33, 100]


def test_brackets_open_in_polyaxon_order_and_halve_exactly():
    sched = Hyperband(metric="loss", mode="min", max_iter=9, eta=3, resume=True)
    log = drive(sched, n_trials=20, horizon=9, workers=3)
    state = sched.get_state()["sub"]
    assert [b["tag"] for b in state["brackets"]] == [2, 1, 0, 2]
    first = state["brackets"][0]
    assert first["entered"][:3] == [9, 3, 1]
    members = {t.trial_id: t for t in log.trials}
    for b in state["brackets"][:3]:
        for tid in b["members"]:
            trial = members[tid]
            i = trial.config["i"]
            # each trial stops exactly at the budget it was last given in its config
            assert log.steps[i] == trial.config["resource"], (b["tag"], i)
    assert sorted(members[t].config["resource"] for t in state["brackets"][1]["members"]) == [
        3, 3, 3, 3, 9]
    assert {members[t].config["resource"] for t in state["brackets"][2]["members"]} == {9}


def test_brackets_run_asynchronously():
    """Polyaxon: brackets progress independently. While bracket 0's first rung waits for one
    slow trial (its other members PAUSED there), the free workers start and run the trials of
    the next brackets instead of waiting for bracket 0: bracket 1 even finishes."""
    sched = Hyperband(metric="loss", mode="min", max_iter=9, eta=3, resume=True)
    ctrl = SimController(sched)
    curve = default_curve(0)
    events = []  # (trial index, step, every trial's status when it reported)

    def watched(i, k):
        events.append((i, k, {t.config["i"]: t.status for t in ctrl.trials}))
        return curve(i, k)

    log = drive(sched, watched, n_trials=20, horizon=9, workers=3, speeds={8: 40.0},
                controller=ctrl)
    assert all(s == "TERMINATED" for s in log.statuses.values()), log.statuses
    index = {t.trial_id: t.config["i"] for t in log.trials}
    b0, b1, b2 = sched.get_state()["sub"]["brackets"][:3]
    assert (b0["tag"], b1["tag"], b2["tag"]) == (2, 1, 0)
    first = [index[t] for t in b0["members"]]
    second = [index[t] for t in b1["members"]]
    assert first == list(range(9)) and second == list(range(9, 14))
    slow = events.index(next(e for e in events if e[:2] == (8, 1)))  # fills b0's rung 0
    early = [e for e in events[:slow] if e[0] in second]
    assert early, "no trial of bracket 1 ran before bracket 0's first rung was full"
    _, _, statuses = early[0]
    assert statuses[8] == "RUNNING"
    assert all(statuses[j] == "PAUSED" for j in first[:8]), statuses
    # bracket 1 halved and its winner trained to the top budget, all before bracket 0's
    # first rung was full; bracket 2's trials (budget 9) started too
    assert any(i in second and k == 9 for i, k, _ in events[:slow])
    assert {index[t] for t in b2["members"]} <= {i for i, _, _ in events[:slow]}
    assert sched.get_state()["sub"]["brackets"][0]["entered"][:3] == [9, 3, 1]


def test_resume_false_needs_no_checkpoint_and_drops_it():
    sched = Hyperband(metric="loss", mode="min", max_iter=9, eta=3, resume=False)
    log = drive(sched, n_trials=9, horizon=9, workers=2, checkpoint=False)
    assert max(log.steps.values()) == 9
    trial = log.trials[0]
    trial.run_metadata.checkpoint_manager._latest_checkpoint_result = object()
    sched._before_resume(trial)
    assert trial.latest_checkpoint_result is None


def test_polyaxon_arguments():
    h = Hyperband(max_iter=27, eta=3, resource={"name": "epochs", "type": "int"},
                  metric={"name": "acc", "optimization": "maximize"})
    assert h.get_state()["metric"] == "acc" and h.mode == "max"
    assert Hyperband(max_t=27, reduction_factor=3).table == h.table
    with pytest.raises(ValueError, match="resource.type"):
        Hyperband(resource={"name": "x", "type": "double"})
    with pytest.raises(ValueError, match="optimization"):
        Hyperband(metric={"name": "acc", "optimization": "up"})
    with pytest.raises(ValueError, match="eta"):
        Hyperband(eta=1)
    with pytest.raises(ValueError, match="together"):
        Hyperband(max_iter=9, max_t=9)


def _budgeted_trainable(config):
    """Polyaxon style: no checkpoints; trains from scratch with the budget in its config."""
    from ray import tune

    for i in range(1, 10):
        tune.report({"loss": config["x"] + 1.0 / i, "budget": config["iters"]})


@pytest.mark.slow
def test_real_tune_resume_false_restarts_with_the_new_budget(ray_session, storage):
    from ray import tune

    sched = Hyperband(max_iter=9, eta=3, resource={"name": "iters", "type": "int"},
                      metric={"name": "loss", "optimization": "minimize"}, resume=False)
    grid = tune.Tuner(
        _budgeted_trainable,
        param_space={"x": tune.grid_search([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])},
        tune_config=tune.TuneConfig(scheduler=sched, max_concurrent_trials=2,
                                    reuse_actors=True),
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    ).fit()
    assert grid.num_errors == 0
    best = grid.get_best_result(metric="loss", mode="min")
    assert best.config["x"] == 0.1 and best.metrics["training_iteration"] == 9
    for r in grid:
        # every stage restarted from scratch and ran exactly its budget
        assert r.metrics["training_iteration"] == r.metrics["budget"]
        its = list(r.metrics_dataframe["training_iteration"])
        assert its.count(1) == {1: 1, 3: 2, 9: 3}[int(r.metrics["budget"])], its
