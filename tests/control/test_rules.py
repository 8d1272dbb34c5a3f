"""Live control without a cluster: the rules, the journal, exactly-once application, the CLI.

``LiveControl`` is driven here the way Tune drives it (suggest -> results -> checkpoints ->
complete), with operations journaled by the real client; the end-to-end runs on Ray are in
test_live.py.
"""

from __future__ import annotations

import argparse
import os
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ray.tune.search import Searcher

from rafiki_ray.control import CONTROL_KEY, Control, Journal, LiveControl, RefusedError, decide
from rafiki_ray.control import cli as ctl_cli
from rafiki_ray.control.controller import _REGISTRY
from rafiki_ray.control.protocol import OPS, STATES, apply_edits, parse_edits

RULES = {  # (op, state) -> outcome, from formats.md section 4
    ("stop", "ongoing"): "apply", ("resume", "ongoing"): "refuse",
    ("delete", "ongoing"): "apply", ("clone", "ongoing"): "apply",
    ("stop", "stopped"): "refuse", ("resume", "stopped"): "apply",
    ("delete", "stopped"): "apply", ("clone", "stopped"): "apply",
    ("stop", "completed"): "ignore", ("resume", "completed"): "ignore",
    ("delete", "completed"): "apply", ("clone", "completed"): "apply",
    ("stop", "failed"): "refuse", ("resume", "failed"): "refuse",
    ("delete", "failed"): "apply", ("clone", "failed"): "refuse",
}


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("state", STATES)
def test_rule_table(op, state):
    outcome, reason = decide(op, state)
    assert outcome == RULES.get((op, state), "refuse")
    assert bool(reason) == (outcome != "apply")


def cfgs(n):
    return [{"lr": 0.1 * (i + 1)} for i in range(n)]


def validate(config):
    if not isinstance(config.get("lr"), float) or config["lr"] <= 0:
        raise ValueError(f"clone.lr: must be a positive float, got {config.get('lr')!r}")


class Sim:
    """Plays Tune's part: trial ids, results with checkpoints, completion."""

    def __init__(self, tmp_path, n=3, searcher=None, num_samples=None):
        self.dir = str(tmp_path / "exp")
        self.ctl = LiveControl(self.dir, runs=cfgs(n) if n else None, searcher=searcher,
                               validate=validate, seed=7, num_samples=num_samples)
        self.client = Control(self.dir)
        self.ctl.callback.setup()  # as Tune does before the first step
        self.n = 0

    def start(self):
        tid = f"t{self.n}"
        self.n += 1
        cfg = self.ctl.searcher.suggest(tid)
        return tid, cfg

    def report(self, tid, chunks):
        self.ctl.callback.on_trial_result(0, [], _T(tid), {"training_iteration": chunks,
                                                          "loss": 1.0 / chunks})
        ck = os.path.join(self.dir, "ck", tid, str(chunks))
        os.makedirs(ck, exist_ok=True)
        with open(os.path.join(ck, "w"), "w") as f:
            f.write(str(chunks))
        self.ctl.callback.on_checkpoint(0, [], _T(tid), _C(ck))
        return self.ctl.stopper(tid, {})

    def op(self, *a, **k):
        out = self.client.op(*a, wait=False, **k)
        self.ctl.callback.on_step_begin(0, [])
        return self.ctl.applied[out["id"]]


class _T:
    def __init__(self, tid):
        self.trial_id = tid


class _C:
    def __init__(self, path):
        self.path = path


def test_stop_resume_continues_from_the_checkpoint(tmp_path):
    s = Sim(tmp_path)
    tid, cfg = s.start()
    assert cfg[CONTROL_KEY] == {"id": "run-0000", "seed": 7} and cfg["lr"] == 0.1
    assert s.report(tid, 1) is False
    assert s.op("stop", "run-0000")["outcome"] == "applied"
    assert s.client.runs()["run-0000"]["status"] == "stopped"
    assert s.report(tid, 2) is True  # the stopper ends the trial at its next result
    s.ctl.searcher.on_trial_complete(tid)
    assert s.ctl.runs["run-0000"]["status"] == "stopped"
    with pytest.raises(RefusedError, match="only an ongoing run can be stopped"):
        s.client.stop("run-0000", wait=False)
    assert s.op("resume", "run-0000")["outcome"] == "applied"
    tid2, cfg2 = s.start()  # the resumed run comes before new runs
    assert cfg2[CONTROL_KEY] == {"id": "run-0000", "seed": 7,
                                 "resume_from": os.path.join(s.dir, "ck", tid, "2")}
    s.report(tid2, 1)
    assert s.ctl.runs["run-0000"]["chunks"] == 3 and s.ctl.runs["run-0000"]["trials"] == [
        tid, tid2]


def test_resume_before_the_trial_halted_cancels_the_stop(tmp_path):
    s = Sim(tmp_path)
    tid, _ = s.start()
    s.report(tid, 1)
    s.op("stop", "run-0000")
    s.op("resume", "run-0000")
    assert s.report(tid, 2) is False
    assert s.ctl.queue == []


def test_delete_drops_metrics_and_takes_no_more_ops(tmp_path):
    s = Sim(tmp_path)
    tid, _ = s.start()
    s.report(tid, 1)
    assert s.ctl.runs["run-0000"]["last"]["loss"] == 1.0
    assert s.op("delete", "run-0000")["outcome"] == "applied"
    assert s.client.runs()["run-0000"]["last"] == {}
    assert s.report(tid, 2) is True and s.ctl.runs["run-0000"]["last"] == {}
    for op in OPS:
        with pytest.raises(RefusedError, match="deleted and takes no more operations"):
            s.client.op(op, "run-0000", wait=False)
    # journaled behind the client's back: the driver refuses it too
    s.client.journal.append({"kind": "op", "id": "x1", "op": "resume", "run": "run-0000"})
    s.ctl.poll()
    assert s.ctl.applied["x1"]["outcome"] == "refused"
    assert s.client.journal.outcomes()["x1"]["reason"].startswith("the run is deleted")


def test_clone_warm_cold_and_invalid(tmp_path):
    s = Sim(tmp_path, n=1)
    tid, _ = s.start()
    out = s.op("clone", "run-0000", edits=["lr=0.5"], warm=True)
    assert out == {"outcome": "applied", "reason": "parent has no checkpoint; cold clone",
                   "new_run": "run-0001"}
    s.report(tid, 3)
    out = s.op("clone", "run-0000", edits={"lr": 0.25}, warm=True)
    assert out["new_run"] == "run-0002"
    before = s.ctl.get_state()
    bad = s.op("clone", "run-0000", edits=["lr=-1"], warm=True)
    assert bad["outcome"] == "refused" and "clone.lr: must be a positive float" in bad["reason"]
    after = s.ctl.get_state()
    assert {k: v for k, v in after.items() if k != "applied"} == {
        k: v for k, v in before.items() if k != "applied"}  # nothing half-applied
    _, c1 = s.start()
    _, c2 = s.start()
    assert c1 == {"lr": 0.5, CONTROL_KEY: {"id": "run-0001", "seed": 8, "clone_of": "run-0000"}}
    pin = os.path.join(s.dir, "rafiki_control", "pins", "run-0002")
    assert c2 == {"lr": 0.25, CONTROL_KEY: {"id": "run-0002", "seed": 9, "warm_from": pin,
                                            "clone_of": "run-0000"}}
    with open(os.path.join(pin, "w")) as f:  # a copy of the parent's checkpoint
        assert f.read() == "3"
    assert s.ctl.runs["run-0002"]["parent"] == "run-0000" and s.ctl.runs["run-0002"]["warm"]


def test_completed_ignores_and_failed_accepts_only_delete(tmp_path):
    s = Sim(tmp_path, n=2)
    t0, _ = s.start()
    t1, _ = s.start()
    s.report(t0, 1)
    s.ctl.searcher.on_trial_complete(t0)
    s.ctl.searcher.on_trial_complete(t1, error=True)
    assert s.op("stop", "run-0000")["outcome"] == "ignored"
    assert s.op("resume", "run-0000")["outcome"] == "ignored"
    assert s.ctl.runs["run-0000"]["status"] == "completed"
    for op in ("stop", "resume", "clone"):
        with pytest.raises(RefusedError, match="a failed run accepts only delete"):
            s.client.op(op, "run-0001", wait=False)
    assert s.op("delete", "run-0001")["outcome"] == "applied"
    assert s.ctl.searcher.suggest("t9") == Searcher.FINISHED


def test_runs_not_started_yet_can_be_controlled(tmp_path):
    s = Sim(tmp_path, n=3)
    assert sorted(s.client.runs()) == ["run-0000", "run-0001", "run-0002"]
    assert s.op("delete", "run-0001")["outcome"] == "applied"
    assert s.op("stop", "run-0002")["outcome"] == "applied"
    _, c0 = s.start()
    assert c0[CONTROL_KEY]["id"] == "run-0000"
    assert s.start()[1] is None  # run-0001 deleted, run-0002 stopped: nothing else to start
    assert s.op("resume", "run-0002")["outcome"] == "applied"
    _, c2 = s.start()
    assert c2[CONTROL_KEY] == {"id": "run-0002", "seed": 9}  # no checkpoint yet: cold
    assert s.ctl.runs["run-0001"]["trials"] == []


def test_unknown_run_and_bad_requests(tmp_path):
    s = Sim(tmp_path)
    s.start()
    with pytest.raises(RefusedError, match="no such run"):
        s.client.stop("run-0042", wait=False)
    with pytest.raises(ValueError, match="op: must be one of"):
        s.client.op("pause", "run-0000")
    with pytest.raises(ValueError, match="--set and --warm belong to clone only"):
        s.client.op("stop", "run-0000", warm=True)
    with pytest.raises(ValueError, match="has no live-control status"):
        Control(str(tmp_path / "nowhere")).runs()


def test_restore_applies_each_journaled_op_exactly_once(tmp_path):
    s = Sim(tmp_path, n=2)
    t0, _ = s.start()
    s.report(t0, 2)
    s.op("clone", "run-0000", edits={"lr": 0.3}, warm=True)
    snapshot = pickle.loads(pickle.dumps(s.ctl.callback.get_state()))  # Tune's snapshot
    s.op("clone", "run-0000", edits={"lr": 0.4})   # applied after the snapshot ...
    s.op("stop", "run-0000")
    assert len(s.ctl.runs) == 4
    # ... the driver dies; Tuner.restore hands the snapshot back
    s.ctl.callback.set_state(snapshot)
    assert len(s.ctl.runs) == 3 and s.ctl.runs["run-0000"]["status"] == "ongoing"
    s.ctl.callback.on_step_begin(0, [])
    s.ctl.callback.on_step_begin(0, [])
    assert len(s.ctl.runs) == 4 and s.ctl.runs["run-0000"]["status"] == "stopped"
    clones = [r for r in s.ctl.runs.values() if r["origin"] == "clone"]
    assert sorted(r["config"]["lr"] for r in clones) == [0.3, 0.4]
    assert len(s.ctl.queue) == 2
    ops = Journal(s.dir).ops()
    assert len(ops) == 3 and set(s.ctl.applied) == {o["id"] for o in ops}


def test_an_op_journaled_while_the_driver_applies_another_is_not_lost(tmp_path):
    s = Sim(tmp_path, n=2)
    t0, _ = s.start()
    s.report(t0, 1)
    late = {}

    def validate_and_race(config):  # runs inside poll(), while the clone is being applied
        if not late:
            late["op"] = s.client.op("stop", "run-0000", wait=False)

    s.ctl.validate = validate_and_race
    s.client.op("clone", "run-0000", wait=False)
    s.ctl.poll()
    s.ctl.poll()  # the next step picks the late op up
    assert s.ctl.applied[late["op"]["id"]]["outcome"] == "applied"
    assert s.ctl.runs["run-0000"]["status"] == "stopped"
    assert s.ctl.poll() == 0  # and nothing is applied twice


def test_pickled_parts_share_one_controller(tmp_path):
    s = Sim(tmp_path)
    parts = (s.ctl.searcher, s.ctl.callback, s.ctl.stopper)
    a, b, c = pickle.loads(pickle.dumps(parts))
    assert a.control is s.ctl and b.control is s.ctl and c.control is s.ctl
    blob = pickle.dumps(parts)
    del _REGISTRY[s.ctl.key]  # as in a fresh process (Tuner.restore)
    a, b, c = pickle.loads(blob)
    assert a.control is b.control is c.control and a.control is not s.ctl
    assert a.control.experiment_dir == s.ctl.experiment_dir


def test_wrapped_searcher_sees_only_its_trials(tmp_path):
    class Two(Searcher):
        def __init__(self):
            super().__init__(metric="loss", mode="min")
            self.n, self.done = 0, []

        def suggest(self, trial_id):  # never finishes by itself
            self.n += 1
            return {"lr": 0.01 * self.n}

        def on_trial_complete(self, trial_id, result=None, error=False):
            self.done.append(trial_id)

    inner = Two()
    with pytest.raises(ValueError, match="LiveControl.num_samples: must be an int >= 1"):
        LiveControl(str(tmp_path), searcher=inner)
    s = Sim(tmp_path, n=0, searcher=inner, num_samples=2)
    t0, c0 = s.start()
    assert c0["lr"] == 0.01 and c0[CONTROL_KEY]["id"] == "run-0000"
    s.report(t0, 1)
    s.op("clone", "run-0000", edits={"lr": 0.5})
    t1, c1 = s.start()
    assert c1["lr"] == 0.5
    t2, _ = s.start()
    assert s.start()[1] is None  # two runs proposed: the searcher is done, trials still live
    assert inner.n == 2
    for t in (t0, t1, t2):
        s.ctl.searcher.on_trial_complete(t)
    assert inner.done == [t0, t2]
    assert s.ctl.searcher.suggest("t99") == Searcher.FINISHED


def test_journal_survives_a_torn_line(tmp_path):
    j = Journal(str(tmp_path))
    j.append({"kind": "op", "id": "a"})
    with open(j.path, "ab") as f:
        f.write(b'{"kind": "op", "id": "tor')
    j.append({"kind": "op", "id": "b"})
    assert [r["id"] for r in j.ops()] == ["a", "b"]


def test_edits():
    assert parse_edits(["a.b=1", "c=x", "d=[1, 2]", 'e="3"', "f=1e-3"]) == {
        "a.b": 1, "c": "x", "d": [1, 2], "e": "3", "f": 1e-3}
    assert apply_edits({"a": {"b": 0, "z": 1}}, {"a.b": 2, "n.m": 3}) == {
        "a": {"b": 2, "z": 1}, "n": {"m": 3}}
    with pytest.raises(ValueError, match="set.a.b.c: a.b is not a dict"):
        apply_edits({"a": {"b": 1}}, {"a.b.c": 2})
    with pytest.raises(ValueError, match="managed by rafiki_ray"):
        parse_edits([f"{CONTROL_KEY}.id=x"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=12), max_size=4) | st.text() | st.integers())
def test_parse_edits_raises_only_value_or_type_errors(items):
    try:
        out = parse_edits(items)
    except (ValueError, TypeError):
        return
    assert all(isinstance(k, str) and k for k in out)


def test_cli(tmp_path, capsys):
    s = Sim(tmp_path)
    tid, _ = s.start()
    s.report(tid, 2)
    parser = argparse.ArgumentParser(prog="rafiki-ray")
    ctl_cli.add_parser(parser.add_subparsers(dest="command"))

    def run(*argv):
        args = parser.parse_args(["ctl", s.dir, *argv])
        rc = args.func(args)
        s.ctl.poll()
        return rc, capsys.readouterr().out

    rc, out = run("clone", "run-0000", "--set", "lr=0.05", "--warm", "--no-wait")
    assert rc == 0 and '"outcome": "pending"' in out
    assert s.ctl.runs["run-0003"]["config"]["lr"] == 0.05 and s.ctl.runs["run-0003"]["warm"]
    rc, out = run("list")
    assert rc == 0 and "run-0003  ongoing" in out and "parent=run-0000" in out
    rc, out = run("resume", "run-0000")
    assert rc == 1 and "refused: only a stopped run can be resumed" in out
    assert os.path.exists(os.path.join(s.dir, "rafiki_control", "journal.jsonl"))
