"""The two pieces RafikiScheduler is built from, on their own: crash persistence
(``StateFile``: state file + journal in the experiment folder) and concurrency slots
(``Slots`` over a real ConcurrencyLimiter)."""

from __future__ import annotations

import json
import os

import pytest
from ray.tune.experiment import Trial

from rafiki_ray.schedulers._persistence import JOURNAL_FILE, STATE_FILE, StateFile
from rafiki_ray.schedulers._slots import Slots
from tests.schedulers.test_pbt import _short_trial  # 9 reports, each with a checkpoint


def _trials(tmp_path, prefix: str, n: int) -> list[Trial]:
    from ray.train._internal.storage import StorageContext

    ctx = StorageContext(storage_path=str(tmp_path), experiment_dir_name="exp",
                         trial_dir_name="t")
    return [Trial("__fake", config={"i": i}, stub=True, storage=ctx,
                  trial_id=f"{prefix}_{i:05d}") for i in range(n)]


class _Owner:
    """The scheduler side: plain-data state plus replayed journal entries."""

    def __init__(self) -> None:
        self.state: dict = {"n": 0}
        self.replayed: list = []

    def full(self) -> dict:
        return {"n": self.state["n"], "trial_ids": ["abcde_00000"]}

    def apply(self, state: dict) -> None:
        self.state = {"n": state["n"]}


def test_state_file_write_journal_and_restore(ray_session, tmp_path):
    trials = _trials(tmp_path, "abcde", 2)
    owner, file = _Owner(), StateFile("Probe", interval_s=3600.0)
    assert not file.attach(trials[0], apply_state=owner.apply, replay=owner.replayed.append)
    assert file.path == os.path.join(file.directory, STATE_FILE)
    owner.state["n"] = 1
    assert file.write(owner.full)  # the first write is never throttled
    owner.state["n"] = 2
    assert not file.write(owner.full) and file.dirty  # throttled: marked dirty
    file.journal(["x", 2], owner.full)  # not due: one journal line
    file.journal(["y", 3], owner.full)
    with open(os.path.join(file.directory, JOURNAL_FILE)) as f:
        assert [json.loads(line)[2:] for line in f] == [["x", 2], ["y", 3]]
    # a fresh scheduler (Tuner.restore) finds the state through another trial of the run
    again, file2 = _Owner(), StateFile("Probe", interval_s=3600.0)
    assert file2.attach(trials[1], apply_state=again.apply, replay=again.replayed.append)
    assert file2.restored and again.state == {"n": 1}
    assert again.replayed == [["x", 2], ["y", 3]]  # lines after the full write, in order
    # a full write covers the journal so far: nothing is replayed twice
    assert file2.write(again.full, force=True)
    third = _Owner()
    assert StateFile("Probe", interval_s=1.0).load(
        file.directory, trials[0].trial_id, apply_state=third.apply,
        replay=third.replayed.append)
    assert third.replayed == []


def test_state_file_of_another_run_is_ignored(ray_session, tmp_path):
    first = _Owner()
    file = StateFile("Probe", interval_s=0.0)
    file.attach(_trials(tmp_path, "abcde", 1)[0], apply_state=first.apply,
                replay=first.replayed.append)
    first.state["n"] = 5
    file.write(first.full)
    file.journal(["old"], first.full)
    other = _Owner()
    fresh = StateFile("Probe", interval_s=0.0)
    assert not fresh.attach(_trials(tmp_path, "fffff", 1)[0], apply_state=other.apply,
                            replay=other.replayed.append)
    assert other.state == {"n": 0} and not fresh.restored
    assert not os.path.exists(os.path.join(fresh.directory, JOURNAL_FILE))  # dropped


def test_state_file_of_a_stub_trial_stays_detached():
    file = StateFile("Probe", interval_s=0.0)
    assert not file.attach(Trial("__fake", stub=True), apply_state=print, replay=print)
    assert not file.attached and not file.write(dict)


def test_slots_free_a_paused_trials_slot_and_take_it_back():
    from ray.tune.search import ConcurrencyLimiter, Searcher, SearchGenerator

    class _Const(Searcher):
        def suggest(self, trial_id):
            return {"x": 1}

    limiter = ConcurrencyLimiter(_Const(metric="x", mode="max"), max_concurrent=1)
    ctrl = type("Ctrl", (), {"search_alg": SearchGenerator(limiter)})()
    limiter.suggest("a")
    slots = Slots()
    assert not slots.free(ctrl)
    slots.release(ctrl, "a")  # a is paused
    assert slots.released == {"a"} and slots.free(ctrl)
    limiter.suggest("b")  # b runs in a's slot
    assert not slots.claim(ctrl, "a")  # full: a waits
    assert slots.claim(ctrl, "a", force=True) and slots.released == set()
    assert slots.claim(ctrl, "b")  # counted already


def test_a_trial_paused_after_our_state_was_saved_still_reports_to_the_searcher():
    """Driver crash between the searcher's snapshot (a's slot freed) and our state file (of
    before the pause): the restored Slots does not know it freed a's slot, yet claiming a
    must count it again, else the limiter drops a's completion and the searcher never
    learns its result (Tune's ConcurrencyLimiter ignores trials it does not count)."""
    import copy

    from ray.tune.search import ConcurrencyLimiter, Searcher, SearchGenerator

    class _Recorder(Searcher):
        def __init__(self):
            super().__init__(metric="x", mode="max")
            self.completed = []

        def suggest(self, trial_id):
            return {"x": 1}

        def on_trial_complete(self, trial_id, result=None, error=False):
            self.completed.append(trial_id)

    limiter = ConcurrencyLimiter(_Recorder(), max_concurrent=2)
    ctrl = type("Ctrl", (), {"search_alg": SearchGenerator(limiter)})()
    limiter.suggest("a")
    limiter.suggest("b")
    older = Slots()  # our state file: of before a's pause
    Slots().release(ctrl, "a")  # a paused, its slot freed; Tune snapshots the limiter
    restored = copy.deepcopy(limiter)
    ctrl2 = type("Ctrl", (), {"search_alg": SearchGenerator(restored)})()
    assert restored.live_trials == {"b"} and older.released == set()
    assert older.claim(ctrl2, "a")  # resume a after the restore
    restored.on_trial_complete("a", result={"x": 1})
    assert restored.searcher.completed == ["a"]


@pytest.mark.timeout(150)
def test_max_concurrent_trials_with_our_searcher_counts_running_trials(ray_session, storage):
    """``max_concurrent_trials=2`` with a rafiki_ray searcher (which takes the limit itself,
    so Tune's ConcurrencyLimiter stays inert): paused trials give their slot back, so
    SuccessiveHalving fills its rungs and halves exactly, as it does with Tune's random
    search (9 trials: 6 stop at 1 iteration, 2 at 3, 1 reaches 9). Before, paused trials
    held the searcher's slots, the scheduler closed rungs that had not filled, and 5 of 12
    trials ran to the full budget."""
    from ray import tune

    from rafiki_ray.schedulers import SuccessiveHalving
    from rafiki_ray.searchers import TPESearch

    grid = tune.Tuner(
        _short_trial, param_space={"x": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(
            metric="score", mode="max", num_samples=9, search_alg=TPESearch(seed=0),
            scheduler=SuccessiveHalving(min_resource=1, max_resource=9, reduction_factor=3,
                                        seed=0),
            max_concurrent_trials=2),
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    ).fit()
    assert grid.num_errors == 0 and len(grid) == 9
    assert sorted(r.metrics["training_iteration"] for r in grid) == [1] * 6 + [3, 3, 9]
