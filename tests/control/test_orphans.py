"""After a driver crash between an operation's trial start and Tune's snapshot, the restored
experiment applies the operation once and leaves no second, orphaned folder of any run."""

from __future__ import annotations

import os
from collections import Counter

import pytest


@pytest.mark.slow  # ~1-2 min: two driver processes on the shared 2-core machine
def test_restore_discards_trial_folders_the_snapshot_does_not_know(tmp_path):
    from rafiki_ray.testing._crash import log_excerpt, run_crash_restore

    storage = str(tmp_path)
    report = run_crash_restore("tests.control._orphan:factory", storage=storage, name="orph",
                               kill_after=None, factory_kwargs={"storage": storage,
                                                                "name": "orph"},
                               introspect="tests.control._orphan:introspect", timeout_s=600)
    assert report["restore_error"] is None, log_excerpt(report["log"])
    info = report["introspection"]
    with open(os.path.join(storage, "orph-crashed")) as f:
        crashed_clone_trial = f.read()
    # the clone was applied once: four runs, the clone completed in a new trial
    runs = info["status"]["runs"]
    assert sorted(runs) == ["run-0000", "run-0001", "run-0002", "run-0003"]
    assert runs["run-0003"]["origin"] == "clone" and runs["run-0003"]["status"] == "completed"
    assert all(r["status"] == "completed" for r in runs.values())
    ops = [r for r in info["journal"] if r.get("kind") == "op"]
    assert len(ops) == 1 and info["status"]["ops"][ops[0]["id"]]["outcome"] == "applied"
    # one folder per run, each a trial of the restored experiment; the same in tensorboard/
    assert Counter(info["folders"].values()) == {r: 1 for r in runs}, info["folders"]
    assert all(any(t in name for t in info["grid"]) for name in info["folders"])
    assert len(info["grid"]) == 4
    assert Counter(n.split("_")[0] for n in info["tensorboard"]) == {r: 1 for r in runs}, \
        info["tensorboard"]
    # the crashed clone trial's folders were discarded, with the other unknown trials'
    discarded = [r["path"] for r in info["journal"] if r.get("kind") == "discarded"]
    assert any(crashed_clone_trial in p for p in discarded), discarded
