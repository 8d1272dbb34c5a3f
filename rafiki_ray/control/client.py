"""``Control``: issue operations to a running experiment from any process (notebook, CLI).

An operation is checked against the driver's last ``status.json`` (so a rule-breaking one is
refused at once with the reason), then appended to the journal with ``fsync`` before anything
acts; the driver applies it at its next step and writes the outcome, which :meth:`Control.op`
waits for. The driver decides again on its own, newer state: an operation that has become
illegal meanwhile is refused there, and the wait raises with that reason.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping
from typing import Any

from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray.control.journal import Journal, read_status
from rafiki_ray.control.protocol import OPS, decide, parse_edits

__all__ = ["Control", "RefusedError"]


class RefusedError(ValueError):
    """An operation refused because it breaks a rule of live control."""


class Control:
    """Client of one experiment directory's live control."""

    def __init__(self, experiment_dir: str) -> None:
        if not isinstance(experiment_dir, (str, os.PathLike)):
            raise invalid_type("experiment_dir", "must be a path", experiment_dir)
        self.experiment_dir = os.path.abspath(os.fspath(experiment_dir))
        self.journal = Journal(self.experiment_dir)

    def status(self) -> dict[str, Any]:
        st = read_status(self.experiment_dir)
        if st is None:
            raise invalid("experiment_dir", "has no live-control status (rafiki_control/"
                          "status.json); was the experiment started with live control?",
                          self.experiment_dir)
        return st

    def runs(self) -> dict[str, dict[str, Any]]:
        """``{run_id: {"status", "origin", "parent", "chunks", "last", ...}}``."""
        return self.status()["runs"]

    def op(self, op: str, run: str, *, edits: Mapping[str, Any] | list[str] | None = None,
           warm: bool = False, wait: bool = True, timeout: float = 120.0) -> dict[str, Any]:
        """Journal one operation; with ``wait``, return its outcome (raise if refused)."""
        if op not in OPS:
            raise invalid("op", f"must be one of {list(OPS)}", op)
        if not isinstance(run, str):
            raise invalid_type("run", "must be a run id (str)", run)
        edits = parse_edits(edits)
        if op != "clone" and (edits or warm):
            raise invalid("op", "--set and --warm belong to clone only", op)
        st = self.status()
        if st.get("finished"):
            raise RefusedError(f"{op} {run}: refused: the experiment has ended")
        state = st["runs"].get(run, {}).get("status")
        outcome, reason = decide(op, state)
        if outcome == "refuse":
            raise RefusedError(f"{op} {run}: refused: {reason}")
        oid = uuid.uuid4().hex
        self.journal.append({"kind": "op", "id": oid, "op": op, "run": run, "edits": edits,
                             "warm": bool(warm), "time": time.time()})
        if not wait:
            return {"id": oid, "outcome": "pending", "reason": "", "new_run": None}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.journal.outcomes().get(oid)
            if got is not None:
                if got["outcome"] == "refused":
                    raise RefusedError(f"{op} {run}: refused: {got['reason']}")
                return got
            time.sleep(0.2)
        return {"id": oid, "outcome": "pending", "reason": "journaled; the driver has not "
                "applied it yet", "new_run": None}

    def stop(self, run: str, **kw: Any) -> dict[str, Any]:
        return self.op("stop", run, **kw)

    def resume(self, run: str, **kw: Any) -> dict[str, Any]:
        return self.op("resume", run, **kw)

    def delete(self, run: str, **kw: Any) -> dict[str, Any]:
        return self.op("delete", run, **kw)

    def clone(self, run: str, edits: Mapping[str, Any] | list[str] | None = None, *,
              warm: bool = False, **kw: Any) -> dict[str, Any]:
        return self.op("clone", run, edits=edits, warm=warm, **kw)
