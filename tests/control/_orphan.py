"""A driver that crashes right after a clone's trial started, before Tune's next snapshot.

``factory`` (for :func:`rafiki_ray.testing._crash.run_crash_restore` with ``kill_after=None``)
builds three runs with a callback that, at run-0000's first result, journals a clone of it
(as a user would) and, at the clone trial's first result, SIGKILLs its own driver. In the
first child Tune snapshots only once, at its first step (``TUNE_GLOBAL_CHECKPOINT_S`` is
raised), so every trial started after it, the clone's included, leaves a folder that the
restored snapshot does not know.
"""

from __future__ import annotations

import glob
import json
import os
import signal
from typing import Any

from ray import tune

from tests.runs._digits import base_config, digits_data, digits_spec


class CloneThenCrash(tune.Callback):
    def __init__(self, exp_dir: str) -> None:
        self.exp_dir = exp_dir
        self.marker = exp_dir + "-crashed"
        self.issued = False

    def on_trial_result(self, iteration, trials, trial, result, **info):
        from rafiki_ray.control import Control
        from rafiki_ray.control.protocol import CONTROL_KEY

        if os.path.exists(self.marker):  # the restored run: no more crashes
            return
        run = trial.config.get(CONTROL_KEY) or {}
        if run.get("id") == "run-0000" and not self.issued:
            self.issued = True
            Control(self.exp_dir).op("clone", "run-0000",
                                     edits={"train.optimizer.args.lr": 0.2}, wait=False)
        elif run.get("clone_of"):
            with open(self.marker, "w") as f:
                f.write(trial.trial_id)
            os.kill(os.getpid(), signal.SIGKILL)


def factory(storage: str, name: str) -> tuple[Any, dict]:
    from rafiki_ray.runs import prepare

    exp_dir = os.path.join(os.path.abspath(storage), name)
    if not glob.glob(os.path.join(exp_dir, "experiment_state-*.json")):  # the first child
        os.environ["TUNE_GLOBAL_CHECKPOINT_S"] = "3600"
    tr, ev = digits_data(150, 60)
    configs = [base_config(lr=lr, hidden=8, epochs=1) for lr in (0.02, 0.05, 0.1)]
    trainable, kwargs, _ = prepare(digits_spec(), configs, tr, ev, storage_path=storage,
                                   name=name, num_chunks=3, metric="top1_accuracy", mode="max",
                                   callbacks=[CloneThenCrash(exp_dir)])
    return trainable, kwargs


def introspect(grid: Any, exp_dir: str) -> dict:
    from rafiki_ray.control import Journal

    folders = {}
    for params in glob.glob(os.path.join(exp_dir, "*", "params.json")):
        with open(params) as f:
            folders[os.path.basename(os.path.dirname(params))] = json.load(f)[
                "__rafiki_run"]["id"]
    with open(os.path.join(exp_dir, "rafiki_control", "status.json")) as f:
        status = json.load(f)
    return {"grid": sorted(r.metrics["trial_id"] for r in grid), "folders": folders,
            "tensorboard": sorted(os.listdir(os.path.join(exp_dir, "tensorboard"))),
            "status": status, "journal": Journal(exp_dir).read()}
