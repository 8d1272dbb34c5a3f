"""Live control of a real ``tune_model`` run (sklearn decision trees on digits): stop is
refused with the reason, a trial is cloned with an edited knob and another deleted."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from rafiki_ray.models import tune_model
from tests.control._live import User, issue, wait_for
from tests.models.conftest import example_model


def _script(ctl, log):
    runs = ctl.runs
    wait_for(lambda: runs()["run-0000"]["status"] == "completed", what="run-0000 completed")
    issue(ctl, log, "stop", "run-0000")
    issue(ctl, log, "clone", "run-0000", edits={"max_depth": 2})
    issue(ctl, log, "clone", "run-0000", edits={"max_depth": 99})  # out of the knob's range
    wait_for(lambda: "run-0001" in runs(), what="run-0001")
    issue(ctl, log, "delete", "run-0001")


@pytest.mark.slow  # ~40 s on the shared 2-core machine
def test_clone_and_delete_a_tune_model_trial(ray_session, storage, small_digits):
    from rafiki_ray.control import Control

    train, val, _ = small_digits
    exp = os.path.join(os.path.abspath(storage), "dt")
    user = User(exp, _script)
    user.start()
    result = tune_model(example_model("SkDt"), train, val, {"MODEL_TRIAL_COUNT": 8}, seed=0,
                        storage_path=storage, name="dt", max_concurrent_trials=1,
                        progress=False)
    user.join(timeout=60)
    assert user.error is None, repr(user.error)
    assert [e[:3] for e in user.log] == [
        ("stop", "run-0000", "refused"), ("clone", "run-0000", "applied"),
        ("clone", "run-0000", "refused"), ("delete", "run-0001", "applied")], user.log
    assert "trains in one call" in user.log[0][3]
    assert "max_depth" in user.log[2][3]
    clone = user.log[1][3]
    runs = Control(exp).runs()
    assert runs[clone]["status"] == "completed" and runs[clone]["parent"] == "run-0000"
    assert runs["run-0001"]["status"] == "deleted"
    # 8 advisor trials and the clone; the clone trained with the edited knob
    assert len(result.result_grid) == 9
    (clone_trial,) = runs[clone]["trials"]
    knobs = {**runs["run-0000"]["config"], "max_depth": 2}
    knobs.pop("_rafiki", None)
    got = [r for r in result.result_grid if r.metrics.get("trial_id") == clone_trial]
    assert len(got) == 1 and got[0].metrics["score"] > 0
    with got[0].checkpoint.as_directory() as d, open(os.path.join(d, "knobs.json")) as f:
        assert json.load(f) == knobs
    # the deleted trial lost its metrics: not in the table's scores nor among the best
    (deleted,) = runs["run-0001"]["trials"]
    row = result.table[result.table["trial_id"] == deleted].iloc[0]
    assert row["status"] == "DELETED" and pd.isna(row["score"])
    assert deleted not in [b.trial_id for b in result.best]
