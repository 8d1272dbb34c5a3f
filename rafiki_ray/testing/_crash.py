"""Driver-crash harness: SIGKILL a Tune driver mid-experiment, ``Tuner.restore`` it, report.

API
---
``run_crash_restore(factory, *, storage, name="crash", kill_after=4, factory_kwargs=None,
introspect=None, timeout_s=300, address=None, kill_when=None) -> dict``

* ``factory`` is an importable ``"module:function"``; ``function(**factory_kwargs)`` returns
  ``(trainable, tuner_kwargs)`` where ``tuner_kwargs`` holds what ``tune.Tuner`` takes besides
  the trainable (``param_space``, ``tune_config``, optionally ``run_config``; the harness sets
  ``storage_path``, ``name`` and ``verbose=0`` on it). It is called in both children, so it
  must build fresh objects each time.
* Phase 1: a child process (``start_new_session=True``, its own ``ray.init(num_cpus=2)``) runs
  ``Tuner(...).fit()``. The parent polls ``<storage>/<name>/experiment_state-*.json`` (Tune's
  snapshot, written every ``TUNE_GLOBAL_CHECKPOINT_S``, set to 0.5 s in the child) until the
  trials together have reported at least ``kill_after`` results, then SIGKILLs every process of
  the child's session (Ray's processes included) and checks that none is left. ``ray stop`` is
  never used: other Ray clusters on the machine are left alone.
* ``kill_after=None``: the experiment crashes itself at a point of its choosing (e.g. a
  callback of the factory that SIGKILLs its own driver right after a given event, with a long
  ``TUNE_GLOBAL_CHECKPOINT_S`` so that no snapshot comes in between); the harness waits for
  the child to die by SIGKILL (anything else is an error), then kills the rest of its session.
* Phase 2: a second child runs ``Tuner.restore(path, trainable, resume_unfinished=True).fit()``.
* ``address``: the children attach to this running Ray cluster (e.g. a
  ``ray.cluster_utils.Cluster`` the caller owns) instead of starting their own instance; only
  the driver is killed then, the cluster (and detached actors on it) lives on. Without a
  namespace of its own each driver gets an anonymous one: name actors' namespaces explicitly.
* ``kill_when``: an optional callable polled with the results; the kill waits until it also
  returns true (e.g. until a worker node the caller killed has seen its trials retried).
* Both children log the scheduler's messages and Tune's controller decisions (staging, actor
  reuse, status changes) at DEBUG to ``<storage>/<name>-crash-harness.log`` (``report["log"]``);
  ``log_excerpt(path)`` returns those lines, for a failing assertion to quote.
* ``stale_state``: optional ``"module:function"``; before the restore, the ``rafiki_scheduler_*``
  files in the experiment directory are put back as they were at an earlier poll, as when the
  kill lands while Tune uploads its snapshot and our files (separately, in a background
  thread): Tune's snapshot is then newer than the scheduler's state. The parent keeps every
  distinct version of the files it saw while polling; ``function(states)`` gets their
  scheduler states (oldest first; the last is the one at the kill) and returns the index of
  the version to restore from, or ``None``. ``report["stale_state"]`` is that index.
* ``introspect``: optional ``"module:function"`` called in the restore child as
  ``function(result_grid, experiment_path) -> JSON-able``; its value is ``report["introspection"]``.

The returned report (JSON data)::

    {"experiment_path": str,
     "results_before_kill": int,               # reported results seen in the snapshot
     "scheduler_state_before": dict | None,    # the persisted state (snapshot + journal) at the kill
     "scheduler_files_before": str,            # a copy of the rafiki_scheduler_* files
                                               # (state and journal) at the kill
     "scheduler_state_after": dict | None,     # the same file after the restored run
     "trials": {trial_id: {"config": dict, "iterations": [int, ...], "status": str,
                           "error": str | None}},
     "restore_error": str | None, "survivors": [pid, ...], "introspection": Any,
     "stale_state": int | None}                # see ``stale_state`` above

``iterations`` lists every ``training_iteration`` the trial reported over both runs (from
Tune's ``result.json``), so a trial resumed from its checkpoint reads 1,2,3,4,5 and one
restarted from scratch 1,2,1,2,3,4,5. Searchers use the same harness (the searcher's own
state is in Tune's ``searcher-state-*.pkl``; read it through ``introspect``).
"""

from __future__ import annotations

import argparse
import glob
import importlib
import json
import math
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

__all__ = ["load_factory", "log_excerpt", "run_crash_restore"]

STATE_FILE = "rafiki_scheduler_state.pkl"


def load_factory(spec: str) -> Any:
    """Import ``"module:function"``."""
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise ValueError(f"factory: must be 'module:function', got {spec!r}")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _jsonable(x: Any) -> Any:
    import numpy as np

    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, set)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, float) and math.isnan(x):
        return None
    if x is None or isinstance(x, (str, int, float, bool)):
        return x
    return repr(x)


def _read_state(path: str) -> dict[str, Any] | None:
    """The scheduler state persisted in ``path``: the snapshot plus its journal (replayed by
    a bare scheduler of the snapshot's class, as a restore would), else the snapshot alone."""
    from rafiki_ray.schedulers._persistence import read_persisted

    state = read_persisted(path)
    return None if state is None else _jsonable(state)


def _count_results(exp_dir: str) -> int:
    """Sum over trials of the last reported training_iteration in Tune's newest snapshot."""
    files = glob.glob(os.path.join(exp_dir, "experiment_state-*.json"))
    if not files:
        return -1
    newest = max(files, key=os.path.getmtime)
    try:
        with open(newest) as f:
            state = json.load(f)
    except (OSError, ValueError):
        return -1
    total = 0
    for _, runtime in state.get("trial_data", []):
        try:
            meta = json.loads(runtime) if isinstance(runtime, str) else runtime
            last = meta.get("last_result") or {}
            if isinstance(last, str):
                last = json.loads(last)
            total += int(last.get("training_iteration", 0) or 0)
        except Exception:
            continue
    return total


def _unpickled_state(files: dict[str, bytes]) -> dict[str, Any] | None:
    """The scheduler state in one version of the files; ``None`` when the state file is
    missing or was caught half-copied (Tune's upload does not write it atomically)."""
    try:
        return _jsonable(pickle.loads(files[STATE_FILE]).get("state"))
    except (KeyError, EOFError, pickle.UnpicklingError, ValueError, AttributeError):
        return None


def _scheduler_files(exp_dir: str) -> dict[str, bytes]:
    out = {}
    for file in glob.glob(os.path.join(exp_dir, "rafiki_scheduler_*")):
        try:
            with open(file, "rb") as f:
                out[os.path.basename(file)] = f.read()
        except OSError:
            continue
    return out


def _session_pids(sid: int) -> list[int]:
    """Live (non-zombie) processes of session ``sid``, read from ``/proc`` (Linux)."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp session ...": comm may contain spaces and parentheses
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 3 and fields[0] != "Z" and int(fields[3]) == sid:
            pids.append(int(name))
    return pids


def _kill_session(child: subprocess.Popen) -> list[int]:
    """SIGKILL every process in the child's session; return the pids still alive after."""
    sid = child.pid
    for _ in range(3):
        pids = _session_pids(sid)
        try:
            os.killpg(sid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        time.sleep(0.5)
        if not _session_pids(sid):
            return []
    return _session_pids(sid)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["TUNE_GLOBAL_CHECKPOINT_S"] = "0.5"
    env["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "0"  # result.json gives the iteration history
    env.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    env["PYTHONPATH"] = os.pathsep.join([os.getcwd(), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _spawn(args: list[str], log_path: str) -> subprocess.Popen:
    with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "rafiki_ray.testing._crash", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=_child_env(),
            cwd=os.getcwd(),
        )


def run_crash_restore(
    factory: str,
    *,
    storage: str,
    name: str = "crash",
    kill_after: int | None = 4,
    factory_kwargs: dict[str, Any] | None = None,
    introspect: str | None = None,
    timeout_s: float = 300.0,
    stale_state: str | None = None,
    address: str | None = None,
    kill_when: Any = None,
) -> dict[str, Any]:
    """Run, SIGKILL after ``kill_after`` results (None: wait for the experiment to SIGKILL
    itself), restore, finish; return the JSON report."""
    exp_dir = os.path.join(storage, name)
    kw = json.dumps(factory_kwargs or {})
    common = ["--factory", factory, "--storage", storage, "--name", name, "--kwargs", kw]
    if address:
        common += ["--address", address]
    log_path = os.path.join(storage, f"{name}-crash-harness.log")
    deadline = time.monotonic() + timeout_s
    child = _spawn(["fit", *common], log_path)
    seen = -1
    versions: list[dict[str, bytes]] = []  # distinct versions of the scheduler files seen
    try:
        while time.monotonic() < deadline:
            seen = _count_results(exp_dir)
            if stale_state:
                files = _scheduler_files(exp_dir)
                if files and (not versions or files != versions[-1]):
                    versions.append(files)
            if kill_after is not None and seen >= kill_after and (kill_when is None
                                                                  or kill_when()):
                break
            if kill_after is None and child.poll() is not None:
                if child.returncode != -signal.SIGKILL:
                    raise RuntimeError(
                        f"crash harness: the experiment ended (rc={child.returncode}) without "
                        f"killing itself; see {log_path}:\n{_tail(log_path)}")
                break
            if child.poll() is not None:
                raise RuntimeError(
                    f"crash harness: the experiment ended (rc={child.returncode}) before "
                    f"{kill_after} results were snapshotted; see {log_path}:\n{_tail(log_path)}"
                )
            time.sleep(0.05 if stale_state else 0.2)  # stale_state: catch every version
        else:
            raise TimeoutError(f"crash harness: no {kill_after} results (or kill_when never "
                               f"held) within {timeout_s} s; saw {seen}"
                               if kill_after is not None else
                               f"crash harness: the experiment did not crash within {timeout_s} s")
    finally:
        survivors = _kill_session(child)
    if survivors:
        raise RuntimeError(f"crash harness: processes {survivors} survived SIGKILL")
    # read once nothing writes any more: exactly the files the restore will download
    used_stale = None
    if stale_state:
        now = _scheduler_files(exp_dir)
        if now and (not versions or now != versions[-1]):
            versions.append(now)
        states = [_unpickled_state(v) for v in versions]
        used_stale = load_factory(stale_state)(states)
        if used_stale is not None:
            for file in glob.glob(os.path.join(exp_dir, "rafiki_scheduler_*")):
                os.remove(file)
            for fname, data in versions[used_stale].items():
                with open(os.path.join(exp_dir, fname), "wb") as f:
                    f.write(data)
    state_before = _read_state(exp_dir)
    files_before = os.path.join(storage, f"{name}-at-kill")
    os.makedirs(files_before, exist_ok=True)
    for file in glob.glob(os.path.join(exp_dir, "rafiki_scheduler_*")):
        shutil.copy2(file, files_before)
    out = os.path.join(storage, f"{name}-restore-report.json")
    args = ["restore", *common, "--out", out]
    if introspect:
        args += ["--introspect", introspect]
    child = _spawn(args, log_path)
    try:
        rc = child.wait(timeout=max(10.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        rc = None
    finally:
        survivors = _kill_session(child)
    if rc is None:
        raise TimeoutError(f"crash harness: restore did not finish; see {log_path}")
    if not os.path.exists(out):
        raise RuntimeError(f"crash harness: restore failed (rc={rc}):\n{_tail(log_path)}")
    with open(out) as f:
        report = json.load(f)
    report["results_before_kill"] = seen
    report["scheduler_state_before"] = state_before
    report["scheduler_files_before"] = files_before
    report["scheduler_state_after"] = _read_state(exp_dir)
    report["survivors"] = survivors
    report["stale_state"] = used_stale
    report["log"] = log_path
    return report


#: Log lines worth quoting when a crash test fails: the scheduler's own and Tune's decisions.
_EXCERPT_KEYS = ("rafiki_ray", "Setting status", "Staging trial", "re-use actor",
                 "Reusing ACTOR", "Actor STARTED", "Actor REUSED", "Traceback", "Error")


def log_excerpt(path: str, limit: int = 400) -> str:
    """The last ``limit`` lines of the harness log that record a scheduler or Tune decision."""
    try:
        with open(path, errors="replace") as f:
            lines = [ln.rstrip() for ln in f if any(k in ln for k in _EXCERPT_KEYS)]
    except OSError:
        return ""
    return "\n".join(lines[-limit:])


def _tail(path: str, n: int = 4000) -> str:
    try:
        with open(path, "rb") as f:
            return f.read()[-n:].decode(errors="replace")
    except OSError:
        return ""


def _trial_history(trial_dir: str) -> list[int]:
    iters: list[int] = []
    path = os.path.join(trial_dir, "result.json")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        iters.append(int(json.loads(line).get("training_iteration", 0)))
                    except ValueError:
                        continue
    return iters


def _child(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("phase", choices=["fit", "restore"])
    parser.add_argument("--factory", required=True)
    parser.add_argument("--storage", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--kwargs", default="{}")
    parser.add_argument("--out")
    parser.add_argument("--introspect")
    parser.add_argument("--address")
    a = parser.parse_args(argv)

    import dataclasses
    import logging

    import ray

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.getLogger("rafiki_ray").addHandler(handler)
    logging.getLogger("rafiki_ray").setLevel(logging.DEBUG)
    # Tune's controller decisions (staging, actor reuse, status changes) go to the log too:
    # a failed crash test quotes them (see ``log_excerpt``)
    tune_log = logging.getLogger("ray.tune.execution.tune_controller")
    tune_log.addHandler(handler)
    tune_log.setLevel(logging.DEBUG)
    from ray import tune

    if a.address:  # the caller's cluster: only this driver dies at the kill
        ray.init(address=a.address, log_to_driver=False, configure_logging=False)
    else:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)  # a new instance, never another process's cluster
    trainable, tuner_kwargs = load_factory(a.factory)(**json.loads(a.kwargs))
    exp_dir = os.path.join(a.storage, a.name)
    if a.phase == "fit":
        run_config = tuner_kwargs.pop("run_config", None) or tune.RunConfig()
        run_config = dataclasses.replace(run_config, storage_path=a.storage, name=a.name, verbose=0)
        tune.Tuner(trainable, run_config=run_config, **tuner_kwargs).fit()
        return 0
    error = None
    grid = None
    try:
        tuner = tune.Tuner.restore(exp_dir, trainable, resume_unfinished=True)
        grid = tuner.fit()
    except Exception as exc:  # reported, not raised: the parent decides
        error = f"{type(exc).__name__}: {exc}"
    trials: dict[str, Any] = {}
    if grid is not None:
        for res in grid:
            tid = (res.metrics or {}).get("trial_id") or os.path.basename(res.path)
            trials[tid] = {
                "config": _jsonable(res.config),
                "iterations": _trial_history(res.path),
                "status": "ERROR" if res.error else "TERMINATED",
                "error": str(res.error) if res.error else None,
                "last": _jsonable(res.metrics or {}),
            }
    introspection = None
    if a.introspect and grid is not None:
        introspection = _jsonable(load_factory(a.introspect)(grid, exp_dir))
    report = {
        "experiment_path": exp_dir,
        "trials": trials,
        "restore_error": error,
        "introspection": introspection,
    }
    with open(a.out, "w") as f:
        json.dump(report, f)
    ray.shutdown()
    return 0


if __name__ == "__main__":  # pragma: no cover - runs in the harness's children
    sys.exit(_child(sys.argv[1:]))
