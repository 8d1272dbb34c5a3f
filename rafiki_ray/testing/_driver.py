"""Drive a real scheduler through Tune's scheduler interface without a cluster.

``SimController`` stands in for Tune's ``TuneController`` (only what a scheduler may touch:
``get_trials``, ``get_live_trials``, ``search_alg``, ``_set_trial_status``, ``pause_trial``,
``stop_trial``) and :func:`drive` runs a discrete-event simulation with ``workers`` parallel
slots over real :class:`ray.tune.experiment.Trial` objects (stub trials), replaying a learning
curve ``curve(index, step) -> metric``. Paused trials resume where they stopped (as from a
checkpoint). Each time a worker is free, a new trial is added when none is pending (as a
searcher behind ``max_concurrent_trials`` would, up to ``n_trials``), then the scheduler's
``choose_trial_to_run`` picks, and a PENDING trial runs if it picked none (Tune's order).

The log records every decision, the per-hook timings and the final statuses; a run that
leaves trials PAUSED with nothing running raises :class:`StallError`.
"""

from __future__ import annotations

import heapq
import math
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

__all__ = ["SimController", "SimLog", "StallError", "drive", "make_trials"]


class StallError(RuntimeError):
    """The experiment can make no progress although trials are not finished."""


def make_trials(n: int, start: int = 0) -> list[Trial]:
    """``n`` stub trials (no trainable needed) whose config is ``{"i": index}``."""
    return [Trial("__fake", config={"i": start + k}, stub=True) for k in range(n)]


class SimController:
    """The subset of ``TuneController`` a scheduler is allowed to use."""

    def __init__(self, scheduler: TrialScheduler) -> None:
        self.scheduler = scheduler
        self.trials: list[Trial] = []
        self.search_alg = None
        self.last_result: dict[str, dict[str, Any]] = {}

    # Tune's whitelisted API
    def get_trials(self) -> list[Trial]:
        return self.trials

    def get_live_trials(self) -> set[Trial]:
        return {t for t in self.trials if t.status not in (Trial.TERMINATED, Trial.ERROR)}

    def _set_trial_status(self, trial: Trial, status: str) -> None:
        trial.set_status(status)

    def pause_trial(self, trial: Trial, should_checkpoint: bool = True) -> None:
        trial.set_status(Trial.PAUSED)

    def stop_trial(self, trial: Trial) -> None:
        if trial.status in (Trial.ERROR, Trial.TERMINATED):
            return
        if trial.status in (Trial.PENDING, Trial.PAUSED):
            self.scheduler.on_trial_remove(self, trial)
        else:
            self.scheduler.on_trial_complete(self, trial, self.last_result.get(trial.trial_id, {}))
        trial.set_status(Trial.TERMINATED)

    # helpers for drivers
    def add_trial(self, trial: Trial) -> None:
        self.trials.append(trial)
        self.scheduler.on_trial_add(self, trial)


@dataclass
class SimLog:
    """What happened in a :func:`drive` run."""

    decisions: list[tuple[int, float, str]] = field(default_factory=list)  # (index, time, dec)
    result_times: list[float] = field(default_factory=list)  # seconds per on_trial_result
    choose_times: list[float] = field(default_factory=list)  # seconds per choose_trial_to_run
    steps: dict[int, int] = field(default_factory=dict)  # index -> steps trained
    statuses: dict[int, str] = field(default_factory=dict)
    starts: list[int] = field(default_factory=list)  # order in which trials were (re)started
    trials: list[Trial] = field(default_factory=list)
    controller: SimController | None = None
    scheduler: Any = None

    @property
    def n_results(self) -> int:
        return len(self.result_times)

    def max_decision_ms(self) -> float:
        times = self.result_times + self.choose_times
        return 1e3 * max(times) if times else 0.0

    def mean_decision_ms(self) -> float:
        times = self.result_times + self.choose_times
        return 1e3 * float(np.mean(times)) if times else 0.0


def default_curve(seed: int = 0) -> Callable[[int, int], float]:
    """A family of decreasing loss curves ``a + b / (1 + t)`` with crossing ranks."""
    rng = np.random.default_rng(seed)
    cache: dict[int, tuple[float, float]] = {}

    def curve(i: int, t: int) -> float:
        if i not in cache:
            cache[i] = (float(rng.uniform(0.0, 1.0)), float(rng.uniform(0.0, 2.0)))
        a, b = cache[i]
        return a + b / (1.0 + t)

    return curve


def drive(
    scheduler: TrialScheduler,
    curve: Callable[[int, int], float] | None = None,
    *,
    n_trials: int = 20,
    horizon: int = 9,
    workers: int = 2,
    metric: str = "loss",
    time_attr: str = "training_iteration",
    time_scale: float = 1.0,
    checkpoint: bool = True,
    fail_at: dict[int, int] | None = None,
    end_at: dict[int, int] | None = None,
    speeds: dict[int, float] | None = None,
    controller: SimController | None = None,
    max_events: int = 10_000_000,
    reincarnate: Callable[[dict[str, Any]], TrialScheduler] | None = None,
    reincarnate_every: int = 0,
    check_idempotent: bool = False,
    log: SimLog | None = None,
) -> SimLog:
    """Simulate an experiment of ``n_trials`` trainables of ``horizon`` steps on ``workers``.

    ``fail_at[i] = k``: trial ``i`` errors at step ``k``; ``end_at[i] = k``: it returns after
    step ``k`` (before the horizon). ``time_attr`` values are ``step * time_scale``.
    ``reincarnate(state) -> scheduler`` with ``reincarnate_every = n``: after every n-th result
    the scheduler is replaced by a new one built from ``get_state()``, which then sees
    ``on_trial_add`` for every trial (as after ``Tuner.restore``); the decisions must not change.
    ``check_idempotent``: call ``choose_trial_to_run`` twice each time and require the same
    trial and an unchanged state the second time.
    """
    curve = curve or default_curve()
    fail_at = fail_at or {}
    end_at = end_at or {}
    speeds = speeds or {}
    ctrl = controller or SimController(scheduler)
    log = log or SimLog()
    log.controller = ctrl
    log.scheduler = scheduler
    index = {t.trial_id: t.config["i"] for t in ctrl.trials}
    steps: dict[str, int] = {t.trial_id: log.steps.get(index[t.trial_id], 0) for t in ctrl.trials}
    clock = 0.0
    heap: list[tuple[float, int, str]] = []  # (finish time, seq, trial id)
    by_id = {t.trial_id: t for t in ctrl.trials}
    seq = 0
    events = 0

    def start(trial: Trial) -> None:
        nonlocal seq
        trial.set_status(Trial.RUNNING)
        i = index[trial.trial_id]
        log.starts.append(i)
        seq += 1
        heapq.heappush(heap, (clock + speeds.get(i, 1.0), seq, trial.trial_id))

    while events < max_events:
        # Fill free workers: the scheduler's choice first, then pending, then a new trial.
        while len(heap) < workers:
            # As Tune's step: the searcher adds a trial first (one pending at a time, as
            # behind max_concurrent_trials), then the scheduler chooses, then PENDING ones run.
            if len(ctrl.trials) < n_trials and not any(
                t.status == Trial.PENDING for t in ctrl.trials
            ):
                new = make_trials(1, start=len(ctrl.trials))[0]
                index[new.trial_id] = new.config["i"]
                steps[new.trial_id] = 0
                by_id[new.trial_id] = new
                ctrl.add_trial(new)
            t0 = time.perf_counter()
            trial = scheduler.choose_trial_to_run(ctrl)
            log.choose_times.append(time.perf_counter() - t0)
            if check_idempotent:  # Tune may call it again before acting on the answer
                before = pickle.dumps(scheduler.get_state())
                again = scheduler.choose_trial_to_run(ctrl)
                if again is not trial or pickle.dumps(scheduler.get_state()) != before:
                    raise AssertionError(
                        f"choose_trial_to_run is not idempotent: {trial} then {again}"
                    )
            if trial is not None and trial.status not in (Trial.PENDING, Trial.PAUSED):
                raise AssertionError(f"choose_trial_to_run returned a {trial.status} trial")
            if trial is None:
                pending = [t for t in ctrl.trials if t.status == Trial.PENDING]
                if not pending:
                    break
                trial = pending[0]
            start(trial)
        if not heap:
            stuck = [index[t.trial_id] for t in ctrl.trials if t.status == Trial.PAUSED]
            if stuck:
                raise StallError(f"trials {stuck} stay PAUSED and nothing runs")
            break
        clock, _, tid = heapq.heappop(heap)
        trial = by_id[tid]
        if trial.status != Trial.RUNNING:  # stopped by the scheduler while running
            continue
        i = index[tid]
        steps[tid] += 1
        k = steps[tid]
        log.steps[i] = k
        events += 1
        if fail_at.get(i) == k:
            # a final error, in Tune's order: on_trial_error while RUNNING, then ERROR
            # (a retry would come as ERROR first; see _tune_seam.retrying)
            scheduler.on_trial_error(ctrl, trial)
            trial.set_status(Trial.ERROR)
            continue
        value = curve(i, k)
        result = {
            metric: value,
            time_attr: k * time_scale,
            "training_iteration": k,
            "trial_id": tid,
            "should_checkpoint": bool(checkpoint),
        }
        if time_attr != "training_iteration":
            result[time_attr] = k * time_scale
        ctrl.last_result[tid] = result
        t0 = time.perf_counter()
        decision = scheduler.on_trial_result(ctrl, trial, result)
        log.result_times.append(time.perf_counter() - t0)
        log.decisions.append((i, k * time_scale, decision))
        if trial.status != Trial.RUNNING:
            continue
        finished = k >= horizon or end_at.get(i) == k
        if decision == TrialScheduler.CONTINUE and not finished:
            seq += 1
            heapq.heappush(heap, (clock + speeds.get(i, 1.0), seq, tid))
        elif decision == TrialScheduler.PAUSE and not finished:
            trial.set_status(Trial.PAUSED)
        elif decision in (TrialScheduler.CONTINUE, TrialScheduler.PAUSE, TrialScheduler.STOP):
            scheduler.on_trial_complete(ctrl, trial, result)
            trial.set_status(Trial.TERMINATED)
        elif decision == TrialScheduler.NOOP:
            pass
        else:
            raise AssertionError(f"invalid decision {decision!r}")
        if reincarnate is not None and reincarnate_every and log.n_results % reincarnate_every == 0:
            scheduler = reincarnate(scheduler.get_state())
            ctrl.scheduler = scheduler
            for t in ctrl.trials:
                scheduler.on_trial_add(ctrl, t)
    log.trials = list(ctrl.trials)
    log.scheduler = scheduler
    log.statuses = {index[t.trial_id]: t.status for t in ctrl.trials}
    if any(math.isnan(x) for x in log.result_times):  # pragma: no cover - sanity
        raise AssertionError("bad timing")
    return log
