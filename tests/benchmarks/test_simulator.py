"""The learning-curve simulator: sanity of the replay, and the same decisions as a real Tune run."""

from __future__ import annotations

import math
import os
import tempfile

import numpy as np
import pytest
from ray import tune
from ray.tune.experiment import Trial
from ray.tune.schedulers import (
    ASHAScheduler,
    FIFOScheduler,
    HyperBandScheduler,
    MedianStoppingRule,
    TrialScheduler,
)
from ray.tune.search import Searcher

from benchmarks._simulator import DEFAULT_TABLE, LCTable, simulate

TABLE = LCTable.load(DEFAULT_TABLE)
E = TABLE.epochs


class _RowOrder(Searcher):
    """Suggests table rows in a fixed order (the same in the simulator and in Tune)."""

    def __init__(self, rows: list[int]) -> None:
        super().__init__(metric="val_acc", mode="max")
        self._rows = [int(r) for r in rows]
        self._next = 0

    def suggest(self, trial_id: str) -> dict | str | None:
        if self._next >= len(self._rows):
            return Searcher.FINISHED
        self._next += 1
        return {"row": self._rows[self._next - 1]}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        pass


def _replay(config: dict, values: np.ndarray | None = None, checkpoint: bool = False) -> None:
    """Tune trainable replaying one row of the table (resumes from its checkpoint if any)."""
    row = int(config["row"])
    start = 0
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d, open(os.path.join(d, "epoch")) as f:
            start = int(f.read())
    for e in range(start, values.shape[1]):
        if not checkpoint:
            tune.report({"val_acc": float(values[row, e])})
            continue
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "epoch"), "w") as f:
                f.write(str(e + 1))
            tune.report({"val_acc": float(values[row, e])},
                        checkpoint=tune.Checkpoint.from_directory(d))


def _asha() -> ASHAScheduler:
    return ASHAScheduler(metric="val_acc", mode="max", max_t=E, grace_period=1,
                         reduction_factor=3)


def _rows_with_spread(n: int, seed: int) -> list[int]:
    """n rows whose final metrics spread over the table (so a scheduler has work to do)."""
    order = np.argsort(TABLE.final())
    picks = order[np.linspace(0, TABLE.n - 1, n).astype(int)]
    return [int(r) for r in np.random.default_rng(seed).permutation(picks)]


def test_table_is_real_and_large_enough() -> None:
    assert TABLE.n >= 500 and E >= 30
    assert np.isfinite(TABLE.values).all() and (TABLE.epoch_time > 0).all()
    assert TABLE.meta["seed"] == 0 and "record.py" in TABLE.meta["command"]
    # epoch times are CPU time of the 1-thread training (not the shared machine's wall clock)
    assert TABLE.meta["clock"] == "thread" and "--clock thread" in TABLE.meta["command"]
    per_config = TABLE.epoch_time.sum(1)
    assert np.percentile(per_config, 95) < 20 * np.percentile(per_config, 5)
    # curves learn: the mean accuracy rises from the first to the last epoch
    assert TABLE.values[:, -1].mean() > TABLE.values[:, 0].mean() + 0.05
    assert os.path.getsize(DEFAULT_TABLE) < 20e6


def test_fifo_runs_everything_and_the_clock_adds_up() -> None:
    rows = list(range(12))
    one = simulate(TABLE, FIFOScheduler(), workers=1, rows=rows)
    assert one.total_epochs == 12 * E and len(one.completions) == 12
    assert one.end_time == pytest.approx(TABLE.epoch_time[rows].sum())
    four = simulate(TABLE, FIFOScheduler(), workers=4, rows=rows)
    assert four.total_epochs == 12 * E
    assert TABLE.epoch_time[rows].sum(1).max() <= four.end_time < one.end_time
    assert four.best_final(TABLE) == pytest.approx(TABLE.final()[rows].max())


@pytest.mark.parametrize("workers", [1, 4])
def test_deterministic_per_seed(workers: int) -> None:
    a = simulate(TABLE, _asha(), workers=workers, seed=5, max_trials=40)
    b = simulate(TABLE, _asha(), workers=workers, seed=5, max_trials=40)
    c = simulate(TABLE, _asha(), workers=workers, seed=6, max_trials=40)
    assert a.events == b.events
    assert [r for r in a.rows.values()] != [r for r in c.rows.values()]


@pytest.mark.parametrize(
    "make",
    [
        lambda: HyperBandScheduler(metric="val_acc", mode="max", max_t=E, reduction_factor=3),
        lambda: MedianStoppingRule(metric="val_acc", mode="max", time_attr="training_iteration",
                                   grace_period=3, min_samples_required=3),
        _asha,
    ],
    ids=["hyperband", "median", "asha"],
)
def test_ray_schedulers_save_epochs_without_stranding(make) -> None:
    r = simulate(TABLE, make(), workers=4, seed=1, max_trials=60)
    assert r.stranded == 0
    assert all(s == Trial.TERMINATED for s in r.status.values())
    assert r.total_epochs < 60 * E
    assert any(n < E for n in r.epochs_done.values())
    assert len(r.completions) >= 1


def test_target_stops_early_and_time_to_target() -> None:
    target = TABLE.target(0.01)
    full = simulate(TABLE, FIFOScheduler(), workers=4, seed=2)
    t = full.time_to(TABLE, target)
    assert math.isfinite(t)
    early = simulate(TABLE, FIFOScheduler(), workers=4, seed=2, target=target)
    assert early.time_to(TABLE, target) == pytest.approx(t)
    assert early.end_time == pytest.approx(t) and early.total_epochs < full.total_epochs


def test_controller_surface_for_schedulers_that_act_on_other_trials() -> None:
    """A scheduler pausing/stopping OTHER trials through the controller (as PBT/HyperBand do)."""

    class PauseOthers(FIFOScheduler):
        def __init__(self) -> None:
            super().__init__()
            self.removed: list[str] = []

        def on_trial_result(self, controller, trial, result):
            if result["training_iteration"] == 2:
                for t in controller.get_live_trials():
                    if t is not trial and t.status == Trial.RUNNING:
                        controller.pause_trial(t)
                        return TrialScheduler.CONTINUE
            if result["training_iteration"] == 3:
                for t in controller.get_trials():
                    if t.status == Trial.PAUSED:
                        controller.stop_trial(t)
            return TrialScheduler.CONTINUE

        def on_trial_remove(self, controller, trial):
            self.removed.append(trial.trial_id)

    sched = PauseOthers()
    r = simulate(TABLE, sched, workers=2, rows=[0, 1, 2, 3])
    assert sched.removed, "a paused trial was stopped: Tune calls on_trial_remove"
    assert all(r.epochs_done[t] < E for t in sched.removed)
    assert r.stranded == 0


class _ResultOrder(tune.Callback):
    """Driver-side record of every result in the order Tune processed it: (trial, row, epoch),
    trials numbered in the order of their first result."""

    def __init__(self) -> None:
        self.events: list[tuple[int, int, int]] = []
        self._index: dict[str, int] = {}

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        index = self._index.setdefault(trial.trial_id, len(self._index))
        self.events.append((index, int(trial.config["row"]), int(result["training_iteration"])))


def _piece(n_rows: int, epochs: int) -> LCTable:
    rows = _rows_with_spread(n_rows, seed=0)
    return LCTable(tuple(TABLE.configs[r] for r in rows), TABLE.values[rows, :epochs],
                   TABLE.epoch_time[rows, :epochs], TABLE.metric, TABLE.mode,
                   TABLE.space_spec, TABLE.meta)


def _row_searcher(kind: str, n_rows: int) -> Searcher:
    if kind == "fixed order":
        return _RowOrder(list(range(n_rows)))
    # a seeded searcher of ours over the slice's row indices: the same seed in both runs
    from rafiki_ray.searchers import TPESearch
    from rafiki_ray.spaces import Categorical, SearchSpace

    return TPESearch(space=SearchSpace({"row": Categorical(list(range(n_rows)))}),
                     metric="val_acc", mode="max", algo=kind, seed=3)


def _ray_asha(epochs: int) -> TrialScheduler:
    return ASHAScheduler(metric="val_acc", mode="max", max_t=epochs, grace_period=1,
                         reduction_factor=3)


def _our_asha(epochs: int) -> TrialScheduler:
    from rafiki_ray.schedulers import ASHA

    return ASHA(metric="val_acc", mode="max", max_t=epochs, grace_period=1, reduction_factor=3,
                seed=0, persist=False)


def _our_sha(epochs: int) -> TrialScheduler:
    from rafiki_ray.schedulers import SuccessiveHalving

    return SuccessiveHalving(metric="val_acc", mode="max", min_resource=1, max_resource=9,
                             reduction_factor=3, seed=0, persist=False)


def _wait_for_both_cpus(timeout_s: float = 60.0) -> None:
    """The replay trial takes both CPUs (one slot): wait until no leftover of an earlier test
    holds one, or fail naming what does (instead of Tune waiting for resources forever)."""
    import time

    import ray
    from ray.util.state import list_actors

    deadline = time.monotonic() + timeout_s
    while ray.available_resources().get("CPU", 0) < 2:
        if time.monotonic() > deadline:
            try:
                alive: object = [a.class_name for a in list_actors(filters=[("state", "=", "ALIVE")])]
            except Exception as exc:  # noqa: BLE001 - the state API needs the dashboard
                alive = f"unknown ({type(exc).__name__})"
            pytest.fail(f"a CPU is still held {timeout_s:.0f} s after the last test: "
                        f"available {ray.available_resources()}, live actors {alive}")
        time.sleep(0.5)


# In one session-9 fresh-clone default run all three cases failed, the last two hanging, while
# they passed alone right after and in every run since; the wait below turns a CPU held by an
# earlier test's leftover into a failure that names it, and the timeout bounds any other hang
@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    ("make_scheduler", "searcher_kind", "n_trials", "pauses"),
    [
        (_ray_asha, "fixed order", 8, False),
        (_our_asha, "random", 9, True),  # promotion-based: trials pause and resume
        (_our_sha, "tpe", 9, True),  # synchronous: a full rung of 9 pauses, the best 3 go on
    ],
    ids=["ray-ASHAScheduler", "ASHA-pause+TPESearch(random)", "SuccessiveHalving+TPESearch"],
)
def test_same_decisions_as_real_tune(ray_session, storage, make_scheduler, searcher_kind,
                                     n_trials, pauses) -> None:
    """A real Tune run (one slot, replay trainable) makes the simulator's decisions.

    The slice: 8 rows spread over the table, their first 12 epochs (rungs 1, 3, 9, 12).
    Compared: the trials in creation order with their rows (with a seeded searcher: the same
    suggestions for the same seed) and epochs trained, and every result (trial, row, epoch),
    i.e. the same pauses, resumptions from checkpoints and stops. For a scheduler that never
    pauses the results also come in the same order. With pauses the order differs in one
    known way: Tune requests an actor for its pending new trial while the slot is still busy,
    so when a trial pauses that new trial gets the slot first and the promotion the scheduler
    chose runs after it; the simulator gives the freed worker to the scheduler's choice, as
    Algorithm 2 of the ASHA paper does (the run below shows both orders on failure).
    """
    epochs = 12
    piece = _piece(8, epochs)
    sim = simulate(piece, make_scheduler(epochs), workers=1, max_trials=n_trials,
                   searcher=_row_searcher(searcher_kind, 8))
    index: dict[str, int] = {}
    expected = [(index.setdefault(tid, len(index)), sim.rows[tid], epoch)
                for _, tid, epoch, _, _ in sim.events]
    done = list(sim.epochs_done.values())
    assert len(done) == n_trials and min(done) < max(done)  # non-trivial: some trials cut
    assert sim.stranded == 0

    _wait_for_both_cpus()
    order = _ResultOrder()
    tuner = tune.Tuner(
        tune.with_resources(
            tune.with_parameters(_replay, values=piece.values, checkpoint=pauses), {"cpu": 2}
        ),
        tune_config=tune.TuneConfig(search_alg=_row_searcher(searcher_kind, 8),
                                    scheduler=make_scheduler(epochs), num_samples=n_trials,
                                    reuse_actors=True),
        run_config=tune.RunConfig(storage_path=storage, verbose=0, callbacks=[order]),
    )
    grid = tuner.fit()
    assert not grid.errors

    def per_trial(events: list[tuple[int, int, int]]) -> list[tuple[int, int]]:
        last: dict[int, tuple[int, int]] = {}
        for i, row, epoch in events:
            assert epoch == last.get(i, (row, 0))[1] + 1, ("an epoch skipped or repeated", events)
            last[i] = (row, epoch)
        return [last[i] for i in sorted(last)]

    shown = f"real Tune: {order.events}\nsimulator: {expected}"
    assert per_trial(order.events) == per_trial(expected), shown
    assert sorted(order.events) == sorted(expected), shown
    if not pauses:
        assert order.events == expected, shown
    assert sorted(int(r.metrics["training_iteration"]) for r in grid) == sorted(done)


@pytest.mark.slow  # generates mnist1d and imports torch: seconds on a quiet core
def test_table_is_reproducible_from_its_seed() -> None:
    """Retraining a row with record.py's seed rule gives the stored curve (the first epochs)."""
    pytest.importorskip("mnist1d")
    pytest.importorskip("torch")
    from benchmarks.lc_table import record

    rows = [84, 4]  # two of the cheapest configurations (about 10-20 ms per epoch)
    data = record.make_data()["data"]
    seed = TABLE.meta["seed"]
    for i in rows:
        cfg = record.sample_configs(TABLE.n, seed)
        out = record.train_one({k: v[i] for k, v in cfg.items()}, data, 3, seed * 100003 + i)
        # the same curve on the recording CPU; another CPU may round differently: near enough
        np.testing.assert_allclose(out["val_acc"], TABLE.values[i, :3], atol=0.01)
        assert (out["epoch_time"] > 0).all()
