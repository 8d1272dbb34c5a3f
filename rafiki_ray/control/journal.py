"""The append-only, fsynced journal of control operations in an experiment directory.

``<experiment>/rafiki_control/journal.jsonl`` holds one JSON object per line: ``{"kind":
"op", "id", "op", "run", "edits", "warm", "time"}`` written by a client before anything acts,
and ``{"kind": "outcome", "id", "outcome", "reason", "new_run", "time"}`` written by the
driver once it has decided. Writers take an exclusive ``flock`` and ``fsync`` each line;
readers skip a torn last line (a writer killed mid-line). ``status.json`` next to it is the
driver's view of the runs, replaced atomically after every change.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from typing import Any

__all__ = ["CONTROL_DIR", "Journal", "read_status", "write_status"]

CONTROL_DIR = "rafiki_control"


class Journal:
    """Append-only JSON-lines file with ``fsync``; safe for several writer processes."""

    def __init__(self, experiment_dir: str) -> None:
        self.dir = os.path.join(os.fspath(experiment_dir), CONTROL_DIR)
        self.path = os.path.join(self.dir, "journal.jsonl")

    def append(self, record: dict[str, Any]) -> None:
        os.makedirs(self.dir, exist_ok=True)
        line = (json.dumps(record, sort_keys=True) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            # a torn line left by a killed writer: start ours on a fresh line
            size = os.fstat(fd).st_size
            if size:
                with open(self.path, "rb") as f:
                    f.seek(size - 1)
                    if f.read(1) != b"\n":
                        line = b"\n" + line
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> list[dict[str, Any]]:
        if not os.path.exists(self.path):
            return []
        out = []
        with open(self.path, "rb") as f:
            for raw in f.read().split(b"\n"):
                if not raw.strip():
                    continue
                try:
                    rec = json.loads(raw)
                except ValueError:
                    continue  # torn line
                if isinstance(rec, dict):
                    out.append(rec)
        return out

    def ops(self) -> list[dict[str, Any]]:
        return [r for r in self.read() if r.get("kind") == "op"]

    def outcomes(self) -> dict[str, dict[str, Any]]:
        """The latest outcome per op id."""
        return {r["id"]: r for r in self.read() if r.get("kind") == "outcome"}


def write_status(experiment_dir: str, status: dict[str, Any]) -> None:
    d = os.path.join(os.fspath(experiment_dir), CONTROL_DIR)
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".status-", dir=d)
    with os.fdopen(fd, "w") as f:
        json.dump(status, f, sort_keys=True, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(d, "status.json"))


def read_status(experiment_dir: str) -> dict[str, Any] | None:
    path = os.path.join(os.fspath(experiment_dir), CONTROL_DIR, "status.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)
