"""Live control on a hand-written Tune experiment: a plain function trainable, rafiki_ray's
TPESearch proposing the runs and ASHA pausing/stopping them; stop, resume and a cold clone."""

from __future__ import annotations

import json
import os
import tempfile

import pytest
from ray import tune

from tests.control._live import User, issue, wait_for


def _train(config):
    """A curve that reports with a checkpoint; resumes through start_checkpoint."""
    from rafiki_ray.control import start_checkpoint

    start = 0
    ckpt, _kind = start_checkpoint(config)
    if ckpt is not None:
        with ckpt.as_directory() as d, open(os.path.join(d, "s.json")) as f:
            start = json.load(f)["t"]
    for t in range(start + 1, 9):
        import time

        time.sleep(0.3)
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "s.json"), "w") as f:
                json.dump({"t": t}, f)
            tune.report({"score": config["x"] * t, "chunks_done": t},
                        checkpoint=tune.Checkpoint.from_directory(d))


def _script(ctl, log):
    runs = ctl.runs
    wait_for(lambda: runs()["run-0000"]["checkpoint"], what="run-0000's first checkpoint")
    issue(ctl, log, "stop", "run-0000")
    issue(ctl, log, "clone", "run-0000", edits={"x": 0.99})
    wait_for(lambda: runs()["run-0000"]["live"] is None, what="run-0000 halted")
    issue(ctl, log, "resume", "run-0000")


@pytest.mark.slow  # ~1-2 min on the shared 2-core machine
def test_control_with_a_searcher_and_asha(ray_session, tmp_path):
    from rafiki_ray.control import Control, LiveControl
    from rafiki_ray.schedulers import ASHA
    from rafiki_ray.searchers import TPESearch

    exp = os.path.join(str(tmp_path), "any")
    searcher = TPESearch({"x": tune.uniform(0.1, 0.9)}, metric="score", mode="max", seed=0,
                         n_startup_trials=3)
    ctl = LiveControl(exp, searcher=searcher, num_samples=5, seed=0)
    user = User(exp, _script)
    user.start()
    tune.Tuner(tune.with_resources(_train, {"cpu": 0.5}),
               tune_config=tune.TuneConfig(search_alg=ctl.searcher, num_samples=-1,
                                           scheduler=ASHA(metric="score", mode="max",
                                                          grace_period=2, max_t=8,
                                                          reduction_factor=2, seed=0),
                                           reuse_actors=True, max_concurrent_trials=3),
               run_config=tune.RunConfig(storage_path=str(tmp_path), name="any", verbose=0,
                                         callbacks=[ctl.callback], stop=ctl.stopper)).fit()
    user.join(timeout=60)
    assert user.error is None, repr(user.error)
    assert [e[:3] for e in user.log] == [("stop", "run-0000", "applied"),
                                         ("clone", "run-0000", "applied"),
                                         ("resume", "run-0000", "applied")], user.log
    runs = Control(exp).runs()
    assert len(runs) == 6  # five proposed by the searcher, one clone
    clone_id = user.log[1][3]
    assert sorted(r for r, v in runs.items() if v["origin"] == "searcher") == sorted(
        set(runs) - {clone_id})
    clone = runs[clone_id]
    assert clone["origin"] == "clone" and clone["config"]["x"] == 0.99 and not clone["warm"]
    assert all(v["status"] == "completed" for v in runs.values())
    assert len(runs["run-0000"]["trials"]) == 2
    # ASHA saw every trial: its state knows the clone's and the resumed run's trials
    from rafiki_ray.experiment_data import load_experiment

    data = load_experiment(exp)
    assert data.scheduler_state["class"] == "ASHA"
    seen = set(data.scheduler_state["sub"]["bracket_of"])
    assert set(clone["trials"]) <= seen and set(runs["run-0000"]["trials"]) <= seen
