"""Crash persistence of a scheduler: a state file plus a journal in the experiment folder.

Tune does not save scheduler state (ray issue 30838): after ``Tuner.restore`` the scheduler is
unpickled in its construction-time state and ``on_trial_add`` is called again for every trial.
:class:`StateFile` learns the experiment folder from the first trial
(:func:`rafiki_ray._tune_seam.experiment_dir`: Tune uploads that folder together with its own
experiment snapshot and downloads its ``*.pkl`` / ``*.json`` files back before a restore),
restores ``<experiment_dir>/rafiki_scheduler_state.pkl`` if it exists *and* belongs to the
same run (so a stale file of an earlier run under the same name is ignored), and writes it
atomically, throttled to one write per ``interval_s`` unless forced.

**Journal.** A throttled write can leave results that Tune's snapshot already holds out of
the file (Tune's snapshot follows the result in the same loop step, with no scheduler call in
between), and Tune restores the trial from a checkpoint *after* them, so they are never
replayed. Changes that must not wait for the next full write are appended, one JSON line each,
to ``<experiment_dir>/rafiki_scheduler_journal.json`` (O(1) instead of a full write; ``.json``
so that Tune downloads it back as well). Each line carries the run's token and a sequence
number; a full write records the sequence number it covers, and a restore re-applies the later
lines of the same run. The journal is not truncated during a run: Tune copies the folder file
by file while the driver goes on, so the state file it copies may be older than the journal.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

from rafiki_ray import _tune_seam
from rafiki_ray._state import load_state, save_state

__all__ = ["JOURNAL_FILE", "STATE_FILE", "StateFile"]

logger = logging.getLogger(__name__)

STATE_FILE = "rafiki_scheduler_state.pkl"
#: JSON lines; the suffix matters: Tune downloads ``*.json`` and ``*.pkl`` back on restore
JOURNAL_FILE = "rafiki_scheduler_journal.json"


class StateFile:
    """The persisted state of one scheduler (``kind``: its class name, checked on load).

    Args:
        kind: the ``kind`` tag of the state file (the scheduler's class name).
        interval_s: minimum seconds between two unforced writes.
    """

    def __init__(self, kind: str, *, interval_s: float) -> None:
        self.kind = kind
        self.interval_s = interval_s
        self.directory: str | None = None  # "" once attached with no folder
        self.path: str | None = None
        self.journal_path: str | None = None
        self.restored = False
        self.dirty = False
        self._token: str | None = None  # identifies this run's journal lines
        self._seq = 0  # journal lines written by this run (restored on restore)
        self._last_write = -math.inf  # the first write is never throttled

    @property
    def attached(self) -> bool:
        return self.directory is not None

    def attach(self, trial: Any, *, apply_state: Callable[[dict[str, Any]], None],
               replay: Callable[[list[Any]], None]) -> bool:
        """Learn the experiment folder from ``trial``; restore a persisted state of this run.

        Returns whether a state was restored. A stub trial (no storage) leaves it detached.
        """
        if self.directory is not None:
            return False
        path = _tune_seam.experiment_dir(trial)
        if path is None:
            return False
        if not path:
            logger.warning("%s: no experiment folder; scheduler state is not persisted",
                           self.kind)
            self.directory = ""
            return False
        self.directory = path
        self.path = os.path.join(path, STATE_FILE)
        self.journal_path = os.path.join(path, JOURNAL_FILE)
        if self.load(path, trial.trial_id, apply_state=apply_state, replay=replay):
            return True
        self.open_new(path)
        return False

    def open_new(self, directory: str) -> None:
        """Persist a new run into ``directory`` (a journal left there by an earlier run
        under the same name is dropped)."""
        self.directory = directory
        self.path = os.path.join(directory, STATE_FILE)
        self.journal_path = os.path.join(directory, JOURNAL_FILE)
        self._token = uuid.uuid4().hex
        self._seq = 0
        if os.path.exists(self.journal_path):
            os.remove(self.journal_path)

    def load(self, directory: str, trial_id: str, *,
             apply_state: Callable[[dict[str, Any]], None],
             replay: Callable[[list[Any]], None]) -> bool:
        """Restore from the state file and journal in ``directory`` if they are of this run.

        ``trial_id`` is any trial of the run (as seen by ``on_trial_add`` after
        ``Tuner.restore``). Returns whether a state was restored.
        """
        state_path = os.path.join(directory, STATE_FILE)
        if not os.path.exists(state_path):
            return False
        try:
            state = load_state(state_path, kind=self.kind)
        except Exception as exc:  # noqa: BLE001 - any unreadable file: start fresh
            logger.warning("%s: cannot read %s (%s); starting fresh", self.kind, state_path, exc)
            return False
        if not _tune_seam.same_run(trial_id, set(state.get("trial_ids", ()))):
            logger.warning("%s: ignoring %s, it belongs to another run (trial %s unknown)",
                           self.kind, state_path, trial_id)
            return False
        apply_state(state)
        token, seq = state.get("journal") or (uuid.uuid4().hex, 0)
        self._token, self._seq = token, int(seq)
        replayed = self._replay_journal(os.path.join(directory, JOURNAL_FILE), int(seq), replay)
        self.restored = True
        logger.info("%s: restored scheduler state from %s (+%d journal entries)",
                    self.kind, state_path, replayed)
        return True

    def _replay_journal(self, path: str, covered: int,
                        replay: Callable[[list[Any]], None]) -> int:
        """Re-apply this run's journal lines after sequence number ``covered``."""
        if not os.path.exists(path):
            return 0
        entries = []
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    token, seq, *entry = json.loads(line)
                except (ValueError, TypeError):
                    continue  # a line torn by the crash
                if token == self._token:
                    self._seq = max(self._seq, int(seq))
                    if seq > covered:
                        entries.append((int(seq), entry))
        for _, entry in sorted(entries, key=lambda e: e[0]):
            replay(entry)
        return len(entries)

    def write(self, make_state: Callable[[], dict[str, Any]], *, force: bool = False) -> bool:
        """Write ``make_state()`` (throttled unless ``force``); whether it was written (else it
        is marked dirty, for the next write)."""
        if not self.path:
            return False
        now = time.monotonic()
        if not force and now - self._last_write < self.interval_s:
            self.dirty = True
            return False
        state = make_state()
        state["journal"] = [self._token, self._seq]  # the journal lines it covers
        save_state(self.path, state, kind=self.kind)
        self._last_write = now
        self.dirty = False
        return True

    def journal(self, entry: list[Any], make_state: Callable[[], dict[str, Any]]) -> None:
        """Record a change at once and cheaply: a full write if one is due, else a journal line.

        ``entry`` is a list of JSON values; a restore hands it back to ``replay``.
        """
        if not self.path or self.write(make_state):  # a full write was due: it covers this
            return
        self._seq += 1
        line = json.dumps([self._token, self._seq, *entry])
        with open(self.journal_path, "a", encoding="utf-8") as f:  # type: ignore[arg-type]
            f.write(line + "\n")
