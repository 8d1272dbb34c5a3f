"""CurveFitting: the SchedulerContract, NNI Curvefitting semantics and curve recovery."""

from __future__ import annotations

import math
import time
from typing import ClassVar

import numpy as np
import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from rafiki_ray.schedulers import CurveFitting
from rafiki_ray.schedulers._curves import CURVES, fit_curves, predict
from rafiki_ray.testing._driver import SimController, drive
from rafiki_ray.testing.schedulers import (
    SchedulerContract,
    restored_histories,
)

CONTINUE, STOP = TrialScheduler.CONTINUE, TrialScheduler.STOP


class TestCurveFittingContract(SchedulerContract):
    pauses = False
    scheduler_path = "rafiki_ray.schedulers:CurveFitting"
    crash_kwargs: ClassVar[dict] = {"epoch_num": 9, "start_step": 3}
    cost_full_history = True

    @pytest.fixture
    def scheduler_factory(self):
        def make(*, horizon=9, **kw):
            return CurveFitting(epoch_num=horizon, start_step=3, **kw)

        return make

    # the best first: 0.1 and 0.01 start once 1.0 or 0.3 has completed (final loss 0.14 or
    # 0.40); their curves converge to about 0.57 and 0.65 and are stopped as soon as the
    # ensemble gives a prediction (at epoch 8 of 9: fewer than 4 curves agree before)
    e2e_lrs = (1.0, 0.3, 0.1, 0.01)

    def check_end_to_end(self, grid):
        ended = {r.config["lr"]: int(r.metrics["epoch"]) for r in grid}
        assert ended[0.1] < 9 and ended[0.01] < 9, ended
        assert ended[1.0] == 9, ended

    def check_restored_state(self, before, after, report):
        _, kill, end = restored_histories(report, self.scheduler_path, self.crash_kwargs, after)
        assert end["judged"] == {}
        assert set(end["finals"]) | set(end["stopped"]) == set(report["trials"])
        assert not set(end["finals"]) & set(end["stopped"])
        for tid, final in kill["finals"].items():  # completed before the kill: kept
            assert end["finals"][tid] == pytest.approx(final)
        for tid, final in end["finals"].items():  # a completion's final is its last result
            last = report["trials"][tid]["last"]
            assert final == pytest.approx(-last["loss"]) and last["epoch"] == 9

    # The issue's criterion for CurveFitting is "at most 1 ms per decision ON AVERAGE over an
    # experiment" (a judgement fits 12 curves and costs more than the many decisions that need
    # none). Measured as CPU time of this process (an upper bound: it includes the driver),
    # because wall time on the shared 2-core machine is inflated up to 10x by other processes.
    @staticmethod
    def _cpu_per_decision(sched, **kw) -> float:
        c0 = time.process_time()
        log = drive(sched, **kw)
        return (time.process_time() - c0) / (len(log.result_times) + len(log.choose_times))

    @pytest.mark.slow
    def test_decisions_are_cheap(self, scheduler_factory):
        """1,000 trials x up to 100 results: at most 1 ms per decision on average."""
        per = self._cpu_per_decision(
            scheduler_factory(metric="loss", mode="min", seed=0, horizon=100),
            n_trials=1000, horizon=100, workers=16)
        assert per <= 1e-3, f"mean decision {1e3 * per:.3f} ms (CPU)"

    def check_cost(self, log, cpu_s, what):
        """The full-history case's bound, as above: mean CPU time per decision."""
        per = cpu_s / (len(log.result_times) + len(log.choose_times))
        assert per <= 1e-3, f"{what}: mean decision {1e3 * per:.3f} ms (CPU)"

    def test_decisions_are_cheap_small(self, scheduler_factory):
        """Default-run proxy: 200 trials x up to 30 results, mean CPU time per decision."""
        per = self._cpu_per_decision(
            scheduler_factory(metric="loss", mode="min", seed=0, horizon=30),
            n_trials=200, horizon=30, workers=8)
        assert per <= 1e-3, f"mean decision {1e3 * per:.3f} ms (CPU)"


# ------------------------------------------------------------------------------ helpers
X = np.arange(1, 101, dtype=float)
SHAPES = {
    "pow": 0.9 - 0.6 * X**-0.7,
    "exp": 0.6 - 0.5 * np.exp(-0.3 * X),
    "mmf": 0.85 - 0.7 / (1 + (0.2 * X) ** 1.5),
}


class Hand:
    def __init__(self, sched: CurveFitting) -> None:
        self.s = sched
        self.ctrl = SimController(sched)
        self.trials: dict[str, Trial] = {}
        self.steps: dict[str, int] = {}

    def report(self, name: str, values, metric: str = "acc") -> list[str]:
        if name not in self.trials:
            t = Trial("__fake", config={"i": name}, stub=True)
            self.trials[name] = t
            self.ctrl.add_trial(t)
            t.set_status(Trial.RUNNING)
        out = []
        for v in values:
            self.steps[name] = k = self.steps.get(name, 0) + 1
            out.append(self.s.on_trial_result(self.ctrl, self.trials[name],
                                              {metric: float(v), "training_iteration": k}))
        return out

    def complete(self, name: str, values, metric: str = "acc") -> None:
        self.report(name, values, metric)
        self.s.on_trial_complete(self.ctrl, self.trials[name], {})


def _noisy(curve: np.ndarray, seed: int = 0, sd: float = 0.003) -> np.ndarray:
    return curve + np.random.default_rng(seed).normal(0, sd, len(curve))


# ------------------------------------------------------------------------------ curves
def test_twelve_families():
    assert len(CURVES) == 12
    fits = fit_curves(SHAPES["pow"][:30], 100)
    assert len(fits) == 12  # every family fits a positive rising curve
    for vals, at in fits.values():
        assert vals.shape == (30,) and math.isfinite(at)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_curve_recovery_on_synthetic_curves(shape):
    y = _noisy(SHAPES[shape])
    pred = predict(y[:40], 100, np.random.default_rng(0))
    assert pred.value is not None and len(pred.curves) >= 4
    assert pred.value == pytest.approx(SHAPES[shape][-1], rel=0.03)


def test_unconverged_curve_gives_no_judgement():
    # a curve still rising steeply: NNI's convergence filter leaves < 4 curves -> None
    y = _noisy(0.9 - 0.8 * np.exp(-0.02 * X), sd=0.001)
    assert predict(y[:8], 100, np.random.default_rng(0)).value is None


def test_prediction_is_a_pure_function_of_history_and_rng():
    y = _noisy(SHAPES["exp"])[:30]
    a = predict(y, 100, np.random.default_rng(5)).value
    predict(_noisy(SHAPES["pow"], 3)[:50], 100, np.random.default_rng(9))  # unrelated fit
    assert predict(y, 100, np.random.default_rng(5)).value == a


# ------------------------------------------------------------------------------ decisions
def test_no_completed_trial_means_no_judgement():
    hand = Hand(CurveFitting(seed=0, metric="acc", mode="max", epoch_num=100))
    assert set(hand.report("x", _noisy(SHAPES["exp"])[:50] * 0.1)) == {CONTINUE}
    assert hand.s.n_judgements == 0


@pytest.mark.parametrize("start_step,gap", [(6, 1), (10, 5)])
def test_start_step_and_gap(start_step, gap):
    hand = Hand(CurveFitting(seed=0, metric="acc", mode="max", epoch_num=100, start_step=start_step,
                             gap=gap))
    hand.complete("best", SHAPES["pow"])
    hand.report("x", np.full(start_step - 1, 0.9))
    assert hand.s.n_judgements == 0
    hand.report("x", np.full(3 * gap, 0.9))
    assert hand.s.n_judgements == 3  # at start_step, start_step + gap, start_step + 2 gap
    assert hand.s._judged[hand.trials["x"].trial_id] == start_step + 2 * gap


@pytest.mark.parametrize("mode", ["max", "min"])
def test_stops_converged_bad_curves_keeps_good_ones(mode):
    sign = 1.0 if mode == "max" else -1.0
    hand = Hand(CurveFitting(metric="m", mode=mode, epoch_num=100, seed=0))
    hand.complete("best", sign * _noisy(SHAPES["pow"]), metric="m")  # best final ~0.876
    bad = sign * _noisy(0.5 - 0.3 * np.exp(-0.5 * X), 1)  # converges to 0.5
    good = sign * _noisy(0.87 - 0.5 * np.exp(-0.5 * X), 2)  # converges to 0.87 > 0.95 x 0.876
    assert hand.report("bad", bad[:30], metric="m")[-1] == STOP
    assert STOP not in hand.report("good", good[:30], metric="m")


def test_min_mode_bar_for_a_loss():
    # best loss 0.2; with threshold 0.95 a trial is stopped iff its predicted loss >= 0.21
    # (a curve converging to 0.23 is stopped, one converging to 0.19 never is)
    hand = Hand(CurveFitting(seed=0, metric="loss", mode="min", epoch_num=100, threshold=0.95))
    hand.complete("best", 0.2 + 0.5 * np.exp(-0.5 * X[:40]), metric="loss")
    assert hand.s.best_final == pytest.approx(0.2, abs=1e-3)
    assert hand.report("worse", 0.23 + 0.5 * np.exp(-0.5 * X[:20]), metric="loss")[-1] == STOP
    assert STOP not in hand.report("close", 0.19 + 0.5 * np.exp(-0.5 * X[:20]), metric="loss")


def test_best_final_is_the_best_successful_completion_not_the_last_assessed():
    hand = Hand(CurveFitting(seed=0, metric="acc", mode="max", epoch_num=30, start_step=3))
    hand.complete("a", [0.5, 0.8, 0.9])
    hand.complete("b", [0.3, 0.5, 0.6])  # NNI would now compare against b's 0.6
    assert hand.s.best_final == pytest.approx(0.9)
    # a trial this scheduler stopped never becomes "best final"
    flat = np.full(30, 0.2)
    assert hand.report("c", flat)[-1] == STOP
    hand.s.on_trial_complete(hand.ctrl, hand.trials["c"], {})
    assert hand.s.best_final == pytest.approx(0.9)
    assert hand.trials["c"].trial_id not in hand.s._finals


def test_no_shared_fit_state_between_schedulers():
    curves = [_noisy(0.4 + 0.1 * i - 0.3 * np.exp(-0.4 * X), i)[:25] for i in range(4)]

    def run(interleave: bool) -> list[list[str]]:
        a = Hand(CurveFitting(metric="acc", mode="max", epoch_num=100, seed=1))
        b = Hand(CurveFitting(metric="acc", mode="max", epoch_num=100, seed=1))
        for h in (a, b):
            h.complete("best", _noisy(SHAPES["pow"]))
        if interleave:  # another scheduler fitting in between must not change anything
            b.report("other", _noisy(SHAPES["exp"], 7)[:40])
        return [a.report(f"t{i}", c) for i, c in enumerate(curves)]

    assert run(False) == run(True)


def test_nan_and_inf_results_are_ignored():
    hand = Hand(CurveFitting(seed=0, metric="acc", mode="max", epoch_num=30, start_step=3))
    hand.complete("a", [0.5, 0.8, 0.9])
    assert hand.report("x", [math.nan, math.inf, -math.inf]) == [CONTINUE] * 3
    assert hand.trials["x"].trial_id not in hand.s._hist or not hand.s._hist[
        hand.trials["x"].trial_id]


def test_nni_arguments_and_validation():
    s = CurveFitting.from_args({"epoch_num": 20, "start_step": 6, "threshold": 0.9, "gap": 2},
                               metric="acc", mode="max")
    assert (s._epoch_num, s._start_step, s._threshold, s._gap) == (20, 6, 0.9, 2)
    with pytest.raises(ValueError, match="epoch_num: must be > 0, got 0"):
        CurveFitting(epoch_num=0)
    with pytest.raises(ValueError, match="gap: must be an int >= 1, got 0"):
        CurveFitting(epoch_num=10, gap=0)
    with pytest.raises(TypeError, match="start_step"):
        CurveFitting(epoch_num=10, start_step="6")
    with pytest.raises(ValueError, match="threshold"):
        CurveFitting(epoch_num=10, threshold=-1)
    with pytest.raises(ValueError, match="epoch"):
        CurveFitting.from_args({"epochs": 10})
    with pytest.raises(TypeError):
        CurveFitting()  # epoch_num is required, as in NNI


def test_judgement_cost():
    """One judgement (12 fits + MCMC) is cheap; most decisions need none."""
    y = _noisy(SHAPES["mmf"])[:50]
    rng = np.random.default_rng(0)
    predict(y, 100, rng)
    t0 = time.perf_counter()
    for _ in range(20):
        predict(y, 100, rng)
    per = (time.perf_counter() - t0) / 20
    assert per < 0.05, f"{1e3 * per:.2f} ms per judgement"  # generous: 2 shared cores


def test_every_result_survives_a_restore_between_full_writes(ray_session, tmp_path):
    """Results (and judgements) after the last throttled full write are journaled, so a
    scheduler restored from the experiment folder has whole histories (the crash test found
    a trial's third result missing after ``Tuner.restore``)."""
    from ray.train._internal.storage import StorageContext

    ctx = StorageContext(storage_path=str(tmp_path), experiment_dir_name="exp",
                         trial_dir_name="t")
    kw = {"metric": "acc", "mode": "max", "epoch_num": 100, "start_step": 6, "seed": 0}
    first = CurveFitting(**kw)
    first.persist_interval_s = 3600.0  # after the first one, journal lines only
    hand = Hand(first)
    for k, name in enumerate(("best", "x")):
        hand.trials[name] = t = Trial("__fake", config={"i": name}, stub=True, storage=ctx,
                                      trial_id=f"abcde_{k:05d}")
        hand.ctrl.add_trial(t)
        t.set_status(Trial.RUNNING)
    hand.complete("best", SHAPES["pow"][:20])  # a completion is a journal line
    good = _noisy(0.87 - 0.5 * np.exp(-0.5 * X), 2)[:12]
    assert STOP not in hand.report("x", good)  # journaled only
    assert first.n_judgements == 7
    restored = CurveFitting(**kw)
    restored.on_trial_add(SimController(restored), hand.trials["x"])
    tid = hand.trials["x"].trial_id
    assert restored._hist[tid] == [float(v) for v in good]
    assert restored.get_state()["sub"] == first.get_state()["sub"]  # judged, times, finals
    assert restored._judged[tid] == 12 and restored.best_final == first.best_final
