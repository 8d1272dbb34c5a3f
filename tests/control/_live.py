"""Shared pieces of the live-control runs: a user thread issuing operations, and checks."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from rafiki_ray.control import Control, RefusedError
from rafiki_ray.experiment_data import load_experiment


def wait_for(cond: Callable[[], Any], timeout: float = 240.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = cond()
        except (ValueError, KeyError, OSError):
            got = None
        if got:
            return got
        time.sleep(0.2)
    raise TimeoutError(f"waited {timeout} s for {what}")


class User(threading.Thread):
    """Runs ``script(control, log)`` in a thread; ``log`` records (op, run, outcome)."""

    def __init__(self, exp_dir: str, script: Callable[[Control, list], None]) -> None:
        super().__init__(daemon=True)
        self.exp_dir, self.script, self.log, self.error = exp_dir, script, [], None

    def run(self) -> None:
        try:
            wait_for(lambda: os.path.exists(os.path.join(self.exp_dir, "rafiki_control",
                                                         "status.json")), what="status.json")
            self.script(Control(self.exp_dir), self.log)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


def issue(ctl: Control, log: list, op: str, run: str, **kw: Any) -> dict | None:
    try:
        out = ctl.op(op, run, **kw)
    except RefusedError as exc:
        log.append((op, run, "refused", str(exc)))
        return None
    log.append((op, run, out["outcome"], out.get("new_run")))
    return out


def chunk_history(exp_dir: str, run: str) -> list[list[int]]:
    """Per trial of ``run`` (in order), the ``chunks_done`` it reported."""
    data = load_experiment(exp_dir, include_deleted=True)
    return [[r["chunks_done"] for r in data.trials[t].results] for t in data.runs.get(run, [])]
