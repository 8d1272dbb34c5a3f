"""A live one-line progress display for ``rafiki-ray run``: trials by state, best metric,
time left. A Tune callback; it prints only where the CLI asks it to (``stream``).

On a terminal the line is redrawn in place (``\\r``); otherwise one line is written every
``interval`` seconds, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from ray.tune import Callback

from rafiki_ray.specs._status import StatusTracker

__all__ = ["ProgressDisplay", "format_progress"]


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def format_progress(status: dict[str, Any], now: float | None = None) -> str:
    """One line from a status dict (as in ``rafiki_status.json``)."""
    now = time.time() if now is None else now
    counts: dict[str, int] = {}
    for state in status.get("trials", {}).values():
        counts[state] = counts.get(state, 0) + 1
    done = counts.get("TERMINATED", 0)
    parts = [f"{counts.get('RUNNING', 0)} running", f"{done} done"]
    if counts.get("ERROR"):
        parts.append(f"{counts['ERROR']} failed")
    if counts.get("PAUSED"):
        parts.append(f"{counts['PAUSED']} paused")
    planned = status.get("expected_trials")
    total = f"/{planned}" if isinstance(planned, int) and planned > 0 else ""
    line = f"trials{total}: " + ", ".join(parts)
    best = status.get("best")
    if best is not None:
        line += f" | best {status.get('metric')}={best['value']:.6g}"
    started = status.get("started")
    if started:
        line += f" | {_clock(now - started)} elapsed"
        budget = status.get("time_budget_s")
        if budget:
            line += f", {_clock(started + budget - now)} left"
    return line


class ProgressDisplay(Callback):
    """Redraws :func:`format_progress` of a :class:`StatusTracker` every ``interval`` s."""

    def __init__(self, tracker: StatusTracker, *, stream: TextIO | None = None,
                 interval: float = 2.0) -> None:
        self.tracker = tracker
        self.interval = interval
        self._stream = stream
        self._last = 0.0
        self._shown: list[str] = []
        self._printed = 0.0

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    def _draw(self, final: bool = False) -> None:
        line = format_progress({**self.tracker.data, "trials": self.tracker.data["trials"]})
        tty = getattr(self.stream, "isatty", lambda: False)()
        if tty:
            self.stream.write("\r\x1b[K" + line + ("\n" if final else ""))
        else:  # a log: a line when something but the clock changed, or every 30 s
            key = line.split(" | ")[:2]
            if not final and key == self._shown and time.time() - self._printed < 30:
                return
            self._shown, self._printed = key, time.time()
            self.stream.write(line + "\n")
        self.stream.flush()

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        now = time.time()
        if now - self._last >= self.interval:
            self._last = now
            self._draw()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._draw(final=True)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_stream"] = None  # streams do not pickle; a restored run prints to stderr
        return state
