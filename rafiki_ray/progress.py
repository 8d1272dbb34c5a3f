"""The one progress display of rafiki-ray: trials by state, best so far, time left.

:class:`ProgressCallback` is a ``tune.Callback`` used by ``rafiki-ray run`` and ``resume``,
by :func:`rafiki_ray.models.tune_model` and by anyone's ``tune.RunConfig(callbacks=[...])``.
Where it writes decides how it looks:

* a terminal (a stream whose ``isatty()`` is true): one line redrawn in place;
* a notebook (an IPython kernel, nothing else asked for): one output area updated in place;
* anything else (a log file, ``write=logger.info``): one plain line at most every
  ``interval_s`` seconds when more than the clock changed (else every 30 s), and one at
  the end.

Its counters are Tune callback state, so after ``Tuner.restore`` the display continues
instead of restarting at zero. :func:`format_status` gives the same line from an experiment's
status file (``rafiki-ray status``).

Example::

    tune.RunConfig(callbacks=[ProgressCallback(metric="score", mode="max",
                                               total_trials=20, time_budget_s=600)])
    # [rafiki] trials 7/20 done, 2 running | best score 0.9612 (trial 3f2a_00004) | 7m41s left
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import IO, Any

from ray.tune import Callback

from rafiki_ray._constants import TIMEOUT_FILE
from rafiki_ray._errors import invalid, invalid_type

__all__ = ["ProgressCallback", "format_duration", "format_status", "progress_line",
           "timed_out"]

#: In a log, a line that only the clock changed is repeated after this many seconds.
_REPEAT_S = 30.0
#: Trial states counted as finished (``EARLY_STOPPED``: stopped at NNI's maxTrialDuration).
_FINISHED = ("TERMINATED", "EARLY_STOPPED", "ERROR")


def timed_out(trial: Any) -> bool:
    """Whether a Tune trial (or a trial directory) was stopped at its time limit (NNI
    ``maxTrialDuration``): rafiki-ray's command and function trials leave a mark file."""
    path = trial if isinstance(trial, (str, os.PathLike)) else getattr(trial, "local_path", None)
    return bool(path) and os.path.isfile(os.path.join(path, TIMEOUT_FILE))


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


def progress_line(counts: Mapping[str, int], *, total: int | None = None,
                  metric: str | None = None, best: float | None = None,
                  best_trial: str = "", elapsed: float = 0.0,
                  time_budget_s: float | None = None, prefix: str = "") -> str:
    """The progress line from trial counts by state (Tune's states and ``EARLY_STOPPED``).

    ``trials 3/10 done, 2 running, 1 failed, 1 early-stopped | best score 0.91 (trial t) |
    4m10s left``: *done* counts every finished trial (failed and early-stopped included)."""
    done = sum(counts.get(s, 0) for s in _FINISHED)
    head = f"trials {done}/{total} done" if total else f"trials {done} done"
    head += f", {counts.get('RUNNING', 0)} running"
    for state, word in (("PENDING", "pending"), ("PAUSED", "paused"), ("ERROR", "failed"),
                        ("EARLY_STOPPED", "early-stopped")):
        if counts.get(state):
            head += f", {counts[state]} {word}"
    parts = [head]
    if metric is not None:
        value = "-" if best is None else f"{best:.4g}"
        parts.append(f"best {metric} {value}" + (f" (trial {best_trial})" if best_trial else ""))
    if time_budget_s:
        parts.append(f"{format_duration(max(0.0, time_budget_s - elapsed))} left")
    else:
        parts.append(f"{format_duration(elapsed)} elapsed")
    return prefix + " | ".join(parts)


def format_status(status: Mapping[str, Any], now: float | None = None) -> str:
    """The progress line of an experiment's status file (``rafiki_status.json``)."""
    now = time.time() if now is None else now
    counts: dict[str, int] = {}
    for state in (status.get("trials") or {}).values():
        counts[state] = counts.get(state, 0) + 1
    best = status.get("best") or {}
    started = status.get("started")
    total = status.get("expected_trials")
    return progress_line(
        counts, total=total if isinstance(total, int) and total > 0 else None,
        metric=status.get("metric"), best=best.get("value"),
        best_trial=str(best.get("trial_id") or ""),
        elapsed=now - started if started else 0.0, time_budget_s=status.get("time_budget_s"))


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except Exception:  # noqa: BLE001 - any failure: not a notebook
        return False
    return ip is not None and hasattr(ip, "kernel")


class ProgressCallback(Callback):
    """Throttled progress of a Tune experiment: trials by state, best so far, time left.

    Args:
        metric: the metric whose best value is shown (``None``: not shown).
        mode: ``"max"`` or ``"min"``.
        total_trials: the trial budget, shown as ``done/total`` (``None``: just ``done``).
        time_budget_s: shows the time left of this budget (counted while the driver runs).
        interval_s: at most one update per this many seconds (the final one always).
        file: where lines go (default ``sys.stderr``); a terminal gets one line redrawn in
            place. ``write`` overrides it with a function taking one line (e.g.
            ``logger.info``).
        prefix: put in front of every line.
        final_only: count only results with ``final: True`` for the best (NNI / T9k trials,
            whose result is their final result).
        notebook: update one notebook output in place (``None``: when running in an IPython
            kernel and neither ``file`` nor ``write`` is given).
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
        final_only: bool = False,
        notebook: bool | None = None,
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
        self.metric, self.mode, self.final_only = metric, mode, bool(final_only)
        self.total_trials, self.time_budget_s = total_trials, time_budget_s
        self.interval_s = float(interval_s)
        self._file, self._write, self.prefix = file, write, prefix
        self.notebook = notebook
        self._handle: Any = None
        self._done = 0
        self._errors = 0
        self._early = 0
        self._best: float | None = None
        self._best_trial = ""
        self._before = 0.0
        self._t0: float | None = None
        self._last_line = -math.inf
        self._last_key, self._last_printed = "", -math.inf
        self.lines: list[str] = []  # every line shown, for tests and notebooks

    # ------------------------------------------------------------------ state
    def elapsed(self) -> float:
        if self._t0 is None:
            self._t0 = time.monotonic()
        return self._before + time.monotonic() - self._t0

    def get_state(self) -> dict[str, Any]:
        return {"done": self._done, "errors": self._errors, "early_stopped": self._early,
                "best": self._best, "best_trial": self._best_trial,
                "elapsed_s": self.elapsed()}

    def set_state(self, state: dict[str, Any]) -> None:
        self._done, self._errors = int(state["done"]), int(state["errors"])
        self._early = int(state.get("early_stopped", 0))
        self._best, self._best_trial = state["best"], state["best_trial"]
        self._before, self._t0 = float(state["elapsed_s"]), None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_file"] = None  # streams do not pickle; the default stream is used again
        state["_handle"] = None
        state["_before"], state["_t0"] = self.elapsed(), None
        state["lines"] = []
        return state

    # ------------------------------------------------------------------ formatting
    def line(self, trials: list[Any] | int = 0) -> str:
        """The current line; ``trials``: Tune's trial list (or just the running count)."""
        counts: dict[str, int] = {}
        if isinstance(trials, int):
            counts["RUNNING"] = trials
        else:
            for t in trials:
                state = str(getattr(t, "status", ""))
                if state in ("RUNNING", "PENDING", "PAUSED"):
                    counts[state] = counts.get(state, 0) + 1
        counts["ERROR"] = self._errors
        counts["EARLY_STOPPED"] = self._early
        counts["TERMINATED"] = self._done - self._errors - self._early
        return progress_line(counts, total=self.total_trials, metric=self.metric,
                             best=self._best, best_trial=self._best_trial,
                             elapsed=self.elapsed(), time_budget_s=self.time_budget_s,
                             prefix=self.prefix)

    def _repeat(self, text: str, final: bool) -> bool:
        """A log gets a line when more than the clock changed, or every 30 s (and the end)."""
        key, now = text.rsplit(" | ", 1)[0], time.monotonic()
        if not final and key == self._last_key and now - self._last_printed < _REPEAT_S:
            return True
        self._last_key, self._last_printed = key, now
        return False

    def _emit(self, text: str, final: bool = False) -> None:
        if self._write is not None:
            if not self._repeat(text, final):
                self.lines.append(text)
                self._write(text)
            return
        notebook = self.notebook if self.notebook is not None else (
            self._file is None and _in_notebook())
        if notebook:
            self.lines.append(text)
            self._show_in_notebook(text)
            return
        stream = self._file or sys.stderr
        if getattr(stream, "isatty", lambda: False)():
            self.lines.append(text)
            stream.write("\r\x1b[K" + text + ("\n" if final else ""))
        elif not self._repeat(text, final):
            self.lines.append(text)
            stream.write(text + "\n")
        stream.flush()

    def _show_in_notebook(self, text: str) -> None:
        from IPython.display import DisplayHandle

        data = {"text/plain": text}
        if self._handle is None:
            self._handle = DisplayHandle()
            self._handle.display(data, raw=True)
        else:
            self._handle.update(data, raw=True)

    def _maybe_emit(self, trials: list[Any], force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_line >= self.interval_s:
            self._last_line = now
            self._emit(self.line(trials), final=force)

    def _see(self, trial: Any, result: dict[str, Any] | None) -> None:
        if self.metric is None or not result or self.metric not in result:
            return
        if self.final_only and result.get("final") is not True:
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
        if timed_out(trial):
            self._early += 1
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
