"""Live control of a real run on Ray: stop, resume, delete and a warm clone while it runs."""

from __future__ import annotations

import os

import pytest

from rafiki_ray.control import Journal
from tests.control._live import User, chunk_history, issue, wait_for
from tests.runs._digits import base_config, digits_data, digits_spec


def _script(ctl, log):
    runs = ctl.runs
    wait_for(lambda: runs()["run-0000"]["chunks"] >= 1 and runs()["run-0001"]["checkpoint"],
             what="two runs past their first chunk")
    issue(ctl, log, "stop", "run-0000")
    issue(ctl, log, "clone", "run-0001", edits=["train.optimizer.args.lr=0.01"], warm=True)
    issue(ctl, log, "delete", "run-0003")
    issue(ctl, log, "stop", "run-0003")  # deleted: refused
    wait_for(lambda: runs()["run-0000"]["live"] is None, what="run-0000 halted")
    issue(ctl, log, "resume", "run-0000")
    issue(ctl, log, "resume", "run-0000")  # ongoing again: refused
    wait_for(lambda: runs()["run-0001"]["status"] == "completed", what="run-0001 completed")
    issue(ctl, log, "stop", "run-0001")  # completed: ignored


@pytest.mark.slow  # ~150 s on a loaded 2-core machine
def test_live_control_on_a_real_run(ray_session, tmp_path):
    from rafiki_ray.runs import run_fit

    tr, ev = digits_data(300, 100)
    configs = [base_config(epochs=3, delay=0.15), base_config(lr=0.1, delay=0.15),
               base_config(hidden=16), base_config(hidden=8)]
    storage = str(tmp_path / "results")
    exp = os.path.join(storage, "live")
    user = User(exp, _script)
    user.start()
    run_fit(digits_spec(), configs, tr, ev, storage_path=storage, name="live", num_chunks=3,
            max_concurrent_trials=2, metric="top1_accuracy", mode="max")
    user.join(timeout=60)
    assert user.error is None, repr(user.error)
    outcomes = [entry[:3] for entry in user.log]
    assert outcomes == [("stop", "run-0000", "applied"), ("clone", "run-0001", "applied"),
                        ("delete", "run-0003", "applied"), ("stop", "run-0003", "refused"),
                        ("resume", "run-0000", "applied"), ("resume", "run-0000", "refused"),
                        ("stop", "run-0001", "ignored")], user.log
    clone_id = user.log[1][3]
    from rafiki_ray.control import Control

    runs = Control(exp).runs()
    assert clone_id == "run-0004"
    assert {r: runs[r]["status"] for r in runs} == {
        "run-0000": "completed", "run-0001": "completed", "run-0002": "completed",
        "run-0003": "deleted", clone_id: "completed"}
    # the stopped run resumed from its checkpoint: its chunk count continues
    h0 = chunk_history(exp, "run-0000")
    assert len(h0) == 2 and h0[1][0] == h0[0][-1] + 1 and h0[0] + h0[1] == list(range(1, 10))
    # the warm clone starts at the parent's chunk, with the edited learning rate
    hc, hp = chunk_history(exp, clone_id), chunk_history(exp, "run-0001")
    assert runs[clone_id]["parent"] == "run-0001" and runs[clone_id]["warm"] is True
    assert 1 < hc[0][0] <= hp[0][-1] and hc[0][-1] == 6
    assert runs[clone_id]["config"]["train"]["optimizer"]["args"]["lr"] == 0.01
    # the deleted run lost its metrics, its TensorBoard files and took no more operations
    assert runs["run-0003"]["last"] == {}
    tb = os.listdir(os.path.join(exp, "tensorboard"))
    assert not [d for d in tb if d.startswith("run-0003")]
    assert {d.split("_")[0] for d in tb} == {"run-0000", "run-0001", "run-0002", clone_id}
    # every journaled operation has exactly one outcome
    j = Journal(exp)
    ids = [o["id"] for o in j.ops()]
    outs = [r["id"] for r in j.read() if r["kind"] == "outcome"]
    assert sorted(ids) == sorted(outs) and len(ids) == 5  # the refused two never journaled


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
