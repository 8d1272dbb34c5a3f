"""Read a Tune experiment directory back: trials, their configs and result histories.

``load_experiment(path)`` needs no Ray: it reads each trial directory's ``params.json`` and
``rafiki_result.json`` (written by ``rafiki_ray.runs``; complete across pauses) or else
``result.json`` (one JSON object per line) and, when present, live control's
``rafiki_control/status.json`` (run ids, run states; deleted runs are dropped unless
``include_deleted``) and the rafiki schedulers' state file (rungs, PBT lineage).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from rafiki_ray._errors import invalid

__all__ = ["ExperimentData", "TrialData", "load_experiment"]


@dataclass
class TrialData:
    trial_id: str
    dir: str
    config: dict[str, Any]
    results: list[dict[str, Any]]
    run_id: str | None = None

    def series(self, metric: str, x: str = "training_iteration") -> tuple[list, list]:
        pts = [(r[x], r[metric]) for r in self.results
               if isinstance(r.get(metric), (int, float)) and x in r]
        return [p[0] for p in pts], [p[1] for p in pts]


@dataclass
class ExperimentData:
    path: str
    trials: dict[str, TrialData]
    control: dict[str, Any] | None = None
    scheduler_state: dict[str, Any] | None = None
    runs: dict[str, list[str]] = field(default_factory=dict)  # run id -> trial ids

    def metrics(self) -> list[str]:
        names: dict[str, None] = {}
        for t in self.trials.values():
            for r in t.results:
                for k, v in r.items():
                    if isinstance(v, (int, float)) and not isinstance(v, bool):
                        names.setdefault(k, None)
        return list(names)


def _read_results(path: str) -> list[dict[str, Any]]:
    out = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        continue  # a line being written
    return out


def load_experiment(path: str, *, include_deleted: bool = False) -> ExperimentData:
    """Read ``path`` (a Tune experiment directory); see the module docstring."""
    path = os.path.abspath(os.fspath(path))
    if not os.path.isdir(path):
        raise invalid("experiment_dir", "is not a directory", path)
    control = None
    status_path = os.path.join(path, "rafiki_control", "status.json")
    if os.path.exists(status_path):
        with open(status_path) as f:
            control = json.load(f)
    trials: dict[str, TrialData] = {}
    for name in sorted(os.listdir(path)):
        d = os.path.join(path, name)
        # rafiki_result.json (rafiki_ray.runs._history) keeps the rows a pause cuts from
        # Tune's result.json
        results = _read_results(os.path.join(d, "rafiki_result.json")) or _read_results(
            os.path.join(d, "result.json"))
        if not os.path.isdir(d) or not (results or os.path.exists(os.path.join(d,
                                                                               "params.json"))):
            continue
        config: dict[str, Any] = {}
        if os.path.exists(os.path.join(d, "params.json")):
            with open(os.path.join(d, "params.json")) as f:
                config = json.load(f)
        tid = results[-1]["trial_id"] if results else name
        run = (config.get("__rafiki_run") or {}).get("id")
        trials[tid] = TrialData(tid, d, config, results, run)
    runs: dict[str, list[str]] = {}
    for t in trials.values():
        if t.run_id:
            runs.setdefault(t.run_id, []).append(t.trial_id)
    if control is not None and not include_deleted:
        gone = {rid for rid, r in control["runs"].items() if r["status"] == "deleted"}
        trials = {k: t for k, t in trials.items() if t.run_id not in gone}
        runs = {k: v for k, v in runs.items() if k not in gone}
    for rid, tids in runs.items():  # a run's trials in the order they ran
        order = (control or {}).get("runs", {}).get(rid, {}).get("trials")
        if order:
            tids.sort(key=lambda t: order.index(t) if t in order else len(order))
    from rafiki_ray.schedulers._persistence import read_persisted

    sched = read_persisted(path)  # snapshot + journal
    return ExperimentData(path, trials, control, sched, runs)
