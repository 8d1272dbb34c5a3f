"""The issue's main scenario: two dozen configurations on digits under live control.

``factory`` builds the run (also for the crash harness's children), ``script`` is the user
issuing operations while it runs, ``introspect`` collects what the checks need in the
restore child, ``check`` asserts the rules on it.
"""

from __future__ import annotations

import json
import os
from typing import Any

from tests.control._live import issue, wait_for
from tests.runs._digits import base_config, digits_data, digits_spec

N_CHUNKS = 2


def config_group() -> list:
    from rafiki_ray.runs import GridSearch, List, RandomSearch, Range

    first = base_config(lr=0.05, epochs=3, delay=0.2)  # long enough to be stopped mid-run
    grid = GridSearch(base_config(lr=List([0.02, 0.05, 0.1]), hidden=List([8, 16, 32])))
    rand = RandomSearch(base_config(lr=Range(0.01, 0.2), hidden=List([8, 16, 32])),
                        num_runs=14, seed=3)
    return [first, grid, rand]  # 1 + 3x3 + 14 = 24 runs


def factory(storage: str, name: str) -> tuple[Any, dict]:
    from rafiki_ray.runs import prepare

    tr, ev = digits_data(400, 150)
    trainable, kwargs, _ = prepare(digits_spec(), config_group(), tr, ev, storage_path=storage,
                                   name=name, num_chunks=N_CHUNKS, metric="top1_accuracy",
                                   mode="max", max_concurrent_trials=2)
    return trainable, kwargs


def script(ctl: Any, log: list, timeout: float = 120.0) -> None:
    runs = ctl.runs
    wait_for(lambda: runs()["run-0000"]["chunks"] >= 1, what="run-0000 past chunk 1")
    issue(ctl, log, "stop", "run-0000", timeout=timeout)
    # a result is in the status before its checkpoint is: a warm clone needs the checkpoint
    wait_for(lambda: runs()["run-0001"]["checkpoint"], what="run-0001's first checkpoint")
    issue(ctl, log, "clone", "run-0001", edits=["train.optimizer.args.lr=0.03",
                                                "train.epochs=3"], warm=True, timeout=timeout)
    issue(ctl, log, "delete", "run-0020", timeout=timeout)
    issue(ctl, log, "clone", "run-0020", timeout=timeout)  # refused: deleted
    wait_for(lambda: runs()["run-0000"]["live"] is None, timeout=600, what="run-0000 halted")
    issue(ctl, log, "resume", "run-0000", timeout=timeout)


def crash_script(ctl: Any, log: list, at_kill: str) -> None:
    """Before the kill: as :func:`script` up to the refused clone. After the kill (the
    harness made ``at_kill``), with no driver running: resume run-0000 and delete run-0010;
    the restored driver must apply both. Any op may also wait across the kill for the
    restored driver (the kill comes after a number of results, not after an op)."""
    runs = ctl.runs
    wait_for(lambda: runs()["run-0000"]["chunks"] >= 1, what="run-0000 past chunk 1")
    issue(ctl, log, "stop", "run-0000", timeout=900)
    # a result is in the status before its checkpoint is: a warm clone needs the checkpoint
    wait_for(lambda: runs()["run-0001"]["checkpoint"], what="run-0001's first checkpoint")
    issue(ctl, log, "clone", "run-0001", edits=["train.optimizer.args.lr=0.03",
                                                "train.epochs=3"], warm=True, timeout=900)
    issue(ctl, log, "delete", "run-0020", timeout=900)
    issue(ctl, log, "clone", "run-0020", timeout=900)  # refused: deleted
    wait_for(lambda: os.path.isdir(at_kill), timeout=900, what="the kill")
    issue(ctl, log, "resume", "run-0000", timeout=900)
    issue(ctl, log, "delete", "run-0010", timeout=900)


def introspect(grid: Any, exp_dir: str) -> dict:
    from rafiki_ray.control import Journal
    from rafiki_ray.experiment_data import load_experiment

    # the histories from rafiki_result.json: Tune's result.json (and so the Result's
    # metrics_dataframe) loses rows when a trial yields its slot and resumes
    data = load_experiment(exp_dir, include_deleted=True)
    trials = {}
    for res in grid:
        tid = res.metrics.get("trial_id", os.path.basename(res.path))
        rows = data.trials[tid].results if tid in data.trials else []
        trials[tid] = {
            "run": res.config["__rafiki_run"]["id"],
            "start": res.config["__rafiki_run"],
            "chunks": [int(r["chunks_done"]) for r in rows],
            "error": None if res.error is None else str(res.error)}
    with open(os.path.join(exp_dir, "rafiki_control", "status.json")) as f:
        status = json.load(f)
    return {"trials": trials, "status": status, "journal": Journal(exp_dir).read()}


def check(info: dict, log: list) -> None:
    """The rules of live control on the finished experiment."""
    assert [e[:3] for e in log] == [("stop", "run-0000", "applied"),
                                    ("clone", "run-0001", "applied"),
                                    ("delete", "run-0020", "applied"),
                                    ("clone", "run-0020", "refused"),
                                    ("resume", "run-0000", "applied")], log
    st, trials = info["status"], info["trials"]
    _check_common(info, log)
    by_run: dict[str, list] = {}
    for t in trials.values():
        by_run.setdefault(t["run"], []).append(t)
    assert {r for r, v in st["runs"].items() if v["status"] != "completed"} == {"run-0020"}, {
        r: (v["status"], v["trials"], v["live"], v["chunks"]) for r, v in st["runs"].items()
        if v["status"] != "completed"}
    assert sorted(len(v) for r, v in by_run.items()
                  if r not in ("run-0000", "run-0020")) == [1] * 23
    # the stopped run: two trials, the second resumed from the first's checkpoint
    segs = sorted(by_run["run-0000"], key=lambda t: t["chunks"][0])
    assert len(segs) == 2 and "resume_from" in segs[1]["start"]
    assert segs[0]["chunks"] + segs[1]["chunks"] == list(range(1, 3 * N_CHUNKS + 1))
    (c,) = by_run[log[1][3]]
    assert c["chunks"] == list(range(st["runs"][log[1][3]]["from_chunk"] + 1,
                                     3 * N_CHUNKS + 1)), (c, st["runs"][log[1][3]])


def check_crash(info: dict, log: list) -> None:
    """The rules after a driver crash: each journaled op applied exactly once, the ops
    journaled while no driver ran applied by the restored one. A trial restored by Tune may
    repeat the chunks after its last snapshotted checkpoint, so chunks are compared as sets."""
    assert [e[:3] for e in log] == [("stop", "run-0000", "applied"),
                                    ("clone", "run-0001", "applied"),
                                    ("delete", "run-0020", "applied"),
                                    ("clone", "run-0020", "refused"),
                                    ("resume", "run-0000", "applied"),
                                    ("delete", "run-0010", "applied")], log
    st, trials = info["status"], info["trials"]
    _check_common(info, log)
    assert st["runs"]["run-0010"]["status"] == "deleted"
    assert st["runs"]["run-0010"]["last"] == {}
    by_run: dict[str, list] = {}
    for t in trials.values():
        by_run.setdefault(t["run"], []).append(t)
    assert {r for r, v in st["runs"].items() if v["status"] != "completed"} == {
        "run-0010", "run-0020"}
    for rid, segs in by_run.items():
        if rid in ("run-0010", "run-0020"):
            continue
        # one trial per run, two for the resumed run-0000 unless its resume came before its
        # restored trial had halted (then the stop is cancelled and that trial goes on)
        assert len(segs) == 1 or (rid == "run-0000" and len(segs) == 2), (rid, segs)
        done = sorted({c for t in segs for c in t["chunks"]})
        first = st["runs"][rid]["from_chunk"] + 1
        epochs = st["runs"][rid]["config"]["train"]["epochs"]
        assert done == list(range(first, epochs * N_CHUNKS + 1)), (rid, segs)


def _check_common(info: dict, log: list) -> None:
    st, trials = info["status"], info["trials"]
    runs = st["runs"]
    assert len(runs) == 25 and st["finished"] is True
    clone = log[1][3]
    assert clone == "run-0024"
    by_run: dict[str, list] = {}
    for tid, t in trials.items():
        assert t["error"] is None, (tid, t["error"])
        by_run.setdefault(t["run"], []).append(t)
    # deleted (with runs taking turns chunk by chunk it has usually started by then): no
    # metrics, no more trials after the one it had
    assert runs["run-0020"]["status"] == "deleted" and len(by_run.get("run-0020", [])) <= 1
    assert runs["run-0020"]["last"] == {}
    # each journaled op applied exactly once: one outcome in the final state per op, one
    # clone run, and every trial belongs to a run
    ops = [r for r in info["journal"] if r["kind"] == "op"]
    assert len(ops) == len([e for e in log if e[2] != "refused"])
    assert set(st["ops"]) == {o["id"] for o in ops}
    assert all(o["outcome"] == "applied" for o in st["ops"].values())
    assert [r for r, v in runs.items() if v["origin"] == "clone"] == [clone]
    # the warm clone: started at its parent's chunk, with the edits
    (c,) = by_run[clone]
    assert runs[clone]["parent"] == "run-0001" and runs[clone]["warm"] is True
    assert "warm_from" in c["start"] and runs[clone]["from_chunk"] >= 1
    cfg = runs[clone]["config"]
    assert cfg["train"]["optimizer"]["args"]["lr"] == 0.03 and cfg["train"]["epochs"] == 3
