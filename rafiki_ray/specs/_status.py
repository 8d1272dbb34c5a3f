"""Experiment status: T9k's phases and a status file that Tune callbacks keep current.

Phases (T9k ``AutoTuneExperiment``, formats.md section 5), used for every source:

* ``PENDING``: built, not started;
* ``RUNNING``;
* ``DONE``: every planned trial finished (any outcome), or the search ran out of
  configurations, or an early-stopping rule (Polyaxon) ended the experiment;
* ``TIMEOUT``: the time limit (``maxExecSeconds`` / ``maxExperimentDuration``) passed first;
* ``ERROR``: the experiment itself failed (not a trial: failed trials are ``DONE`` outcomes);
* ``INTERRUPTED`` (our addition): stopped by Ctrl-C / SIGINT / a crash; ``resume`` continues it.

The status file ``rafiki_status.json`` in the experiment directory holds the phase, trial
counts by state, the best result so far and timestamps; ``rafiki-ray status`` reads it.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from ray.tune import Callback, Stopper

__all__ = ["FINISHED_STATES", "PHASES", "STATUS_FILE", "EarlyStopper", "StatusTracker", "read_status",
           "write_status"]

PHASES = ("PENDING", "RUNNING", "DONE", "TIMEOUT", "ERROR", "INTERRUPTED")
STATUS_FILE = "rafiki_status.json"
#: Trial states that count as finished; ``EARLY_STOPPED`` (NNI's name): stopped at the
#: trial time limit, its reported results kept.
FINISHED_STATES = ("TERMINATED", "EARLY_STOPPED", "ERROR")
_WRITE_EVERY_S = 1.0


def write_status(exp_dir: str | os.PathLike[str], data: dict[str, Any]) -> None:
    """Write the status file atomically (temporary file, then rename)."""
    path = Path(exp_dir) / STATUS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)


def read_status(exp_dir: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(exp_dir) / STATUS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{exp_dir}: no {STATUS_FILE} (not a rafiki-ray experiment?)")
    return json.loads(path.read_text(encoding="utf-8"))


class StatusTracker(Callback):
    """Counts trials by state, keeps the best result and writes the status file."""

    def __init__(self, exp_dir: str, *, metric: str | None, mode: str,
                 base: dict[str, Any], final_only: bool = False) -> None:
        self.exp_dir = str(exp_dir)
        self.final_only = final_only  # NNI / T9k: a trial's result is its final result
        self.metric = metric
        self.mode = mode
        self.data = dict(base)
        self.data.setdefault("trials", {})
        self.data.setdefault("best", None)
        self._last_write = 0.0

    # --------------------------------------------------------------- bookkeeping
    def _set(self, trial: Any, state: str) -> None:
        self.data["trials"][trial.trial_id] = state
        self._write()

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for state in self.data["trials"].values():
            out[state] = out.get(state, 0) + 1
        return out

    def finished(self) -> int:
        c = self.counts()
        return sum(c.get(s, 0) for s in FINISHED_STATES)

    def _better(self, value: float, best: float) -> bool:
        return value > best if self.mode == "max" else value < best

    def _write(self, force: bool = False) -> None:
        now = time.time()
        if not force and now - self._last_write < _WRITE_EVERY_S:
            return
        self._last_write = now
        self.data["counts"] = self.counts()
        self.data["updated"] = now
        write_status(self.exp_dir, self.data)

    def set_phase(self, phase: str, **extra: Any) -> None:
        self.data["phase"] = phase
        self.data.update(extra)
        self._write(force=True)

    # --------------------------------------------------------------- Tune hooks
    def setup(self, **info: Any) -> None:
        """Called by Tune at the start of a run and of a restored run: reload what an earlier
        session wrote (a restored tracker is the pickled one) and watch for SIGINT."""
        try:
            old = read_status(self.exp_dir)
        except (FileNotFoundError, ValueError):
            old = {}
        for key in ("trials", "best", "started", "early_stopped"):
            if old.get(key) is not None:
                self.data[key] = old[key]
        self.data["interrupted"] = False
        self.data["phase"] = "RUNNING"
        if self.data.get("started") is None:
            self.data["started"] = time.time()
        self._write(force=True)
        self._watch_sigint()

    def _watch_sigint(self) -> None:
        """Tune's own handler (installed before callbacks are set up) ends the run on SIGINT;
        ours, chained in front of it, records that the run was interrupted."""
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGINT)

        def handler(sig: int, frame: Any) -> None:
            self.data["interrupted"] = True
            self._write(force=True)
            if callable(previous):
                previous(sig, frame)

        signal.signal(signal.SIGINT, handler)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._set(trial, "RUNNING")

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        if self.metric is not None and (not self.final_only or result.get("final") is True):
            value = result.get(self.metric)
            if isinstance(value, (int, float)) and not math.isnan(value):
                best = self.data.get("best")
                if best is None or self._better(float(value), best["value"]):
                    self.data["best"] = {"value": float(value), "trial_id": trial.trial_id,
                                         "config": _plain(trial.config)}
        self._write()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        from rafiki_ray.progress import timed_out

        self._set(trial, "EARLY_STOPPED" if timed_out(trial) else "TERMINATED")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._set(trial, "ERROR")

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        for trial in trials:
            if trial.status not in ("TERMINATED", "ERROR"):
                self.data["trials"][trial.trial_id] = str(trial.status)
        self._write(force=True)

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__.copy()


class EarlyStopper(Stopper):
    """Polyaxon ``early_stopping``: once any trial reports a metric at or beyond its rule's
    value, every trial stops and no new one starts."""

    def __init__(self, rules: list[dict[str, Any]]) -> None:
        self.rules = [dict(r) for r in rules]
        self.triggered: dict[str, Any] | None = None

    def _hit(self, result: dict[str, Any]) -> dict[str, Any] | None:
        for rule in self.rules:
            value = result.get(rule["metric"])
            if not isinstance(value, (int, float)) or math.isnan(value):
                continue
            if rule["optimization"] == "maximize" and value >= rule["value"]:
                return {**rule, "reached": float(value)}
            if rule["optimization"] == "minimize" and value <= rule["value"]:
                return {**rule, "reached": float(value)}
        return None

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        if self.triggered is None:
            hit = self._hit(result)
            if hit is not None:
                self.triggered = {**hit, "trial_id": trial_id}
        return self.triggered is not None

    def stop_all(self) -> bool:
        return self.triggered is not None


def _plain(config: Any) -> Any:
    from rafiki_ray.spaces.adapters._configlist import INDEX_KEY

    if isinstance(config, dict):
        config = {k: v for k, v in config.items() if k != INDEX_KEY}
        if isinstance(config.get("__parameters__"), dict):
            config = config["__parameters__"]
    try:
        return json.loads(json.dumps(config, default=str))
    except (TypeError, ValueError):
        return str(config)
