"""Crash persistence of a scheduler: a snapshot plus an append-only journal in the experiment
folder.

Tune does not save scheduler state (ray issue 30838): after ``Tuner.restore`` the scheduler is
unpickled in its construction-time state and ``on_trial_add`` is called again for every trial.
:class:`StateFile` learns the experiment folder from the first trial
(:func:`rafiki_ray._tune_seam.experiment_dir`: Tune uploads that folder together with its own
experiment snapshot and downloads its ``*.pkl`` / ``*.json`` files back before a restore),
restores ``<experiment_dir>/rafiki_scheduler_state.pkl`` if it exists *and* belongs to the
same run (so a stale file of an earlier run under the same name is ignored).

**Snapshot + journal (format 2).** The snapshot is the whole state, written atomically
(temporary file, then rename). Every change in between is appended, one JSON line each, to
``<experiment_dir>/rafiki_scheduler_journal.json`` (``.json`` so that Tune downloads it back
as well): O(size of the change), not O(size of the state). Each line is
``[token, seq, *entry]``: the run's token and a sequence number; a snapshot records the
sequence number it covers, and a restore re-applies the later lines of the same run in order.
A line torn by a crash (no newline, not JSON) is skipped, and the next append starts on a
line of its own.

**Compaction.** When the lines appended since the last snapshot outgrow the snapshot itself
(and :data:`MIN_COMPACT_BYTES`), a new snapshot is written and the journal is rewritten
(atomically) to the lines after the *previous* snapshot. So the bytes written per change stay
bounded by a constant times the change's own size however long the run (a snapshot of ``S``
bytes is paid for by at least ``S`` bytes of lines), and the journal stays below about twice
the snapshot. Keeping the previous snapshot's lines matters because Tune copies the folder
file by file while the driver goes on: a copy may pair the older snapshot with the newer
journal, and that journal still holds every line the older snapshot needs.

Format 1 (before incremental compaction: same line format, the journal never trimmed, and
state files with no journal at all) loads unchanged.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
import pickle
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

from rafiki_ray import _tune_seam
from rafiki_ray._state import load_state, save_state

__all__ = ["FORMAT", "JOURNAL_FILE", "MIN_COMPACT_BYTES", "STATE_FILE", "StateFile"]

logger = logging.getLogger(__name__)

STATE_FILE = "rafiki_scheduler_state.pkl"
#: JSON lines; the suffix matters: Tune downloads ``*.json`` and ``*.pkl`` back on restore
JOURNAL_FILE = "rafiki_scheduler_journal.json"
#: Version of the snapshot + journal layout, recorded in the snapshot (absent: format 1).
FORMAT = 2
#: The journal is compacted once its lines since the last snapshot exceed the snapshot's
#: size and this many bytes (no burst of tiny snapshots at the start of a run).
MIN_COMPACT_BYTES = 16 * 1024


class StateFile:
    """The persisted state of one scheduler (``kind``: its class name, checked on load).

    Args:
        kind: the ``kind`` tag of the state file (the scheduler's class name).
        interval_s: minimum seconds between two unforced snapshot writes.

    ``bytes_written`` counts the bytes this object has written (snapshots, lines and
    journal rewrites): what a run pays for persistence.
    """

    def __init__(self, kind: str, *, interval_s: float) -> None:
        self.kind = kind
        self.interval_s = interval_s
        self.directory: str | None = None  # "" once attached with no folder
        self.path: str | None = None
        self.journal_path: str | None = None
        self.restored = False
        self.dirty = False
        self.bytes_written = 0
        self._token: str | None = None  # identifies this run's journal lines
        self._seq = 0  # journal lines written by this run (restored on restore)
        self._covered = 0  # lines covered by the last snapshot
        self._prev_covered = 0  # ... by the one before (kept in the journal, see module doc)
        self._snapshot_bytes = 0
        self._pending_bytes = 0  # bytes of lines after the last snapshot
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
        self._seq = self._covered = self._prev_covered = 0
        if os.path.exists(self.journal_path):
            os.remove(self.journal_path)

    def load(self, directory: str, trial_id: str, *,
             apply_state: Callable[[dict[str, Any]], None],
             replay: Callable[[list[Any]], None]) -> bool:
        """Restore from the snapshot and journal in ``directory`` if they are of this run.

        ``trial_id`` is any trial of the run (as seen by ``on_trial_add`` after
        ``Tuner.restore``). Returns whether a state was restored.
        """
        state_path = os.path.join(directory, STATE_FILE)
        if not os.path.exists(state_path):
            return False
        try:
            state = load_state(state_path, kind=self.kind)
            fmt = int(state.get("persist_format", 1))
            if fmt > FORMAT:
                raise ValueError(f"persistence format {fmt} is newer than this version's "
                                 f"({FORMAT})")
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
        self._covered = self._prev_covered = int(seq)
        self._snapshot_bytes = os.path.getsize(state_path)
        replayed = self._replay_journal(os.path.join(directory, JOURNAL_FILE), int(seq), replay)
        self.restored = True
        logger.info("%s: restored scheduler state from %s (+%d journal entries)",
                    self.kind, state_path, replayed)
        return True

    def replay_after(self, state_path: str, state: dict[str, Any],
                     replay: Callable[[list[Any]], None]) -> int:
        """Re-apply the journal lines written after ``state`` (the snapshot read from
        ``state_path``), reading the journal next to it and changing no file; how many."""
        covered = state.get("journal")
        if not covered:
            return 0
        self._token, seq = covered[0], int(covered[1])
        journal = os.path.join(os.path.dirname(os.path.abspath(state_path)), JOURNAL_FILE)
        return self._replay_journal(journal, seq, replay, repair=False)

    def _replay_journal(self, path: str, covered: int,
                        replay: Callable[[list[Any]], None], *, repair: bool = True) -> int:
        """Re-apply this run's journal lines after sequence number ``covered`` (``repair``:
        end a torn last line, so that the next line starts anew)."""
        if not os.path.exists(path):
            return 0
        entries: dict[int, tuple[list[Any], int]] = {}
        with open(path, "rb") as f:
            data = f.read()
        for raw in data.splitlines(keepends=True):
            try:
                token, seq, *entry = json.loads(raw)
                seq = int(seq)
            except (ValueError, TypeError):
                continue  # a line torn by the crash
            if token == self._token:
                self._seq = max(self._seq, seq)
                if seq > covered:
                    entries[seq] = (entry, len(raw))
        if repair and data and not data.endswith(b"\n"):
            # a torn last line: the next line starts anew
            with open(path, "ab") as f:
                f.write(b"\n")
        order = sorted(entries)
        if order and order[0] != covered + 1:
            logger.warning("%s: journal lines %d..%d are missing; replaying the rest",
                           self.kind, covered + 1, order[0] - 1)
        for seq in order:
            replay(entries[seq][0])
        self._pending_bytes = sum(n for _, n in entries.values())
        return len(order)

    def write(self, make_state: Callable[[], dict[str, Any]], *, force: bool = False) -> bool:
        """Write a snapshot of ``make_state()`` (throttled unless ``force``); whether it was
        written (else it is marked dirty, for the next write)."""
        if not self.path:
            return False
        now = time.monotonic()
        if not force and now - self._last_write < self.interval_s:
            self.dirty = True
            return False
        state = make_state()
        state["journal"] = [self._token, self._seq]  # the journal lines it covers
        state["persist_format"] = FORMAT
        save_state(self.path, state, kind=self.kind)
        self._snapshot_bytes = os.path.getsize(self.path)
        self.bytes_written += self._snapshot_bytes
        self._prev_covered, self._covered = self._covered, self._seq
        self._pending_bytes = 0
        self._last_write = now
        self.dirty = False
        self._trim()
        return True

    def journal(self, entry: list[Any], make_state: Callable[[], dict[str, Any]]) -> None:
        """Append ``entry`` (a list of JSON values) to the journal; a restore hands it back
        to ``replay``. Compacts (a snapshot of ``make_state()``) once the lines since the
        last snapshot outgrow it."""
        if not self.path:
            return
        if not self._snapshot_bytes:  # no snapshot yet: lines alone cannot be restored
            self.write(make_state, force=True)
            return
        self._seq += 1
        line = (json.dumps([self._token, self._seq, *entry]) + "\n").encode("utf-8")
        with open(self.journal_path, "ab") as f:  # type: ignore[arg-type]
            f.write(line)
        self.bytes_written += len(line)
        self._pending_bytes += len(line)
        if self._pending_bytes > max(self._snapshot_bytes, MIN_COMPACT_BYTES):
            self.write(make_state, force=True)

    def _trim(self) -> None:
        """Rewrite the journal to the lines after the previous snapshot once the older ones
        take more room than the snapshot (atomic: a reader sees the old or the new file)."""
        path = self.journal_path
        if not path or not os.path.exists(path):
            return
        size = os.path.getsize(path)
        if size <= 2 * max(self._snapshot_bytes, MIN_COMPACT_BYTES):
            return
        keep = []
        with open(path, "rb") as f:
            for raw in f:
                try:
                    token, seq, *_ = json.loads(raw)
                except (ValueError, TypeError):
                    continue
                if token == self._token and int(seq) > self._prev_covered:
                    keep.append(raw if raw.endswith(b"\n") else raw + b"\n")
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(path))
        try:
            with os.fdopen(fd, "wb") as f:
                f.writelines(keep)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        self.bytes_written += sum(len(raw) for raw in keep)


def read_persisted(directory: str) -> dict[str, Any] | None:
    """The scheduler state a run persisted in ``directory`` (snapshot plus the journal lines
    after it), read without changing a file; ``None`` when there is none.

    The journal is replayed by a bare scheduler of the snapshot's class, as a restore does;
    when that class cannot be built bare, the snapshot alone is returned (it may lag the
    last decisions)."""
    from rafiki_ray import schedulers  # here: the schedulers import this module

    path = os.path.join(directory, STATE_FILE)
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        payload = pickle.load(f)
    if not isinstance(payload, dict):
        return None
    state = payload.get("state", payload)
    cls = getattr(schedulers, str(payload.get("kind")), None)
    if not isinstance(state, dict) or cls is None or not state.get("journal") \
            or not os.path.exists(os.path.join(directory, JOURNAL_FILE)):
        return state
    try:
        # arguments without a default come from the state (e.g. CurveFitting's epoch_num);
        # set_state then replaces everything the state holds
        required = {n: state.get("sub", {}).get(n)
                    for n, p in inspect.signature(cls).parameters.items()
                    if p.default is p.empty and p.kind is p.KEYWORD_ONLY}
        sched = cls(**required)
        sched.restore(path)  # the snapshot, then the journal lines after it
    except Exception as exc:  # noqa: BLE001 - a class that cannot be built bare
        logger.warning("%s: journal not replayed (%s); the snapshot may lag", path, exc)
        return state
    full = sched._full_state()
    full["trial_ids"] = state.get("trial_ids", full.get("trial_ids"))
    return full
