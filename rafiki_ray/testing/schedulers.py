"""``SchedulerContract``: the pytest suite every rafiki_ray scheduler passes.

Use it by subclassing in a test module::

    class TestASHA(SchedulerContract):
        pauses = True                                  # the scheduler may return PAUSE
        scheduler_path = "rafiki_ray.schedulers:ASHA"  # importable, for the crash test
        crash_kwargs = {"max_t": 9, "grace_period": 1}
        # which heavy cases run in the default run (the others only with -m slow):
        cost_in_default_run = True    # 1,000 trials x 100 steps (default False)
        cost_full_history = True      # ... each kept to 100 steps (default False)
        e2e_in_default_run = True     # real Tune + PyTorch run (default True)
        crash_in_default_run = False  # SIGKILL + Tuner.restore (default False)
        e2e_lrs = (1.0, 0.3, 0.1, 0.01)  # the end-to-end run's grid, in start order

        @pytest.fixture
        def scheduler_factory(self):
            def make(*, horizon=9, **kw):
                return ASHA(max_t=horizon, grace_period=horizon / 9, **kw)
            return make

        def check_restored_state(self, before, after, report):  # optional hooks
            ...                                                  # (see their docstrings)
        def check_end_to_end(self, grid):
            ...

The factory takes ``metric``, ``mode``, ``time_attr``, ``seed`` (any may be absent) and
``horizon``: the largest value of ``time_attr`` a trial reaches (map it onto the scheduler's
own maximum, e.g. ``max_t``). Cases: metric/mode from the constructor or from
``set_search_properties``; several ``time_attr``; NaN / inf results, erroring trials and trials
that end early (no crash, no stall); the checkpoint check of pausing schedulers; plain-data
state whose round trip keeps decisions identical; decision cost (1,000 trials x 100 steps,
also with every trial kept to 100 steps where the scheduler allows it);
an end-to-end Tune run with a PyTorch model, checkpoints, ``max_concurrent_trials`` and
``reuse_actors``; and a driver crash (SIGKILL) followed by ``Tuner.restore``.

Scheduler decisions are driven without a cluster by :func:`rafiki_ray.testing._driver.drive`
(real ``Trial`` objects, Tune's scheduler interface, a simulated clock).
"""

from __future__ import annotations

import itertools
import math
import os
import pickle
import tempfile
import time
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pytest

from rafiki_ray.testing._driver import SimController, default_curve, drive

__all__ = [
    "SchedulerContract",
    "check_history_restore",
    "check_plain",
    "crash_experiment",
    "reported_results",
    "restored_at_kill",
    "restored_histories",
    "torch_trainable",
]

HORIZON = 9


def check_plain(x: Any, path: str = "state") -> None:
    """Assert ``x`` is plain data (JSON types, numpy arrays/scalars)."""
    if isinstance(x, dict):
        for k, v in x.items():
            assert isinstance(k, (str, int)), f"{path}: key {k!r} is not str/int"
            check_plain(v, f"{path}.{k}")
    elif isinstance(x, (list, tuple)):
        for i, v in enumerate(x):
            check_plain(v, f"{path}[{i}]")
    else:
        assert x is None or isinstance(x, (str, int, float, bool, np.ndarray, np.generic)), (
            f"{path}: {type(x).__name__} is not plain data"
        )


def torch_trainable(config: dict[str, Any]) -> None:
    """A tiny PyTorch MLP on generated data; reports loss with a checkpoint every epoch."""
    import time

    import torch
    from ray import tune

    torch.manual_seed(int(config.get("seed", 0)))
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=gen)
    y = (x[:, :3].sum(dim=1, keepdim=True) > 0).float()
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    opt = torch.optim.SGD(model.parameters(), lr=float(config["lr"]))
    start = 0
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            saved = torch.load(os.path.join(d, "model.pt"))
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        start = saved["epoch"]
    resource = config.get("_resource")  # Hyperband-style budget injected in the config
    horizon = int(config.get("horizon", HORIZON))
    for epoch in range(start + 1, horizon + 1):
        for _ in range(2):
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
            loss.backward()
            opt.step()
        time.sleep(float(config.get("sleep", 0.0)))
        with tempfile.TemporaryDirectory() as d:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch},
                       os.path.join(d, "model.pt"))
            tune.report(
                {"loss": float(loss), "epoch": epoch, "start": start, "resource": resource},
                checkpoint=tune.Checkpoint.from_directory(d),
            )


def crash_experiment(
    scheduler: str, scheduler_kwargs: dict[str, Any], num_samples: int = 6,
    sleep: float = 0.25, max_concurrent: int = 2,
) -> tuple[Callable, dict[str, Any]]:
    """Factory for :func:`rafiki_ray.testing._crash.run_crash_restore`."""
    from ray import tune

    from rafiki_ray.testing._crash import load_factory

    sched = load_factory(scheduler)(metric="loss", mode="min", **scheduler_kwargs)
    return torch_trainable, {
        "param_space": {"lr": tune.loguniform(1e-3, 1.0), "sleep": sleep, "horizon": HORIZON},
        "tune_config": tune.TuneConfig(
            scheduler=sched, num_samples=num_samples, max_concurrent_trials=max_concurrent,
            reuse_actors=True,
        ),
    }


def reported_results(report: dict[str, Any], metric: str = "loss") -> dict[str, list[tuple]]:
    """Every result each trial of a crash test reported over both runs, in order.

    ``{trial_id: [(training_iteration, start, metric), ...]}`` from Tune's ``result.json``
    (``start`` is the epoch :func:`torch_trainable` resumed from: 0 before the kill).
    """
    import glob
    import json

    out: dict[str, list[tuple]] = {}
    for path in sorted(glob.glob(os.path.join(report["experiment_path"], "*", "result.json"))):
        with open(path) as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    out.setdefault(r["trial_id"], []).append(
                        (int(r["training_iteration"]), int(r["start"]), float(r[metric])))
    return out


def restored_at_kill(report: dict[str, Any], scheduler: str,
                     kwargs: dict[str, Any]) -> Any:
    """A fresh scheduler loaded from the files the crash left, as ``Tuner.restore`` loads it."""
    from rafiki_ray.testing._crash import load_factory

    sched = load_factory(scheduler)(metric="loss", mode="min", **kwargs)
    assert sched._load_persisted(report["scheduler_files_before"], next(iter(report["trials"]))), (
        "no state of this run was persisted before the kill")
    return sched


def check_history_restore(sched: Any, results: dict[str, list[tuple]]) -> None:
    """The history schedulers' (MedianStopping, CurveFitting) state at the kill holds every
    result Tune's snapshot held: a trial that Tune restored from its checkpoint at epoch ``s``
    has at least ``s`` results in its history, with the values it reported."""
    sign = -1.0 if sched.mode == "min" else 1.0
    state = sched.get_state()["sub"]
    for tid, rows in results.items():
        resumed = [start for _, start, _ in rows if start > 0]
        hist = state["running"].get(tid)
        if hist is None:  # it had not reported, or it had ended, before the kill
            assert not resumed or tid in state["ended"], (tid, rows)
            continue
        assert state["times"][tid] == [float(k) for k in range(1, len(hist) + 1)], tid
        first: dict[int, float] = {}  # a result replayed after the restore comes second
        for k, _, v in rows:
            first.setdefault(k, v)
        assert len(hist) <= len(first), (tid, hist, rows)
        expected = [sign * first[k] for k in range(1, len(hist) + 1)]
        assert hist == pytest.approx(expected, rel=1e-6), (tid, hist, rows)
        if resumed:  # every result up to the restored checkpoint is in the history
            assert len(hist) >= min(resumed), (tid, len(hist), rows)


def restored_histories(
    report: dict[str, Any], scheduler: str, kwargs: dict[str, Any], after: dict[str, Any]
) -> tuple[dict[str, list[tuple]], dict[str, Any], dict[str, Any]]:
    """The crash-test checks shared by the history schedulers (MedianStopping, CurveFitting):
    the state at the kill holds every result Tune's snapshot held (:func:`check_history_restore`),
    and at the end of the restored run no trial runs, every trial ended and no stop was lost.
    Returns the reported results and the ``sub`` states at the kill and at the end."""
    results = reported_results(report)
    at_kill = restored_at_kill(report, scheduler, kwargs)
    check_history_restore(at_kill, results)
    kill, end = at_kill.get_state()["sub"], after["sub"]
    assert end["running"] == {} and set(end["ended"]) == set(report["trials"]), end
    assert set(kill["stopped"]) <= set(end["stopped"]), (kill["stopped"], end["stopped"])
    return results, kill, end


def _improving(i: int, t: int) -> float:
    """A loss on which trial ``i`` is better than every trial before it at every step
    (trials >= 1,000: odd ones far worse, which a stopping rule stops; even ones as the rule)."""
    if i >= 1000 and i % 2:
        return 10.0 + 1.0 / (1 + t)
    return 0.2 + 1.0 / (1 + i) + 0.01 / (1 + t)


def _nan_curve(seed: int = 0) -> Callable[[int, int], float]:
    base = default_curve(seed)

    def curve(i: int, t: int) -> float:
        if i % 5 == 1:
            return math.nan
        if i % 5 == 2 and t % 2 == 0:
            return math.inf
        if i % 5 == 3 and t == 1:
            return -math.inf
        return base(i, t)

    return curve


class SchedulerContract:
    """Subclass with a ``scheduler_factory`` fixture; see the module docstring."""

    #: whether the scheduler may PAUSE trials (then checkpoints are required)
    pauses: bool = False
    #: importable "module:Class" for the driver-crash test (None skips it)
    scheduler_path: str | None = None
    crash_kwargs: ClassVar[dict[str, Any]] = {}
    #: run the crash test in the default run (else only with -m slow)
    crash_in_default_run: bool = False
    #: run the 1,000-trial cost test in the default run (else only with -m slow)
    cost_in_default_run: bool = False
    #: run the end-to-end Tune run in the default run (else only with -m slow)
    e2e_in_default_run: bool = True
    #: the full-history cost case applies: on a curve where every trial is better than all
    #: earlier ones the scheduler keeps (nearly) every trial to the horizon (not so for
    #: synchronous halving, which stops 1 - 1/eta of each rung whatever the curve)
    cost_full_history: bool = False
    #: the end-to-end run's grid of learning rates, in the order Tune starts them (2 at a
    #: time). Stopping rules that learn from completed trials list the best first, so that the
    #: later, worse trials are judged against them and ``check_end_to_end`` can see stops.
    e2e_lrs: ClassVar[tuple[float, ...]] = (0.01, 0.1, 0.3, 1.0)

    @pytest.fixture
    def scheduler_factory(self) -> Callable[..., Any]:  # pragma: no cover - overridden
        raise NotImplementedError("provide a scheduler_factory fixture")

    # -------------------------------------------------------------- helpers
    def _run(self, make: Callable[..., Any], **kw: Any):
        return drive(make(metric="loss", mode="min", seed=0, horizon=HORIZON), **kw)

    # -------------------------------------------------------------- metric / mode
    def test_metric_mode_constructor_or_search_properties(self, scheduler_factory):
        a = drive(scheduler_factory(metric="loss", mode="min", seed=0, horizon=HORIZON),
                  n_trials=12, horizon=HORIZON)
        late = scheduler_factory(seed=0, horizon=HORIZON)
        assert late.set_search_properties("loss", "min") is True
        b = drive(late, n_trials=12, horizon=HORIZON)
        assert a.decisions == b.decisions
        # conflicting properties are refused, identical ones accepted
        s = scheduler_factory(metric="loss", mode="min", horizon=HORIZON)
        assert s.set_search_properties("acc", None) is False
        assert s.set_search_properties(None, "max") is False
        assert s.set_search_properties("loss", "min") is True

    def test_missing_metric_or_mode_is_a_clear_error(self, scheduler_factory):
        with pytest.raises(ValueError, match="metric and a mode"):
            drive(scheduler_factory(horizon=HORIZON), n_trials=2, horizon=HORIZON)

    def test_bad_mode_is_refused(self, scheduler_factory):
        with pytest.raises(ValueError, match="mode"):
            scheduler_factory(metric="loss", mode="minimize", horizon=HORIZON)

    def test_max_mode_mirrors_min_mode(self, scheduler_factory):
        curve = default_curve(3)
        lo = drive(scheduler_factory(metric="loss", mode="min", seed=0, horizon=HORIZON),
                   curve, n_trials=12, horizon=HORIZON)
        hi = drive(scheduler_factory(metric="loss", mode="max", seed=0, horizon=HORIZON),
                   lambda i, t: -curve(i, t), n_trials=12, horizon=HORIZON)
        assert lo.decisions == hi.decisions

    @pytest.mark.parametrize(
        "time_attr,scale", [("epoch", 1.0), ("time_total_s", 0.5), ("num_samples", 64.0)]
    )
    def test_time_attr(self, scheduler_factory, time_attr, scale):
        sched = scheduler_factory(
            metric="loss", mode="min", seed=0, time_attr=time_attr, horizon=HORIZON * scale
        )
        log = drive(sched, n_trials=12, horizon=HORIZON, time_attr=time_attr, time_scale=scale)
        assert all(s in ("TERMINATED", "ERROR") for s in log.statuses.values()), log.statuses
        assert max(log.steps.values()) == HORIZON
        if scale == 1.0:  # only the name of the attribute differs: same decisions
            ref = self._run(scheduler_factory, n_trials=12, horizon=HORIZON)
            assert [(i, d) for i, _, d in log.decisions] == [
                (i, d) for i, _, d in ref.decisions
            ]

    # -------------------------------------------------------------- robustness
    def test_nan_and_inf_results_neither_crash_nor_stall(self, scheduler_factory):
        log = self._run(scheduler_factory, curve=_nan_curve(), n_trials=15, horizon=HORIZON)
        assert all(s == "TERMINATED" for s in log.statuses.values()), log.statuses
        assert len(log.statuses) == 15

    def test_errors_and_early_ends_neither_crash_nor_stall(self, scheduler_factory):
        log = self._run(
            scheduler_factory, n_trials=15, horizon=HORIZON, workers=3,
            fail_at={0: 1, 4: 2, 7: 5}, end_at={2: 1, 5: 2, 9: 4},
        )
        assert len(log.statuses) == 15
        assert log.statuses[0] == "ERROR"  # failed at its first step
        assert all(s in ("TERMINATED", "ERROR") for s in log.statuses.values()), log.statuses
        assert max(log.steps.values()) == HORIZON  # the experiment still finished its best

    def test_pause_without_checkpoint_is_a_clear_error(self, scheduler_factory):
        sched = scheduler_factory(metric="loss", mode="min", seed=0, horizon=HORIZON)
        if not self.pauses:
            log = drive(sched, n_trials=10, horizon=HORIZON, checkpoint=False)
            assert "PAUSE" not in {d for _, _, d in log.decisions}
            return
        from rafiki_ray.schedulers._base import CheckpointRequiredError

        with pytest.raises(CheckpointRequiredError, match=r"tune\.report\(.*checkpoint"):
            drive(sched, n_trials=10, horizon=HORIZON, checkpoint=False)

    def test_choose_trial_to_run_is_idempotent(self, scheduler_factory):
        log = self._run(scheduler_factory, n_trials=20, horizon=HORIZON, workers=3,
                        check_idempotent=True, fail_at={3: 2}, end_at={5: 1})
        assert len(log.statuses) == 20

    # -------------------------------------------------------------- state
    def test_state_is_plain_data_and_round_trips(self, scheduler_factory, tmp_path):
        sched = scheduler_factory(metric="loss", mode="min", seed=0, horizon=HORIZON)
        drive(sched, n_trials=10, horizon=HORIZON)
        state = sched.get_state()
        check_plain(state)
        assert state["metric"] == "loss" and state["mode"] == "min"
        sched.save(str(tmp_path / "s.pkl"))
        other = scheduler_factory(horizon=HORIZON)
        other.restore(str(tmp_path / "s.pkl"))
        assert pickle.dumps(other.get_state()) == pickle.dumps(state)

    def test_state_round_trip_keeps_decisions(self, scheduler_factory):
        def reincarnate(state):
            new = scheduler_factory(horizon=HORIZON)
            new.set_state(state)
            return new

        ref = self._run(scheduler_factory, n_trials=20, horizon=HORIZON, workers=3)
        log = self._run(
            scheduler_factory, n_trials=20, horizon=HORIZON, workers=3,
            reincarnate=reincarnate, reincarnate_every=5,
        )
        assert log.decisions == ref.decisions
        assert log.starts == ref.starts

    # -------------------------------------------------------------- cost
    @pytest.mark.slow
    def test_decisions_are_cheap(self, scheduler_factory):
        """1,000 trials, up to 100 results each: at most 1 ms per decision."""
        if self.cost_in_default_run:
            pytest.skip("runs in the default run")
        self._cost(scheduler_factory)

    def test_decisions_are_cheap_default_run(self, scheduler_factory):
        if not self.cost_in_default_run:
            pytest.skip("this scheduler's full cost test runs with -m slow")
        self._cost(scheduler_factory)

    def _cost(self, scheduler_factory: Callable[..., Any]) -> None:
        log = drive(
            scheduler_factory(metric="loss", mode="min", seed=0, horizon=100),
            n_trials=1000, horizon=100, workers=16,
        )
        assert len(log.statuses) == 1000
        SchedulerContract.check_cost(self, log, math.nan, "1,000 trials x up to 100 results")

    @pytest.mark.slow
    def test_decisions_are_cheap_full_history(self, scheduler_factory):
        """1,000 trials that all stay to 100 results: at most 1 ms per decision."""
        if self.cost_in_default_run:
            pytest.skip("runs in the default run")
        self._cost_full_history(scheduler_factory)

    def test_decisions_are_cheap_full_history_default_run(self, scheduler_factory):
        if not self.cost_in_default_run:
            pytest.skip("this scheduler's full cost tests run with -m slow")
        self._cost_full_history(scheduler_factory)

    def _cost_full_history(self, scheduler_factory: Callable[..., Any]) -> None:
        """The cost bound under the load it names: 1,000 trials that all stay to 100 results.

        The other cost cases replay crossing curves, on which most trials are stopped early,
        so the history never holds 1,000 x 100 results. Here every trial is better than all
        earlier ones at every step (so the scheduler continues it); once the history is full,
        100 more trials (half as good, half far worse) are timed at that load.
        """
        if not self.cost_full_history:
            pytest.skip("this scheduler stops most trials whatever the curve")
        sched = scheduler_factory(metric="loss", mode="min", seed=0, horizon=100)
        ctrl = SimController(sched)
        c0 = time.process_time()
        fill = drive(sched, _improving, n_trials=1000, horizon=100, workers=16, controller=ctrl)
        fill_cpu = time.process_time() - c0
        assert len(fill.statuses) == 1000
        assert fill.n_results >= 0.99 * 1000 * 100, f"only {fill.n_results} results"
        c0 = time.process_time()
        probe = drive(sched, _improving, n_trials=1100, horizon=100, workers=16,
                      controller=ctrl)
        probe_cpu = time.process_time() - c0
        assert len(probe.statuses) == 1100
        self.check_cost(fill, fill_cpu, "fill")
        self.check_cost(probe, probe_cpu, "full history")

    def check_cost(self, log: Any, cpu_s: float, what: str) -> None:
        """The bound: at most 1 ms per decision, mean and 95th percentile (wall time)."""
        times = np.array(log.result_times + log.choose_times)
        assert times.mean() <= 1e-3, f"{what}: mean decision {1e3 * times.mean():.3f} ms"
        p95 = np.percentile(times, 95)
        assert p95 <= 1e-3, f"{what}: p95 {1e3 * p95:.3f} ms"

    def test_decisions_are_cheap_small(self, scheduler_factory):
        """Default-run proxy of the cost test: 200 trials x up to 30 results."""
        log = drive(
            scheduler_factory(metric="loss", mode="min", seed=0, horizon=30),
            n_trials=200, horizon=30, workers=8,
        )
        times = np.array(log.result_times + log.choose_times)
        assert times.mean() <= 1e-3, f"mean decision {1e3 * times.mean():.3f} ms"

    # -------------------------------------------------------------- real Tune
    def test_end_to_end_pytorch(self, scheduler_factory, ray_session, storage):
        if not self.e2e_in_default_run:
            pytest.skip("this scheduler's end-to-end run is marked slow")
        self._end_to_end(scheduler_factory, storage)

    @pytest.mark.slow
    def test_end_to_end_pytorch_slow(self, scheduler_factory, ray_session, storage):
        if self.e2e_in_default_run:
            pytest.skip("runs in the default run")
        self._end_to_end(scheduler_factory, storage)

    @staticmethod
    def _checkpoint_exploits(sched: Any, trial_id: str) -> int:
        """How many times ``sched`` restarted trial ``trial_id`` from another trial's
        checkpoint (PBT's lineage; 0 for schedulers without one)."""
        lineage = getattr(sched, "lineage", None)
        if lineage is None:
            return 0
        df = lineage()
        if df.empty:
            return 0
        rows = df[(df["event"] == "exploit") & (df["via"] == "checkpoint") & df["applied"]]
        return int(sum(str(t) == trial_id for t in rows["trial_id"]))

    def _end_to_end(self, scheduler_factory: Callable[..., Any], storage: str) -> None:
        from ray import tune

        class _Epochs(tune.Callback):
            """Every reported epoch per trial, in order, as the driver received it. (A trial's
            progress.csv is no record of this: when Tune starts a trial from a checkpoint its
            logger replaces the local file with the copy last synced to storage, so rows
            reported since that sync are gone, e.g. [9] for a trial that reported 1..9.)"""

            def __init__(self) -> None:
                self.seen: dict[str, list[int]] = {}

            def on_trial_result(self, iteration: int, trials: Any, trial: Any, result: dict,
                                **info: Any) -> None:
                if "epoch" in result:
                    self.seen.setdefault(trial.trial_id, []).append(int(result["epoch"]))

        record = _Epochs()
        sched = scheduler_factory(metric="loss", mode="min", seed=0, time_attr="epoch",
                                  horizon=HORIZON)
        tuner = tune.Tuner(
            torch_trainable,
            param_space={"lr": tune.grid_search(list(self.e2e_lrs))},
            tune_config=tune.TuneConfig(scheduler=sched, max_concurrent_trials=2,
                                        reuse_actors=True),
            run_config=tune.RunConfig(storage_path=storage, verbose=0, callbacks=[record]),
        )
        grid = tuner.fit()
        assert grid.num_errors == 0, [r.error for r in grid if r.error]
        assert len(grid) == 4
        best = grid.get_best_result(metric="loss", mode="min")
        assert math.isfinite(best.metrics["loss"])
        assert len(record.seen) == 4, record.seen
        for trial_id, seen in record.seen.items():
            # no restart from scratch; a step back only where the scheduler restarted the
            # trial from another trial's checkpoint (PBT's exploit, as Ray's PBT does)
            back = sum(b <= a for a, b in itertools.pairwise(seen))
            assert seen[0] == 1 and back <= self._checkpoint_exploits(sched, trial_id), seen
        assert max(max(seen) for seen in record.seen.values()) == HORIZON
        if self.pauses:
            assert any(int(r.metrics["start"]) > 0 for r in grid), "no trial was ever resumed"
        self.check_end_to_end(grid)

    def check_end_to_end(self, grid: Any) -> None:
        """Hook for algorithm-specific checks of the end-to-end run (e.g. which trials the
        scheduler stopped: a trial that ended before ``HORIZON`` without an error was)."""

    # -------------------------------------------------------------- driver crash
    @pytest.mark.slow
    def test_driver_crash_restore(self, storage):
        if self.crash_in_default_run:
            pytest.skip("runs in the default run")
        self._crash(storage)

    def test_driver_crash_restore_default_run(self, storage):
        if not self.crash_in_default_run:
            pytest.skip("this scheduler's crash test runs with -m slow")
        self._crash(storage)

    def _crash(self, storage: str) -> None:
        if self.scheduler_path is None:
            pytest.skip("no scheduler_path for the crash test")
        from rafiki_ray.testing._crash import log_excerpt, run_crash_restore

        report = run_crash_restore(
            "rafiki_ray.testing.schedulers:crash_experiment",
            storage=storage, name="crash", kill_after=6,
            factory_kwargs={"scheduler": self.scheduler_path,
                            "scheduler_kwargs": dict(self.crash_kwargs)},
        )
        assert report["restore_error"] is None, report["restore_error"]
        assert report["survivors"] == []
        assert report["scheduler_state_before"] is not None, "no state persisted before kill"
        assert report["scheduler_state_after"] is not None
        assert len(report["trials"]) == 6, report["trials"].keys()
        for tid, info in report["trials"].items():
            assert info["error"] is None, info["error"]
            its = info["iterations"]
            assert its.count(1) <= 1, f"trial {tid} restarted from scratch: {its}"
        # the experiment carried on to the end: the best trial reached the horizon
        reached = max(int(i["last"].get("epoch", 0)) for i in report["trials"].values())
        assert reached == HORIZON, (
            f"no trial reached epoch {HORIZON} (best {reached}); iterations "
            f"{ {t: i['iterations'] for t, i in report['trials'].items()} }; "
            f"scheduler and Tune decisions from {report['log']}:\n"
            f"{log_excerpt(report['log'])}"
        )
        self.check_restored_state(report["scheduler_state_before"],
                                  report["scheduler_state_after"], report)

    def check_restored_state(self, before: dict, after: dict, report: dict) -> None:
        """Hook: compare the persisted state before the kill with the one after restore."""
        assert before["metric"] == after["metric"] == "loss"
