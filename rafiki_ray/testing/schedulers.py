"""``SchedulerContract``: the pytest suite every rafiki_ray scheduler passes.

Use it by subclassing in a test module::

    class TestASHA(SchedulerContract):
        pauses = True                                  # the scheduler may return PAUSE
        scheduler_path = "rafiki_ray.schedulers:ASHA"  # importable, for the crash test
        crash_kwargs = {"max_t": 9, "grace_period": 1}
        # which heavy cases run in the default run (the others only with -m slow):
        cost_in_default_run = True    # 1,000 trials x 100 steps (default False)
        e2e_in_default_run = True     # real Tune + PyTorch run (default True)
        crash_in_default_run = False  # SIGKILL + Tuner.restore (default False)

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
state whose round trip keeps decisions identical; decision cost (1,000 trials x 100 steps);
an end-to-end Tune run with a PyTorch model, checkpoints, ``max_concurrent_trials`` and
``reuse_actors``; and a driver crash (SIGKILL) followed by ``Tuner.restore``.

Scheduler decisions are driven without a cluster by :func:`rafiki_ray.testing._driver.drive`
(real ``Trial`` objects, Tune's scheduler interface, a simulated clock).
"""

from __future__ import annotations

import math
import os
import pickle
import tempfile
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pytest

from rafiki_ray.testing._driver import default_curve, drive

__all__ = ["SchedulerContract", "check_plain", "crash_experiment", "torch_trainable"]

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
        times = np.array(log.result_times + log.choose_times)
        assert len(log.statuses) == 1000
        assert times.mean() <= 1e-3, f"mean decision {1e3 * times.mean():.3f} ms"
        assert np.percentile(times, 95) <= 1e-3, f"p95 {1e3 * np.percentile(times, 95):.3f} ms"

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

    def _end_to_end(self, scheduler_factory: Callable[..., Any], storage: str) -> None:
        from ray import tune

        sched = scheduler_factory(metric="loss", mode="min", seed=0, time_attr="epoch",
                                  horizon=HORIZON)
        tuner = tune.Tuner(
            torch_trainable,
            param_space={"lr": tune.grid_search([0.01, 0.1, 0.3, 1.0])},
            tune_config=tune.TuneConfig(scheduler=sched, max_concurrent_trials=2,
                                        reuse_actors=True),
            run_config=tune.RunConfig(storage_path=storage, verbose=0),
        )
        grid = tuner.fit()
        assert grid.num_errors == 0, [r.error for r in grid if r.error]
        assert len(grid) == 4
        best = grid.get_best_result(metric="loss", mode="min")
        assert math.isfinite(best.metrics["loss"])
        epochs = []
        for r in grid:
            df = r.metrics_dataframe
            if df is not None and "epoch" in df:
                seen = [int(e) for e in df["epoch"]]
                assert seen == sorted(seen) and len(set(seen)) == len(seen), seen  # no restart
                epochs.append(max(seen))
            else:
                epochs.append(int(r.metrics["epoch"]))
        assert max(epochs) == HORIZON
        if self.pauses:
            assert any(int(r.metrics["start"]) > 0 for r in grid), "no trial was ever resumed"
        self.check_end_to_end(grid)

    def check_end_to_end(self, grid: Any) -> None:
        """Hook for algorithm-specific checks of the end-to-end run."""

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
        from rafiki_ray.testing._crash import run_crash_restore

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
        assert max(int(i["last"].get("epoch", 0)) for i in report["trials"].values()) == HORIZON
        self.check_restored_state(report["scheduler_state_before"],
                                  report["scheduler_state_after"], report)

    def check_restored_state(self, before: dict, after: dict, report: dict) -> None:
        """Hook: compare the persisted state before the kill with the one after restore."""
        assert before["metric"] == after["metric"] == "loss"
