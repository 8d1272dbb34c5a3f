"""The issue's main test: two dozen configurations on digits with a small PyTorch network,
stop / resume / delete / warm clone issued while they run, checked against the rules; the
same across a driver crash and restore; TensorBoard files read back."""

from __future__ import annotations

import os

import pytest

from rafiki_ray.control import Control
from tests.control import _main
from tests.control._live import User

pytestmark = pytest.mark.slow


def test_two_dozen_runs_under_live_control(ray_session, tmp_path):
    from ray import tune
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    storage = str(tmp_path)
    exp = os.path.join(storage, "main")
    user = User(exp, _main.script)
    user.start()
    trainable, kwargs = _main.factory(storage, "main")
    grid = tune.Tuner(trainable, **kwargs).fit()
    user.join(timeout=60)
    assert user.error is None, repr(user.error)
    _main.check(_main.introspect(grid, exp), user.log)
    # TensorBoard: one event dir per trial of the runs that were not deleted, with HParams
    tb = os.path.join(exp, "tensorboard")
    dirs = os.listdir(tb)
    assert len(dirs) == 25 and not [d for d in dirs if d.startswith("run-0020")]
    ea = EventAccumulator(os.path.join(tb, next(d for d in dirs if d.startswith("run-0024"))))
    ea.Reload()
    assert set(ea.PluginTagToContent("hparams")) == {
        "_hparams_/session_start_info", "_hparams_/experiment", "_hparams_/session_end_info"}
    assert {"top1_accuracy", "loss", "chunks_done"} <= set(ea.Tags()["scalars"])
    assert Control(exp).runs()["run-0024"]["status"] == "completed"


def test_two_dozen_runs_across_a_driver_crash(tmp_path):
    from rafiki_ray.testing._crash import log_excerpt, run_crash_restore

    storage = str(tmp_path)
    exp = os.path.join(storage, "crash")
    at_kill = os.path.join(storage, "crash-at-kill")  # the harness makes it after the kill
    user = User(exp, lambda ctl, log: _main.crash_script(ctl, log, at_kill))
    user.start()
    report = run_crash_restore("tests.control._main:factory", storage=storage, name="crash",
                               kill_after=6, factory_kwargs={"storage": storage,
                                                             "name": "crash"},
                               introspect="tests.control._main:introspect", timeout_s=1500)
    user.join(timeout=60)
    assert report["restore_error"] is None, log_excerpt(report["log"])
    assert user.error is None, repr(user.error)
    assert report["results_before_kill"] >= 6
    _main.check_crash(report["introspection"], user.log)
