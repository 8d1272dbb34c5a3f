"""MedianStopping: the SchedulerContract plus NNI Medianstop's exact semantics."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from rafiki_ray.schedulers import MedianStopping
from rafiki_ray.testing._driver import SimController
from rafiki_ray.testing.schedulers import (
    SchedulerContract,
    restored_histories,
)

CONTINUE, STOP = TrialScheduler.CONTINUE, TrialScheduler.STOP


class TestMedianStoppingContract(SchedulerContract):
    pauses = False
    scheduler_path = "rafiki_ray.schedulers:MedianStopping"
    crash_kwargs: ClassVar[dict] = {"start_step": 2}
    cost_full_history = True

    @pytest.fixture
    def scheduler_factory(self):
        def make(*, horizon=9, **kw):
            return MedianStopping(start_step=2, **kw)

        return make

    # the best first: 0.1 and 0.01 start once 1.0 or 0.3 has completed, and at start_step
    # (2) their best loss (0.640, 0.656) is above every completed trial's running average
    # (0.557 for lr 1.0, 0.625 for 0.3; losses of torch_trainable, seed 0)
    e2e_lrs = (1.0, 0.3, 0.1, 0.01)

    def check_end_to_end(self, grid):
        ended = {r.config["lr"]: int(r.metrics["epoch"]) for r in grid}
        assert ended[0.1] == ended[0.01] == 2, ended  # stopped at their first judgement
        assert ended[1.0] == 9, ended

    def check_restored_state(self, before, after, report):
        results, kill, end = restored_histories(report, self.scheduler_path, self.crash_kwargs,
                                                after)
        # every trial either completed (its averages enter the medians) or was stopped
        assert set(end["completed"]) | set(end["stopped"]) == set(report["trials"])
        assert not set(end["completed"]) & set(end["stopped"])
        for tid, avgs in kill["completed"].items():  # completed before the kill: kept
            assert end["completed"][tid] == pytest.approx(avgs)
        for tid, avgs in end["completed"].items():  # whole histories, across the restore
            last: dict[int, float] = {}
            for k, _, v in results[tid]:
                last[k] = v  # a replayed result replaces the first report
            losses = [last[k] for k in sorted(last)]
            assert sorted(last) == list(range(1, len(losses) + 1))
            assert len(avgs) == len(losses) == report["trials"][tid]["last"]["training_iteration"]
            expected = np.cumsum([-v for v in losses]) / np.arange(1, len(losses) + 1)
            assert avgs == pytest.approx(list(expected), rel=1e-6), (tid, avgs, losses)


# ---------------------------------------------------------------------- hand driving helpers
class Hand:
    """Feed histories to a scheduler by hand, as Tune would (stub trials, real hooks)."""

    def __init__(self, sched: MedianStopping) -> None:
        self.s = sched
        self.ctrl = SimController(sched)
        self.trials: dict[str, Trial] = {}
        self.steps: dict[str, int] = {}

    def trial(self, name: str) -> Trial:
        if name not in self.trials:
            t = Trial("__fake", config={"i": name}, stub=True)
            self.trials[name] = t
            self.ctrl.add_trial(t)
            t.set_status(Trial.RUNNING)
        return self.trials[name]

    def report(self, name: str, values: list[float], metric: str = "acc") -> list[str]:
        t = self.trial(name)
        out = []
        for v in values:
            self.steps[name] = k = self.steps.get(name, 0) + 1
            out.append(self.s.on_trial_result(self.ctrl, t, {metric: v, "training_iteration": k}))
        return out

    def complete(self, name: str, values: list[float], metric: str = "acc") -> None:
        self.report(name, values, metric)
        t = self.trials[name]
        self.s.on_trial_complete(self.ctrl, t, {metric: values[-1]})
        t.set_status(Trial.TERMINATED)


def _nni_reference(mode: str, start_step: int, completed: list[list[float]], history: list[float]):
    """NNI's MedianstopAssessor.assess_trial, re-stated from the reference (formats.md §2)."""
    step = len(history)
    if step < start_step:
        return CONTINUE
    avgs = []
    for h in completed:
        if len(h) >= step:
            avgs.append(float(np.mean(h[:step])))
    if not avgs:
        return CONTINUE
    avgs.sort()
    if mode == "max":
        best, median = max(history), avgs[(len(avgs) - 1) // 2]
        return STOP if best < median else CONTINUE
    best, median = min(history), avgs[len(avgs) // 2]
    return STOP if best > median else CONTINUE


@pytest.mark.parametrize("mode", ["max", "min"])
@pytest.mark.parametrize("start_step", [0, 3])
def test_matches_nni_reference_on_random_histories(mode, start_step):
    rng = np.random.default_rng(7)
    for rep in range(30):
        n_done = int(rng.integers(0, 7))
        completed = [list(rng.normal(0, 1, int(rng.integers(1, 8)))) for _ in range(n_done)]
        hand = Hand(MedianStopping(metric="acc", mode=mode, start_step=start_step))
        for i, h in enumerate(completed):
            hand.complete(f"c{i}", h)
            # completed trials are judged too; only those never stopped count, so the
            # reference must see the same set
        counted = [h for i, h in enumerate(completed)
                   if hand.trials[f"c{i}"].trial_id in hand.s._avgs]
        history = list(rng.normal(0, 1, int(rng.integers(1, 8))))
        got = None
        for k in range(1, len(history) + 1):
            got = hand.report("x", [history[k - 1]])[0]
            assert got == _nni_reference(mode, start_step, counted, history[:k]), (rep, k)
            if got == STOP:
                break


@pytest.mark.parametrize("mode,expected", [("max", STOP), ("min", CONTINUE)])
def test_lower_median_for_max_upper_for_min(mode, expected):
    # four completed trials with step-1 averages 1, 2, 3, 4: lower median 2, upper median 3
    # (fed best-last so that none of them is stopped on its way to completion)
    order = [1.0, 2.0, 3.0, 4.0] if mode == "max" else [4.0, 3.0, 2.0, 1.0]
    hand = Hand(MedianStopping(metric="acc", mode=mode))
    for i, v in enumerate(order):
        hand.complete(f"c{i}", [v])
    assert len(hand.s._avgs) == 4
    # best 1.5 < lower median 2 -> stop (max); best 2.5 < upper median 3 -> continue (min)
    value = 1.5 if mode == "max" else 2.5
    assert hand.report("x", [value]) == [expected]
    # and the opposite side of the respective median
    hand2 = Hand(MedianStopping(metric="acc", mode=mode))
    for i, v in enumerate(order):
        hand2.complete(f"c{i}", [v])
    assert hand2.report("y", [2.5 if mode == "max" else 3.5]) == [
        CONTINUE if mode == "max" else STOP]


def test_start_step_and_no_comparable_trials():
    hand = Hand(MedianStopping(metric="acc", mode="max", start_step=3))
    hand.complete("good", [5.0, 5.0, 5.0])
    # steps 1, 2 are below start_step even though the trial is far worse
    assert hand.report("bad", [0.0, 0.0]) == [CONTINUE, CONTINUE]
    assert hand.report("bad", [0.0]) == [STOP]
    # step 4: no completed trial has 4 points -> continue, however bad
    hand2 = Hand(MedianStopping(metric="acc", mode="max"))
    hand2.complete("good", [5.0, 5.0, 5.0])
    assert hand2.report("long", [9.0, 9.0, 9.0, -100.0]) == [CONTINUE] * 4
    # nothing completed yet: continue
    assert Hand(MedianStopping(metric="acc", mode="max")).report("z", [-1e9]) == [CONTINUE]


def test_best_so_far_against_running_average():
    hand = Hand(MedianStopping(metric="acc", mode="max"))
    hand.complete("c", [0.0, 10.0, 10.0])  # running averages 0, 5, 6.67
    # the trial's BEST so far (8) is compared with the average at the same step (5 at step 2)
    assert hand.report("x", [8.0, 1.0]) == [CONTINUE, CONTINUE]
    assert hand.report("x", [6.0]) == [CONTINUE]  # best 8 >= 6.67
    hand.report("y", [1.0])
    assert hand.report("y", [4.0]) == [STOP]  # best 4 < 5


def test_only_successful_completions_count():
    hand = Hand(MedianStopping(metric="acc", mode="max"))
    hand.complete("ok", [1.0, 1.0])
    assert hand.report("stopped", [0.0]) == [STOP]
    hand.s.on_trial_complete(hand.ctrl, hand.trials["stopped"], {"acc": 0.0})  # Tune's follow-up
    err = hand.trial("err")
    hand.report("err", [50.0])
    hand.s.on_trial_error(hand.ctrl, err)
    assert list(hand.s._avgs) == [hand.trials["ok"].trial_id]
    # a trial at 0.5 is compared with the single successful trial (1.0), not with 0 or 50
    assert hand.report("x", [0.5]) == [STOP]


def test_nan_is_ignored_and_inf_does_not_crash():
    hand = Hand(MedianStopping(metric="acc", mode="max"))
    hand.complete("c", [1.0, 1.0])
    hand.complete("inf", [math.inf, -math.inf])  # average at step 2 is NaN: left out
    assert len(hand.s._avgs) == 2 and hand.s._by_step[1] == [1.0]
    assert hand.report("x", [math.nan, math.nan]) == [CONTINUE, CONTINUE]
    assert hand.report("x", [2.0]) == [CONTINUE]  # step 1: median of (1, inf) lower = 1
    assert hand.report("x", [0.5]) == [CONTINUE]  # step 2: only 1.0 -> best 2 >= 1


def test_nni_aliases_and_bad_arguments():
    s = MedianStopping.from_args({"optimize_mode": "minimize", "start_step": 4}, metric="loss")
    assert s.mode == "min" and s.start_step == 4 and s.metric == "loss"
    with pytest.raises(ValueError, match="optimize_mod"):
        MedianStopping.from_args({"optimize_mod": "maximize"})
    with pytest.raises(ValueError, match="start_step: must be an int >= 0, got -1"):
        MedianStopping(start_step=-1)
    with pytest.raises(TypeError, match="start_step"):
        MedianStopping(start_step=1.5)


def test_replayed_results_after_restore_truncate_history():
    hand = Hand(MedianStopping(metric="acc", mode="max"))
    t = hand.trial("x")
    for k, v in enumerate([1.0, 2.0, 3.0], 1):
        hand.s.on_trial_result(hand.ctrl, t, {"acc": v, "training_iteration": k})
    # resumed from a checkpoint at iteration 1: iteration 2 is reported again
    hand.s.on_trial_result(hand.ctrl, t, {"acc": 0.5, "training_iteration": 2})
    assert hand.s._hist[t.trial_id] == [1.0, 0.5]
    assert hand.s._best[t.trial_id] == 1.0


def test_state_keeps_medians(tmp_path):
    hand = Hand(MedianStopping(metric="acc", mode="max", start_step=1))
    for i, v in enumerate([1.0, 2.0, 3.0]):
        hand.complete(f"c{i}", [v, v])
    hand.report("run", [0.1])
    path = str(tmp_path / "ms.pkl")
    hand.s.save(path)
    other = MedianStopping()
    other.restore(path)
    assert other._by_step == hand.s._by_step and other.start_step == 1
    assert other._hist == hand.s._hist
    assert other._judge(2, 1.5) == STOP and other._judge(2, 2.5) == CONTINUE


@pytest.mark.slow
def test_decision_cost_large():
    """1,000 trials x 100 results: mean and max decision cost."""
    import time

    s = MedianStopping(metric="acc", mode="max")
    ctrl = SimController(s)
    rng = np.random.default_rng(0)
    times = []
    for i in range(1000):
        t = Trial("__fake", config={"i": i}, stub=True)
        ctrl.add_trial(t)
        t.set_status(Trial.RUNNING)
        level = rng.uniform(0, 1)
        for k in range(1, 101):
            t0 = time.perf_counter()
            d = s.on_trial_result(ctrl, t, {"acc": level * (1 - 1 / (k + 1)), "training_iteration": k})
            times.append(time.perf_counter() - t0)
            if d == STOP:
                break
        s.on_trial_complete(ctrl, t, {})
    assert np.mean(times) < 1e-3 and np.percentile(times, 99) < 1e-3


def test_every_result_survives_a_restore_between_full_writes(ray_session, tmp_path):
    """Results after the last (throttled) full write are on disk too, so a scheduler restored
    from the experiment folder has whole histories: the crash test found a trial's iterations
    3 and 4 missing after ``Tuner.restore`` (its history then held 7 of its 9 results)."""
    import os

    from ray.train._internal.storage import StorageContext

    from rafiki_ray.schedulers._base import JOURNAL_FILE

    ctx = StorageContext(storage_path=str(tmp_path), experiment_dir_name="exp",
                         trial_dir_name="t")
    first = MedianStopping(metric="acc", mode="max", start_step=1)
    first.persist_interval_s = 3600.0  # after the first one, journal lines only
    hand = Hand(first)
    for name in ("a", "b", "c"):
        hand.trials[name] = t = Trial("__fake", config={"i": name}, stub=True, storage=ctx,
                                      trial_id=f"abcde_{len(hand.trials):05d}")
        hand.ctrl.add_trial(t)
        t.set_status(Trial.RUNNING)
    hand.complete("a", [1.0, 2.0, 3.0])  # a completion is a journal line
    assert hand.report("c", [0.5]) == [STOP]  # so is a stop
    assert hand.report("b", [4.0, 5.0, 6.0, 7.0, math.inf]) == [CONTINUE] * 5  # journaled

    restored = MedianStopping(metric="acc", mode="max", start_step=1)
    restored.on_trial_add(SimController(restored), hand.trials["b"])
    assert restored.get_state() == first.get_state()
    assert restored._hist[hand.trials["b"].trial_id] == [4.0, 5.0, 6.0, 7.0, math.inf]
    assert restored._best == first._best
    assert os.path.exists(os.path.join(ctx.experiment_driver_staging_path, JOURNAL_FILE))
    # a result replayed by Tune (from a checkpoint at iteration 2) cuts the restored history
    t = hand.trials["b"]
    t.set_status(Trial.RUNNING)
    restored.on_trial_result(SimController(restored), t, {"acc": 9.0, "training_iteration": 3})
    assert restored._hist[t.trial_id] == [4.0, 5.0, 9.0]

    # a new run under the same name ignores (and drops) the old run's state and journal
    fresh = MedianStopping(metric="acc", mode="max")
    fresh.on_trial_add(SimController(fresh), Trial("__fake", config={"i": 9}, stub=True,
                                                   storage=ctx, trial_id="fffff_00000"))
    assert fresh._hist == {} and fresh._avgs == {}
    assert not os.path.exists(os.path.join(ctx.experiment_driver_staging_path, JOURNAL_FILE))
