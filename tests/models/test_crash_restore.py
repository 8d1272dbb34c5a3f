"""tune_model's budget across a driver SIGKILL and Tuner.restore (rafiki_ray.testing._crash)."""

from __future__ import annotations

import pytest

from rafiki_ray.testing._crash import log_excerpt, run_crash_restore

pytestmark = pytest.mark.slow
FACTORY = "tests.models._crash_factory:tune_model_parts"


def test_model_trial_count_is_exact_across_a_crash(tmp_path):
    report = run_crash_restore(FACTORY, storage=str(tmp_path), name="count", kill_after=3,
                               factory_kwargs={"count": 8, "seconds": 0.5, "hours": 1.0},
                               timeout_s=500)
    assert report["restore_error"] is None, log_excerpt(report["log"])
    trials = report["trials"]
    assert len(trials) == 8, log_excerpt(report["log"])
    assert all(t["last"].get("score") is not None for t in trials.values())


def test_time_budget_continues_after_a_crash(tmp_path):
    """The clock's elapsed seconds are Tune callback state: the restored run starts from the
    first run's last snapshot (not from 0) and stops creating trials when the total is spent."""
    hours = 40 / 3600
    # 1-s trials on 2 slots: 10 results take >= 5 s, so the first run spends part of the 40 s
    report = run_crash_restore(FACTORY, storage=str(tmp_path), name="time", kill_after=10,
                               factory_kwargs={"seconds": 1.0, "hours": hours},
                               introspect="tests.models._crash_factory:clock_states",
                               timeout_s=500)
    assert report["restore_error"] is None, log_excerpt(report["log"])
    info = report["introspection"]
    assert len(info["elapsed"]) == 2, info  # one file per driver session
    before, after = info["elapsed"]
    assert before >= 5.0 and after >= before + 0.5, info  # continued from the snapshot
    assert after >= 40.0, info  # the restored run ended because the total budget was spent
    # (the restore process's own lifetime, ray.init included, is too noisy on a loaded
    # machine to separate a carried-over clock from a restarted one; see test_advisors'
    # test_time_budget_ends_suggestions for set_state continuing the count)
