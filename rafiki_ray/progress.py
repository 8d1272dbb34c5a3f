"""A small progress display for Tune runs: trials done, best score, time left.

:class:`ProgressCallback` is a ``tune.Callback``; it writes one plain line at most every
``interval_s`` seconds (and one at the end), so it reads the same in a terminal, a log file
and a notebook cell (no cursor control). Its counters are Tune callback state, so after
``Tuner.restore`` the display continues instead of restarting at zero.

Example::

    tune.RunConfig(callbacks=[ProgressCallback(metric="score", mode="max",
                                               total_trials=20, time_budget_s=600)])
    # [rafiki] trials 7/20 done, 2 running | best score 0.9612 (trial 3f2a_00004) | 7m41s left
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import IO, Any

from ray.tune import Callback

from rafiki_ray._errors import invalid, invalid_type

__all__ = ["ProgressCallback", "format_duration"]


def format_duration(seconds: float) -> str:
    """``3725`` -> ``"1h02m05s"``; ``65`` -> ``"1m05s"``; ``4.2`` -> ``"4s"``."""
    s = max(0, round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h}h{m:02d}m{sec:02d}s"
    if m:
        return f"{m}m{sec:02d}s"
    return f"{sec}s"


class ProgressCallback(Callback):
    """Throttled one-line progress of a Tune experiment.

    Args:
        metric: the metric whose best value is shown (``None``: not shown).
        mode: ``"max"`` or ``"min"``.
        total_trials: the trial budget, shown as ``done/total`` (``None``: just ``done``).
        time_budget_s: shows the time left of this budget (counted while the driver runs).
        interval_s: at most one line per this many seconds (the final line always).
        file: where lines go (default ``sys.stderr``); ``write`` overrides it with a function
            taking one line (e.g. ``logger.info``).
        prefix: put in front of every line.
    """

    def __init__(
        self,
        *,
        metric: str | None = None,
        mode: str = "max",
        total_trials: int | None = None,
        time_budget_s: float | None = None,
        interval_s: float = 5.0,
        file: IO[str] | None = None,
        write: Callable[[str], Any] | None = None,
        prefix: str = "[rafiki] ",
    ) -> None:
        if mode not in ("max", "min"):
            raise invalid("mode", "must be 'max' or 'min'", mode)
        if total_trials is not None and (isinstance(total_trials, bool)
                                         or not isinstance(total_trials, int)
                                         or total_trials < 1):
            raise invalid("total_trials", "must be None or an int >= 1", total_trials)
        for name, v in (("time_budget_s", time_budget_s), ("interval_s", interval_s)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                                  or not v >= 0):
                raise invalid(name, "must be a number >= 0", v)
        if write is not None and not callable(write):
            raise invalid_type("write", "must be callable", write)
        self.metric, self.mode = metric, mode
        self.total_trials, self.time_budget_s = total_trials, time_budget_s
        self.interval_s = float(interval_s)
        self._file, self._write, self.prefix = file, write, prefix
        self._done = 0
        self._errors = 0
        self._best: float | None = None
        self._best_trial = ""
        self._before = 0.0
        self._t0: float | None = None
        self._last_line = -math.inf
        self.lines: list[str] = []  # every line written, for tests and notebooks

    # ------------------------------------------------------------------ state
    def elapsed(self) -> float:
        if self._t0 is None:
            self._t0 = time.monotonic()
        return self._before + time.monotonic() - self._t0

    def get_state(self) -> dict[str, Any]:
        return {"done": self._done, "errors": self._errors, "best": self._best,
                "best_trial": self._best_trial, "elapsed_s": self.elapsed()}

    def set_state(self, state: dict[str, Any]) -> None:
        self._done, self._errors = int(state["done"]), int(state["errors"])
        self._best, self._best_trial = state["best"], state["best_trial"]
        self._before, self._t0 = float(state["elapsed_s"]), None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_file"] = None  # streams do not pickle; the default stream is used again
        state["_before"], state["_t0"] = self._before, None
        state["lines"] = []
        return state

    # ------------------------------------------------------------------ formatting
    def line(self, running: int = 0) -> str:
        done = f"{self._done}/{self.total_trials}" if self.total_trials else f"{self._done}"
        parts = [f"trials {done} done, {running} running"]
        if self._errors:
            parts[0] += f", {self._errors} failed"
        if self.metric is not None:
            best = "-" if self._best is None else f"{self._best:.4g}"
            trial = f" (trial {self._best_trial})" if self._best_trial else ""
            parts.append(f"best {self.metric} {best}{trial}")
        if self.time_budget_s is not None:
            left = max(0.0, self.time_budget_s - self.elapsed())
            parts.append(f"{format_duration(left)} left")
        else:
            parts.append(f"{format_duration(self.elapsed())} elapsed")
        return self.prefix + " | ".join(parts)

    def _emit(self, text: str) -> None:
        self.lines.append(text)
        if self._write is not None:
            self._write(text)
        else:
            stream = self._file or sys.stderr
            stream.write(text + "\n")
            stream.flush()

    def _maybe_emit(self, trials: list[Any], force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_line >= self.interval_s:
            self._last_line = now
            running = sum(1 for t in trials if getattr(t, "status", "") == "RUNNING")
            self._emit(self.line(running))

    def _see(self, trial: Any, result: dict[str, Any] | None) -> None:
        if self.metric is None or not result or self.metric not in result:
            return
        try:
            v = float(result[self.metric])
        except (TypeError, ValueError):
            return
        if not math.isfinite(v):
            return
        better = self._best is None or (v > self._best if self.mode == "max" else v < self._best)
        if better:
            self._best, self._best_trial = v, str(getattr(trial, "trial_id", ""))

    # ------------------------------------------------------------------ Tune hooks
    def setup(self, **info: Any) -> None:
        self.elapsed()

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any,
                        result: dict[str, Any], **info: Any) -> None:
        self._see(trial, result)
        self._maybe_emit(trials)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any,
                          **info: Any) -> None:
        self._done += 1
        self._see(trial, getattr(trial, "last_result", None))
        self._maybe_emit(trials)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any,
                       **info: Any) -> None:
        self._done += 1
        self._errors += 1
        self._maybe_emit(trials)

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        self._maybe_emit(trials)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        self._maybe_emit(trials, force=True)
