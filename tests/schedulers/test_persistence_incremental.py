"""Incremental crash persistence (issue 17, soak): a snapshot plus an append-only journal of
per-trial rows, compacted as it outgrows the snapshot. Synthetic decisions, no Ray session:
the restored state equals the one in memory, a torn last line is skipped, the bytes written
per decision do not grow with the history, and a format-1 file still loads."""

from __future__ import annotations

import json
import os
import types

import numpy as np
import pytest
from ray.tune.experiment import Trial

from rafiki_ray._state import save_state
from rafiki_ray.schedulers import ASHA, _persistence
from rafiki_ray.schedulers._persistence import JOURNAL_FILE, STATE_FILE
from rafiki_ray.testing._driver import SimController

KW = {"metric": "score", "mode": "max", "max_t": 9, "grace_period": 1, "reduction_factor": 3}


def _attached(tmp_path, **kw) -> tuple[ASHA, SimController]:
    sched = ASHA(**KW, **kw)
    sched._require_metric()
    sched._attach(types.SimpleNamespace(  # the folder Tune would give, without a Ray session
        storage=types.SimpleNamespace(experiment_driver_staging_path=str(tmp_path)),
        trial_id="abcde_00000"))
    return sched, SimController(sched)


def _run(sched: ASHA, ctrl: SimController, n: int, start: int = 0, seed: int = 0) -> int:
    """``n`` trials, one at a time, each reporting until ASHA stops or pauses it (paused ones
    are promoted by choose_trial_to_run as Tune would); returns the decisions made."""
    rng = np.random.default_rng(seed + start)
    its, scores = ctrl.__dict__.setdefault("its", {}), ctrl.__dict__.setdefault("scores", {})
    decisions = 0
    for i in range(start, start + n):
        t = Trial("__fake", config={}, stub=True, trial_id=f"abcde_{i + 1:05d}")
        ctrl.trials.append(t)
        sched.on_trial_add(ctrl, t)
        scores[t.trial_id] = float(rng.normal())
        run = t
        while run is not None:
            run.set_status(Trial.RUNNING)
            tid = run.trial_id
            while True:
                its[tid] = it = its.get(tid, 0) + 1
                decisions += 1
                d = sched.on_trial_result(ctrl, run, {"score": scores[tid] + 0.01 * it,
                                                      "training_iteration": it,
                                                      "should_checkpoint": True})
                if d == "PAUSE":
                    run.set_status(Trial.PAUSED)
                    break
                if d == "STOP":
                    sched.on_trial_complete(ctrl, run, {})
                    run.set_status(Trial.TERMINATED)
                    break
            run = sched.choose_trial_to_run(ctrl)
            run = run if run is not None and run.status == Trial.PAUSED else None
    return decisions


def _restored(tmp_path, **kw) -> ASHA:
    """A fresh scheduler (as Tuner.restore unpickles it) attached to the same folder."""
    fresh = ASHA(**KW, **kw)
    fresh._attach(types.SimpleNamespace(
        storage=types.SimpleNamespace(experiment_driver_staging_path=str(tmp_path)),
        trial_id="abcde_00001"))
    assert fresh._restored
    return fresh


def _comparable(state: dict) -> dict:
    state = json.loads(json.dumps(state))
    state["sub"]["rungs"] = [[{**g, "scores": sorted(g["scores"])} for g in rungs]
                             for rungs in state["sub"]["rungs"]]
    return state


@pytest.mark.parametrize("kw", [{"promotion": "pause", "brackets": 2}, {"promotion": "stop"}])
def test_restore_from_snapshot_and_journal_equals_memory(tmp_path, monkeypatch, kw):
    monkeypatch.setattr(_persistence, "MIN_COMPACT_BYTES", 2048)  # compact (and trim) often
    sched, ctrl = _attached(tmp_path, seed=3, **kw)
    _run(sched, ctrl, 300)
    journal = os.path.join(tmp_path, JOURNAL_FILE)
    with open(journal) as f:
        lines = f.read().splitlines()
    assert lines and all(json.loads(ln)[2] == "~row" for ln in lines)
    assert sched._file._covered < sched._file._seq  # the last lines are in the journal only
    fresh = _restored(tmp_path, **kw)
    # rung scores, promotions, paused / chosen / done, the generator (brackets draw from it)
    # and the base's checkpointed and released trials
    assert _comparable(fresh.get_state()) == _comparable(sched.get_state())
    assert fresh.rungs() == sched.rungs()  # the waiting lists are rebuilt too



def test_restore_of_the_state_path_replays_the_journal_and_changes_no_file(tmp_path):
    """``ASHA().restore(state_path)`` (what examples/asha_pytorch.py does to print the rungs
    after a run) must see the decisions journaled after the last snapshot too."""
    sched, ctrl = _attached(tmp_path, seed=3, promotion="stop")
    _run(sched, ctrl, 60)
    assert sched._file._covered < sched._file._seq  # the last lines are in the journal only
    with open(os.path.join(tmp_path, JOURNAL_FILE), "a") as f:
        f.write('["torn')  # as a crash mid-line leaves it
    before = {n: os.path.getsize(os.path.join(tmp_path, n)) for n in os.listdir(tmp_path)}
    reader = ASHA(**KW)
    reader.restore(sched.state_path)
    assert reader.rungs() == sched.rungs()
    assert _comparable(reader.get_state()) == _comparable(sched.get_state())
    assert {n: os.path.getsize(os.path.join(tmp_path, n)) for n in os.listdir(tmp_path)} == before
    # the plots and the crash harness read it the same way (load_experiment, read_persisted)
    from rafiki_ray.experiment_data import load_experiment

    seen = load_experiment(str(tmp_path)).scheduler_state
    assert seen is not None and _comparable(
        {k: v for k, v in seen.items() if k != "trial_ids"}) == _comparable(sched.get_state())
    assert {n: os.path.getsize(os.path.join(tmp_path, n)) for n in os.listdir(tmp_path)} == before

def test_a_torn_last_line_is_ignored_and_the_next_line_starts_anew(tmp_path):
    sched, ctrl = _attached(tmp_path, seed=1)
    _run(sched, ctrl, 20)
    before = _comparable(sched.get_state())
    journal = os.path.join(tmp_path, JOURNAL_FILE)
    with open(journal, "rb") as f:
        last = f.read().splitlines()[-1]
    with open(journal, "ab") as f:  # a driver SIGKILL in the middle of a write
        f.write(last[: len(last) // 2])
    fresh = _restored(tmp_path, seed=1)
    assert _comparable(fresh.get_state()) == before
    # the restored run goes on appending: its first line is not glued to the torn one
    ctrl2 = SimController(fresh)
    ctrl2.trials = list(ctrl.trials)
    ctrl2.its, ctrl2.scores = ctrl.its, ctrl.scores
    fresh._trials = dict(sched._trials)
    _run(fresh, ctrl2, 5, start=20)
    again = _restored(tmp_path, seed=1)
    assert _comparable(again.get_state()) == _comparable(fresh.get_state())


def test_bytes_written_per_decision_do_not_grow_with_the_history(tmp_path):
    """The old full write per decision cost O(trials) bytes (about 14 KB per trial after 200
    trials and 140 KB after 2,000 here); journal lines plus amortised snapshots cost O(1)."""
    sched, ctrl = _attached(tmp_path, seed=0, promotion="stop")
    n_dec = _run(sched, ctrl, 500)
    early = sched._file.bytes_written / n_dec
    n_dec += _run(sched, ctrl, 2500, start=500)
    late = sched._file.bytes_written / n_dec
    with open(os.path.join(tmp_path, JOURNAL_FILE), "rb") as f:
        line = np.mean([len(raw) for raw in f])
    snapshot = os.path.getsize(os.path.join(tmp_path, STATE_FILE))
    assert late <= 1.5 * early, (early, late)
    assert late <= 6 * line, (late, line)  # a line, plus the amortised snapshots and trims
    assert late < snapshot / 50  # the old way wrote a whole snapshot per decision
    # the journal stays within a few snapshots
    assert os.path.getsize(os.path.join(tmp_path, JOURNAL_FILE)) <= 3 * snapshot + 4096


def test_a_format_1_state_file_and_journal_still_load(tmp_path):
    """Before compaction (format 1) the state file held no format number and the journal
    was never trimmed; a state file with no journal at all is older still."""
    sched, ctrl = _attached(tmp_path, seed=2)
    _run(sched, ctrl, 10)
    state = sched._full_state()
    path = os.path.join(tmp_path, STATE_FILE)
    save_state(path, state, kind="ASHA")  # no journal coverage, no format: the oldest
    os.remove(os.path.join(tmp_path, JOURNAL_FILE))
    assert _comparable(_restored(tmp_path, seed=2).get_state()) == _comparable(sched.get_state())
    # format 1: coverage [token, seq], lines after it replayed
    token = "0" * 32
    sched2, ctrl2 = _attached(tmp_path / "v1", seed=2)
    _run(sched2, ctrl2, 6)
    old = sched2._full_state()
    old["journal"] = [token, 0]
    save_state(os.path.join(tmp_path / "v1", STATE_FILE), old, kind="ASHA")
    _run(sched2, ctrl2, 4, start=6)
    with open(os.path.join(tmp_path / "v1", JOURNAL_FILE), "w") as f:
        for seq, tid in enumerate(sorted(sched2._bracket_of), start=1):
            row = sched2._trial_row(tid)
            flags = [int(tid in sched2._checkpointed), int(tid in sched2._released)]
            f.write(json.dumps([token, seq, "~row", tid, row, flags]) + "\n")
    fresh = ASHA(**KW, seed=2)
    assert fresh._load_persisted(str(tmp_path / "v1"), "abcde_00001")
    assert _comparable(fresh.get_state())["sub"]["rungs"] == \
        _comparable(sched2.get_state())["sub"]["rungs"]
    # a state of a newer format than this version's is not guessed at
    newer = sched2._full_state()
    newer["persist_format"] = _persistence.FORMAT + 1
    save_state(os.path.join(tmp_path / "v1", STATE_FILE), newer, kind="ASHA")
    assert not ASHA(**KW)._load_persisted(str(tmp_path / "v1"), "abcde_00001")


def test_a_row_that_moves_a_trial_to_another_bracket_is_refused(tmp_path):
    """ASHA never moves a trial between brackets, so a journal row that does comes from an
    inconsistent file: a ValueError naming the trial, not a silent rewrite of its rungs."""
    sched, ctrl = _attached(tmp_path, seed=3, brackets=2)
    _run(sched, ctrl, 4)
    tid = min(sched._bracket_of)
    row = list(sched._trial_row(tid))
    row[0] = 1 - row[0]
    with pytest.raises(ValueError, match=rf"trials\['{tid}'\].bracket"):
        sched._set_trial_row(tid, row)
    sched._set_trial_row(tid, sched._trial_row(tid))  # its own row is accepted
