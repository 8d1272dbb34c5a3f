"""Factories for the driver-crash tests (imported by rafiki_ray.testing._crash's children)."""

from __future__ import annotations

import glob
import os
import pickle
from typing import Any

import numpy as np

from rafiki_ray.models.tuning import build_experiment
from rafiki_ray.sharing import ParamStore
from tests.models._probes import slow_probe

DUMMY = (np.zeros((4, 2)), np.zeros(4, dtype=int))


def tune_model_parts(seconds: float = 0.5, count: int = -1, hours: float = 0.1,
                     advisor: str = "RANDOM") -> tuple[Any, dict[str, Any]]:
    store = ParamStore.get_or_create("crash_params", mode="max")
    exp = build_experiment(slow_probe(seconds), DUMMY, DUMMY,
                           {"MODEL_TRIAL_COUNT": count, "TIME_HOURS": hours},
                           advisor=advisor, seed=0, store=store, max_concurrent_trials=2,
                           grace_period_s=1.0, progress=False)
    return exp.trainable, exp.tuner_kwargs


def clock_states(grid: Any, experiment_path: str) -> dict[str, Any]:
    """The BudgetClock's elapsed seconds in each Tune session's callback-state file, oldest
    session first (files are named by the session's start time; the first run's file stays
    next to the restored run's), and how long this (the restore) process has lived."""
    import time

    import psutil

    out, restored = [], []
    for path in sorted(glob.glob(os.path.join(experiment_path, "callback-states-*.pkl"))):
        with open(path, "rb") as f:
            states = pickle.load(f)
        for state in states.values():
            if isinstance(state, dict) and "elapsed_s" in state and "grace_s" in state:
                out.append(float(state["elapsed_s"]))
                restored.append(state.get("restored_from_s"))
    return {"elapsed": out, "restored_from": restored,
            "restore_process_s": time.time() - psutil.Process().create_time()}


def budget_states(grid: Any, experiment_path: str) -> dict[str, Any]:
    """:func:`clock_states` plus, per driver session (oldest first), the AdvisorSearch state
    Tune saved (``searcher-state-<session>.pkl``: trials suggested and the budget seconds at
    each suggestion) and the trial ids of the final result grid."""
    out = clock_states(grid, experiment_path)
    searchers = []
    # session files are named by the session's start time: sorted names = session order
    for path in sorted(glob.glob(os.path.join(experiment_path, "searcher-state-*.pkl"))):
        with open(path, "rb") as f:
            payload = pickle.load(f)
        state = payload["state"]
        searchers.append({"kind": payload["kind"], "n": state["n"],
                          "created_s": state["created_s"]})
    out["searchers"] = searchers
    out["grid_trial_ids"] = sorted((r.metrics or {}).get("trial_id") for r in grid)
    return out
