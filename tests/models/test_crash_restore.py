"""tune_model's budget across a driver SIGKILL and Tuner.restore (rafiki_ray.testing._crash)."""

from __future__ import annotations

import pytest

from rafiki_ray.testing._crash import log_excerpt, run_crash_restore

pytestmark = pytest.mark.slow
FACTORY = "tests.models._crash_factory:tune_model_parts"


def test_model_trial_count_is_exact_across_a_crash(tmp_path):
    report = run_crash_restore(FACTORY, storage=str(tmp_path), name="count", kill_after=3,
                               factory_kwargs={"count": 8, "seconds": 0.5, "hours": 1.0},
                               introspect="tests.models._crash_factory:budget_states",
                               timeout_s=500)
    assert report["restore_error"] is None, log_excerpt(report["log"])
    trials = report["trials"]
    assert len(trials) == 8, log_excerpt(report["log"])
    assert all(t["last"].get("score") is not None for t in trials.values())
    info = report["introspection"]
    assert len(info["searchers"]) == 2, info  # one searcher snapshot per driver session
    first, last = info["searchers"]
    assert 1 <= first["n"] < 8, info  # the crash came mid-run
    # the restored searcher went on from its snapshot: 8 suggestions in all, each a trial of
    # the final grid (none lost, none repeated, none beyond the count)
    assert last["n"] == 8 and sorted(last["created_s"]) == info["grid_trial_ids"], info
    assert set(first["created_s"]) <= set(last["created_s"]), info


def test_time_budget_continues_after_a_crash(tmp_path):
    """The clock's elapsed seconds are Tune callback state: the restored run starts from the
    first run's last snapshot (not from 0), creates no trial once the total is spent, and
    ends because the total is spent."""
    budget_s = 60.0
    # 1-s trials on 2 slots, killed after 4 results (2 s idle, ~15 s on a loaded machine):
    # the restored run has most of the 60 s left to create trials in
    report = run_crash_restore(FACTORY, storage=str(tmp_path), name="time", kill_after=4,
                               factory_kwargs={"seconds": 1.0, "hours": budget_s / 3600},
                               introspect="tests.models._crash_factory:budget_states",
                               timeout_s=500)
    assert report["restore_error"] is None, log_excerpt(report["log"])
    info = report["introspection"]
    assert len(info["elapsed"]) == 2 and len(info["searchers"]) == 2, info
    before, after = info["elapsed"]  # the clock at the first run's last snapshot, at the end
    # the restored clock started from exactly that snapshot (a fresh clock would say None)
    assert info["restored_from"] == [None, before], info
    assert before >= 2.0, info
    assert after >= budget_s, info  # the restored run ended because the total was spent
    # the restored clock counted no more than the restore process lived (no double count)
    assert after - before <= info["restore_process_s"], info
    first, last = info["searchers"]
    old, created = first["created_s"], last["created_s"]
    assert all(created[t] == at for t, at in old.items()), info  # carried over
    new = {t: at for t, at in created.items() if t not in old}
    assert new, info  # the restored run did create trials
    # trials created after the restore: later in the budget than the snapshot it started
    # from, and none once the budget was spent; every trial that ran is one of them
    assert min(new.values()) >= before, info
    assert max(created.values()) < budget_s, info
    assert {t for t in info["grid_trial_ids"] if t} <= set(created), info
