"""Hyperparameter schedules recorded by PBT, and their replay.

Jaderberg et al. 2017 (Sec. 4) note that PBT finds a *schedule* of hyperparameters; Ray's
``PopulationBasedTrainingReplay`` retrains one trial with the schedule of a PBT member. Here a
schedule is a list ``[{"step": s, "config": {...}, "trial_id": who}]``; :func:`config_at`
gives the config in force at a step and :class:`PBTReplay` applies a schedule to running
trials in place (through the same :class:`PBTSession` message slot PBT uses, no restart), or,
for a trainable written for Ray's PBT (no PBTSession), by restarting the trial from its latest
checkpoint with the new config, as Ray's ``PopulationBasedTrainingReplay`` does.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ray.tune.schedulers import TrialScheduler

from rafiki_ray import _tune_seam
from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray.schedulers._base import CheckpointRequiredError, RafikiScheduler
from rafiki_ray.schedulers._pbt_explore import flatten_config, instruction_key
from rafiki_ray.schedulers._pbt_session import APPLIED_KEY, DEFAULT_STORE

if TYPE_CHECKING:
    import pandas as pd
    from ray.tune.experiment import Trial

__all__ = ["PBTReplay", "check_schedule", "config_at", "lineage_frame", "lineage_schedule"]


def lineage_frame(lineage: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """PBT's lineage rows as a DataFrame (see :meth:`PBT.lineage`)."""
    import pandas as pd

    rows = []
    for row in lineage:
        r = {k: v for k, v in row.items() if k != "seq"}
        r.update({f"config/{k}": v for k, v in flatten_config(row["config"]).items()})
        rows.append(r)
    cols = ["trial_id", "event", "step", "member_step", "wall_time", "source", "source_score",
            "score", "changed", "instruction", "applied", "dropped", "via", "config"]
    return pd.DataFrame(rows, columns=None if rows else cols)


def lineage_schedule(
    lineage: Sequence[Mapping[str, Any]], trial_id: str, *, inherited: bool = True
) -> list[dict[str, Any]]:
    """The schedule of ``trial_id`` from PBT lineage rows (see :meth:`PBT.schedule`)."""

    def own(tid: str, before: float) -> list[Mapping[str, Any]]:
        # exploits decided at a member's last report were never applied: not in its schedule
        return [r for r in lineage
                if r["trial_id"] == tid and r["seq"] < before and not r.get("dropped")]

    def walk(tid: str, before: float, depth: int) -> list[dict[str, Any]]:
        rows = own(tid, before)
        if not rows:
            return []
        exploits = [r for r in rows if r["event"] == "exploit"]
        if not inherited or not exploits or depth > 10_000:
            return [_entry(r) for r in rows]
        last = exploits[-1]
        head = [e for e in walk(last["source"], last["seq"], depth + 1) if e["step"] < last["step"]]
        return head + [_entry(last)]

    return walk(trial_id, float("inf"), 0)


def _entry(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"step": row["step"], "config": copy.deepcopy(row["config"]), "trial_id": row["trial_id"]}


def check_schedule(schedule: Any, path: str = "schedule") -> list[dict[str, Any]]:
    if isinstance(schedule, (str, bytes)) or not isinstance(schedule, Sequence) or not schedule:
        raise invalid_type(path, "must be a non-empty list of {'step', 'config'} dicts", schedule)
    out = []
    last = -float("inf")
    for i, e in enumerate(schedule):
        if not isinstance(e, Mapping) or "step" not in e or not isinstance(e.get("config"), Mapping):
            raise invalid(f"{path}[{i}]", "must be a dict with 'step' and 'config'", e)
        if e["step"] < last:
            raise invalid(f"{path}[{i}].step", "steps must not decrease", e["step"])
        last = e["step"]
        out.append({"step": e["step"], "config": copy.deepcopy(dict(e["config"]))})
    return out


def config_at(schedule: Sequence[Mapping[str, Any]], step: float) -> dict[str, Any]:
    """The config in force at ``step``: the last entry whose step is ``<= step``."""
    entries = check_schedule(schedule)
    current = entries[0]["config"]
    for e in entries:
        if e["step"] <= step:
            current = e["config"]
    return copy.deepcopy(current)


class PBTReplay(RafikiScheduler):
    """Replay a PBT hyperparameter schedule on running trials, in place.

    Every trial starts with ``schedule[0]["config"]`` (pass it as the Tuner's param_space)
    and, once its ``time_attr`` reaches an entry's step, receives that entry's config through
    :class:`PBTSession` (``Exploit.params`` is ``None``: only the hyperparameters change).
    A trial that does not report through PBTSession is restarted from its latest registered
    checkpoint (the last one reported before that result) with the entry's config.
    """

    def __init__(
        self,
        schedule: Sequence[Mapping[str, Any]],
        *,
        metric: str | None = None,
        mode: str | None = None,
        time_attr: str = "training_iteration",
        store: str = DEFAULT_STORE,
        namespace: str | None = None,
        persist: bool = False,
    ) -> None:
        super().__init__(metric=metric, mode=mode, time_attr=time_attr, persist=persist)
        self._schedule = check_schedule(schedule, "PBTReplay.schedule")
        self._store_name, self._namespace = store, namespace
        self._store: Any = None
        self._done: dict[str, int] = {}  # trial id -> number of schedule entries applied
        self._next_id = 0

    @property
    def initial_config(self) -> dict[str, Any]:
        return copy.deepcopy(self._schedule[0]["config"])

    def _require_metric(self) -> None:  # replay needs no metric
        return

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_store"] = None
        return state

    @property
    def store(self) -> Any:
        if self._store is None:
            from rafiki_ray.sharing.param_store import ParamStore

            self._store = ParamStore.get_or_create(self._store_name, namespace=self._namespace)
        return self._store

    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        super().on_trial_add(tune_controller, trial)
        _ = self.store  # created on the driver, before the trial's PBTSession looks for it

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict[str, Any]) -> str:
        t = self._time(result)
        if t is None:
            return TrialScheduler.CONTINUE
        done = self._done.get(trial.trial_id, 1)
        due = [i for i in range(done, len(self._schedule)) if self._schedule[i]["step"] <= t]
        if due and APPLIED_KEY not in result:  # Ray's style: restart from its checkpoint
            entry = self._schedule[due[-1]]
            found = _tune_seam.latest_checkpoint(trial)
            if found is None:
                raise CheckpointRequiredError(
                    f"PBTReplay: trial {trial.trial_id} must switch to {entry['config']} at "
                    f"{self._time_attr}={entry['step']:g} but neither reports through "
                    f"PBTSession nor has reported a checkpoint: report one with "
                    f"tune.report(metrics, checkpoint=...) and restore from "
                    f"tune.get_checkpoint(), or use PBTSession.report")
            trial.set_config(copy.deepcopy(entry["config"]))
            _tune_seam.restart_from_checkpoint(tune_controller, trial, *found)
            self._done[trial.trial_id] = due[-1] + 1
            return TrialScheduler.NOOP
        if due:
            entry = self._schedule[due[-1]]
            self._next_id += 1
            self.store.post(instruction_key(trial.trial_id), {
                "id": self._next_id, "source": None, "source_step": None,
                "config": copy.deepcopy(entry["config"]), "weight_noise": 0.0,
                "noise_seed": 0, "time": time.time(),
            })
            trial.set_config(copy.deepcopy(entry["config"]))
            self._done[trial.trial_id] = due[-1] + 1
        return TrialScheduler.CONTINUE

    def _get_state(self) -> dict[str, Any]:
        return {"done": dict(self._done), "next_id": self._next_id, "schedule": self._schedule}

    def _set_state(self, state: dict[str, Any]) -> None:
        self._done = dict(state["done"])
        self._next_id = state["next_id"]
        self._schedule = state["schedule"]
