"""Discrete-event replay of a learning-curve table that drives REAL Tune scheduler objects.

A simulated cluster of ``W`` workers trains trials whose per-epoch metric and time come from
the table recorded by ``benchmarks/lc_table/record.py``. The scheduler under test (Ray's
``ASHAScheduler``, ``HyperBandScheduler``, ``MedianStoppingRule``, ``FIFOScheduler`` or one of
ours) is called through Tune's own scheduler interface, with real ``ray.tune.experiment.Trial``
objects and a :class:`SimController` that offers exactly what Tune hands to a scheduler
(``search_alg``, ``get_trials``, ``get_live_trials``, ``_set_trial_status``, ``pause_trial``,
``stop_trial``, ``_schedule_trial_save``). So thousands of experiments replay in seconds.

How the replay mirrors ``TuneController`` (Ray 2.60, ``tune/execution/tune_controller.py``):

* the searcher keeps one PENDING trial queued while it has configurations (Tune allows one
  pending trial per ``Searcher``); each new trial goes through ``scheduler.on_trial_add``;
* a free worker takes ``scheduler.choose_trial_to_run(controller)``; when that is ``None`` it
  starts the oldest PENDING trial, as Tune's ``_maybe_add_actors`` step 2 does;
* every epoch is one result (``training_iteration`` = epochs done; ``time_total_s`` = the trial's
  own training time) passed to ``on_trial_result``; CONTINUE runs the next epoch, PAUSE frees the
  worker (the trial resumes later at the next epoch, as if from its checkpoint), STOP and the end
  of the table's curve go through ``stop_trial`` (``on_trial_complete`` + searcher complete);
* ``pause_trial`` / ``stop_trial`` on OTHER trials behave like Tune's: a paused or pending trial
  that is stopped gets ``on_trial_remove``.

Simplifications: pausing and resuming cost no time (``resume_overhead_s`` adds some), results are
never buffered, trials never fail. With ``workers=1`` the order of events equals a real Tune run
with one slot (checked by ``tests/benchmarks/test_simulator.py``).
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import os
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler
from ray.tune.search import Searcher

__all__ = [
    "DEFAULT_TABLE",
    "LCTable",
    "RandomRows",
    "SearcherRows",
    "SimController",
    "SimResult",
    "simulate",
]

DEFAULT_TABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lc_table",
                             "mnist1d_mlp.npz")


# --------------------------------------------------------------------------------------- table
@dataclass(frozen=True, eq=False)
class LCTable:
    """Per-epoch curves of ``n`` configurations: ``values[i, e]`` is the metric after epoch e+1."""

    configs: tuple[dict[str, Any], ...]
    values: np.ndarray
    epoch_time: np.ndarray
    metric: str = "val_acc"
    mode: str = "max"
    space_spec: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str = DEFAULT_TABLE, metric: str = "val_acc") -> LCTable:
        with np.load(path) as d:
            meta = json.loads(str(d["meta"]))
            names = [k[4:] for k in d.files if k.startswith("cfg_")]
            cols = {k: d["cfg_" + k] for k in names}
            values = np.array(d[metric], dtype=float)
            times = np.array(d["epoch_time"], dtype=float)
        opts = meta.get("optimizers", [])
        configs = []
        for i in range(values.shape[0]):
            cfg: dict[str, Any] = {}
            for k, col in cols.items():
                v = col[i].item()
                if k == "optimizer" and opts:
                    v = opts[int(v)]
                cfg[k] = v
            configs.append(cfg)
        mode = meta.get("metrics", {}).get(metric, "max")
        return cls(tuple(configs), values, times, metric, mode, meta.get("space", {}), meta)

    @property
    def n(self) -> int:
        return int(self.values.shape[0])

    @property
    def epochs(self) -> int:
        return int(self.values.shape[1])

    def sign(self) -> float:
        return 1.0 if self.mode == "max" else -1.0

    def final(self) -> np.ndarray:
        return self.values[:, -1]

    def best_final(self) -> float:
        f = self.final()
        return float(np.nanmax(f) if self.mode == "max" else np.nanmin(f))

    def target(self, rel: float = 0.01) -> float:
        """A final metric within ``rel`` (relative) of the table's best final metric."""
        b = self.best_final()
        return b * (1 - rel) if self.mode == "max" else b * (1 + rel)

    def reaches(self, value: float, target: float) -> bool:
        if not math.isfinite(value):
            return False
        return value >= target if self.mode == "max" else value <= target

    def subset(self, rows: Sequence[int]) -> LCTable:
        rows = list(rows)
        return LCTable(tuple(self.configs[i] for i in rows), self.values[rows],
                       self.epoch_time[rows], self.metric, self.mode, self.space_spec, self.meta)

    def search_space(self) -> Any:
        """The configuration space as a :class:`rafiki_ray.spaces.SearchSpace`."""
        from rafiki_ray.spaces import Categorical, Float, SearchSpace

        params: dict[str, Any] = {}
        for k, spec in self.space_spec.items():
            if spec and spec[0] in ("log", "uniform"):
                params[k] = Float(float(spec[1]), float(spec[2]), log=spec[0] == "log")
            else:
                params[k] = Categorical(list(spec))
        return SearchSpace(params)

    def _unit_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        num, cat = [], []
        for k, spec in self.space_spec.items():
            col = [c[k] for c in self.configs]
            if spec and spec[0] in ("log", "uniform"):
                lo, hi = float(spec[1]), float(spec[2])
                x = np.asarray(col, dtype=float)
                if spec[0] == "log":
                    x, lo, hi = np.log(x), math.log(lo), math.log(hi)
                num.append((x - lo) / (hi - lo))
            else:
                cat.append(np.asarray([list(spec).index(v) for v in col]))
        n = self.n
        return (np.stack(num, 1) if num else np.zeros((n, 0)),
                np.stack(cat, 1) if cat else np.zeros((n, 0), int))

    def nearest_row(self, cfg: dict[str, Any], exclude: Iterable[int] = ()) -> int:
        """Row nearest to ``cfg`` (unit-cube distance; a categorical mismatch counts 1)."""
        if not hasattr(self, "_units"):
            object.__setattr__(self, "_units", self._unit_matrix())
        num, cat = self._units  # type: ignore[attr-defined]
        q = LCTable((cfg,), self.values[:1], self.epoch_time[:1], self.metric, self.mode,
                    self.space_spec)._unit_matrix()
        d = ((num - q[0]) ** 2).sum(1) + (cat != q[1]).sum(1)
        ex = list(exclude)
        if ex and len(ex) < self.n:
            d[ex] = np.inf
        return int(np.argmin(d))


# ----------------------------------------------------------------------------- config sources
class RandomRows:
    """Random search over the table: rows without replacement, from a private seeded generator."""

    def __init__(self, table: LCTable, seed: int, rows: Sequence[int] | None = None) -> None:
        order = np.arange(table.n) if rows is None else np.asarray(rows)
        self._order = list(np.random.default_rng(seed).permutation(order)) if rows is None \
            else list(order)
        self._next = 0
        self.searcher: None = None  # what the controller exposes as ``search_alg``

    def next_row(self, trial_id: str) -> int | None:
        if self._next >= len(self._order):
            return None
        self._next += 1
        return int(self._order[self._next - 1])

    def on_result(self, trial_id: str, result: dict[str, Any]) -> None:
        pass

    def on_complete(self, trial_id: str, result: dict[str, Any] | None) -> None:
        pass


class SearcherRows:
    """Any Tune ``Searcher``: its suggestions are snapped to the nearest unused table row.

    The searcher is told the table's metric/mode/space through ``set_search_properties`` if it has
    none yet, and sees results and completions of its trials (for the configuration it proposed).
    """

    def __init__(self, table: LCTable, searcher: Searcher, max_trials: int | None = None) -> None:
        self.table = table
        self.searcher = searcher
        self._used: list[int] = []
        self._max = table.n if max_trials is None else max_trials
        if getattr(searcher, "metric", None) is None:
            searcher.set_search_properties(table.metric, table.mode, table.search_space())

    def next_row(self, trial_id: str) -> int | None:
        if len(self._used) >= self._max:
            return None
        cfg = self.searcher.suggest(trial_id)
        if cfg is None or cfg == Searcher.FINISHED:
            return None
        if "row" in cfg:  # a searcher over row indices (tests) picks rows directly
            row = int(cfg["row"])
        else:
            row = self.table.nearest_row(cfg, self._used)
        self._used.append(row)
        return row

    def on_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self.searcher.on_trial_result(trial_id, result)

    def on_complete(self, trial_id: str, result: dict[str, Any] | None) -> None:
        self.searcher.on_trial_complete(trial_id, result=result)


# -------------------------------------------------------------------------------- controller
class SimController:
    """The controller surface Tune hands to a scheduler, backed by the simulation."""

    def __init__(self, sim: _Sim) -> None:
        self._sim = sim

    @property
    def search_alg(self) -> Any:
        # No concurrency limiter is modelled (the W workers are the limit), so schedulers that
        # inspect Tune's search algorithm for one (ours do, for max_concurrent_trials) see none.
        return None

    def get_trials(self) -> list[Trial]:
        return self._sim.trials

    def get_live_trials(self) -> set[Trial]:
        return {t for t in self._sim.trials if t.status not in (Trial.TERMINATED, Trial.ERROR)}

    def _set_trial_status(self, trial: Trial, status: str) -> None:
        if trial.status == Trial.RUNNING and status != Trial.RUNNING:
            self._sim.release(trial)
        trial.set_status(status)
        if status == Trial.PENDING:
            self._sim.pending.append(trial)

    def pause_trial(self, trial: Trial, should_checkpoint: bool = True) -> None:
        if trial.status == Trial.RUNNING:
            self._sim.release(trial)
        if trial.status not in (Trial.TERMINATED, Trial.ERROR):
            trial.set_status(Trial.PAUSED)

    def stop_trial(self, trial: Trial) -> None:
        self._sim.stop(trial)

    def _schedule_trial_save(self, trial: Trial, result: dict | None = None) -> Any:
        return dict(trial.last_result or {})


# ---------------------------------------------------------------------------------- results
@dataclass
class SimResult:
    """What happened: per trial the table row and epochs trained, and the event log."""

    rows: dict[str, int]
    epochs_done: dict[str, int]
    status: dict[str, str]
    events: list[tuple[float, str, int, float, str]]  # (time, trial_id, epoch, value, decision)
    completions: list[tuple[float, str, int, float]]  # trials at the last epoch: (time, id, row, final)
    end_time: float
    total_epochs: int
    busy_time: float
    stranded: int  # trials left PAUSED/PENDING at the end

    def time_to(self, table: LCTable, target: float) -> float:
        """Simulated time at which a fully trained trial first has a final metric at ``target``."""
        for t, _, _, v in self.completions:
            if table.reaches(v, target):
                return t
        return math.inf

    def best_final(self, table: LCTable, by_time: float = math.inf) -> float:
        """Best final metric among trials trained to the last epoch by ``by_time``."""
        vals = [v for t, _, _, v in self.completions if t <= by_time and math.isfinite(v)]
        if not vals:
            return math.nan
        return max(vals) if table.mode == "max" else min(vals)

    def epochs_by(self, t: float) -> int:
        """Epochs trained (results reported) up to simulated time ``t``."""
        return sum(1 for e in self.events if e[0] <= t)

    def decisions(self) -> dict[str, tuple[int, str]]:
        """Per trial: (epochs trained, final status) — what a real Tune run can be compared on."""
        return {tid: (self.epochs_done[tid], self.status[tid]) for tid in self.rows}


# ------------------------------------------------------------------------------- simulation
class _Sim:
    def __init__(self, table: LCTable, scheduler: TrialScheduler, source: Any, workers: int,
                 resume_overhead_s: float, trial_prefix: str) -> None:
        self.table, self.scheduler, self.source = table, scheduler, source
        self.workers = workers
        self.overhead = resume_overhead_s
        self.prefix = trial_prefix
        self.ctrl = SimController(self)
        self.trials: list[Trial] = []
        self.row: dict[str, int] = {}
        self.done: dict[str, int] = {}
        self.ttime: dict[str, float] = {}
        self.running: set[str] = set()
        self.token: dict[str, int] = {}  # invalidates queued events of released trials
        self.heap: list[tuple[float, int, str, int]] = []
        self.seq = itertools.count()
        self.now = 0.0
        self.exhausted = False
        self.events: list[tuple[float, str, int, float, str]] = []
        self.completions: list[tuple[float, str, int, float]] = []
        self.busy = 0.0
        self.by_id: dict[str, Trial] = {}
        self.pending: deque[Trial] = deque()  # FIFO of trials that were set PENDING (lazy)
        self.n_seen = 0  # completions already checked against the target
        self.hit = False

    # -- trial lifecycle
    def new_trial(self) -> Trial | None:
        if self.exhausted:
            return None
        tid = f"{self.prefix}{len(self.trials):05d}"
        row = self.source.next_row(tid)
        if row is None:
            self.exhausted = True
            return None
        cfg = dict(self.table.configs[row])
        cfg["row"] = int(row)
        trial = Trial("replay", config=cfg, trial_id=tid, stub=True)
        self.trials.append(trial)
        self.by_id[tid] = trial
        self.row[tid], self.done[tid], self.ttime[tid] = int(row), 0, 0.0
        self.token[tid] = 0
        self.pending.append(trial)
        self.scheduler.on_trial_add(self.ctrl, trial)
        return trial

    def release(self, trial: Trial) -> None:
        tid = trial.trial_id
        if tid in self.running:
            self.running.discard(tid)
            self.token[tid] += 1

    def start(self, trial: Trial) -> None:
        tid = trial.trial_id
        resumed = self.done[tid] > 0
        trial.set_status(Trial.RUNNING)
        self.running.add(tid)
        self.token[tid] += 1
        if self.done[tid] >= self.table.epochs:  # resumed after its last epoch: it just ends
            self.stop(trial)
            return
        self._queue_epoch(trial, self.overhead if resumed else 0.0)

    def _queue_epoch(self, trial: Trial, extra: float) -> None:
        tid = trial.trial_id
        dt = float(self.table.epoch_time[self.row[tid], self.done[tid]]) + extra
        heapq.heappush(self.heap, (self.now + dt, next(self.seq), tid, self.token[tid]))

    def stop(self, trial: Trial) -> None:
        tid = trial.trial_id
        if trial.status in (Trial.TERMINATED, Trial.ERROR):
            return
        if trial.status in (Trial.PENDING, Trial.PAUSED):
            self.scheduler.on_trial_remove(self.ctrl, trial)
            self.source.on_complete(tid, None)
        else:
            last = dict(trial.last_result or {})
            self.scheduler.on_trial_complete(self.ctrl, trial, last)
            self.source.on_complete(tid, last)
        self.release(trial)
        trial.set_status(Trial.TERMINATED)

    # -- the loop
    def ensure_pending(self) -> None:
        # Tune's ``_maybe_update_trial_queue`` runs every step: one queued trial per searcher
        if self._first_pending() is None:
            self.new_trial()

    def fill(self) -> None:
        self.ensure_pending()
        while len(self.running) < self.workers:
            trial = self.scheduler.choose_trial_to_run(self.ctrl)
            if trial is None:
                trial = self._first_pending()
            if trial is None:
                return
            if trial.status not in (Trial.PENDING, Trial.PAUSED):
                raise RuntimeError(f"scheduler chose {trial} in status {trial.status}")
            self.start(trial)
            self.ensure_pending()

    def _first_pending(self) -> Trial | None:
        while self.pending and self.pending[0].status != Trial.PENDING:
            self.pending.popleft()
        return self.pending[0] if self.pending else None

    def step(self, time_t: float, tid: str) -> None:
        trial = self.by_id[tid]
        row = self.row[tid]
        k = self.done[tid]
        dt = float(self.table.epoch_time[row, k])
        self.busy += dt
        self.done[tid] = k + 1
        self.ttime[tid] += dt
        value = float(self.table.values[row, k])
        if k + 1 == self.table.epochs:  # trained to the end: its final metric is known now
            self.completions.append((time_t, tid, row, value))
        result = {
            self.table.metric: value, "training_iteration": k + 1, "epoch": k + 1,
            "time_total_s": self.ttime[tid], "time_this_iter_s": dt, "done": False,
            "trial_id": tid, "config": trial.config,
            "should_checkpoint": True,  # a replayed trial is checkpointed every epoch
        }
        # Tune's ``update_last_result`` also keeps per-metric statistics for reporting; the
        # schedulers only read ``last_result``, so set it directly (10x cheaper)
        trial.run_metadata.last_result = result
        decision = self.scheduler.on_trial_result(self.ctrl, trial, result)
        self.events.append((time_t, tid, k + 1, value, decision))
        if decision != TrialScheduler.STOP:
            self.source.on_result(tid, result)
        if trial.status != Trial.RUNNING:  # the scheduler paused/stopped it itself (NOOP path)
            return
        if decision == TrialScheduler.STOP:
            self.stop(trial)
        elif decision == TrialScheduler.PAUSE:
            self.release(trial)
            trial.set_status(Trial.PAUSED)
        elif decision in (TrialScheduler.CONTINUE, TrialScheduler.NOOP):
            if self.done[tid] >= self.table.epochs:
                self.stop(trial)
            else:
                self._queue_epoch(trial, 0.0)
        else:
            raise ValueError(f"invalid decision {decision!r} for {trial}")

    def run(self, max_time: float, stop: Callable[[_Sim], bool] | None) -> None:
        self.fill()
        while self.heap:
            t, _, tid, tok = heapq.heappop(self.heap)
            if tok != self.token[tid] or tid not in self.running:
                continue
            if t > max_time:
                self.now = max_time
                break
            self.now = t
            self.step(t, tid)
            if stop is not None and stop(self):
                break
            self.fill()


def simulate(
    table: LCTable,
    scheduler: TrialScheduler,
    *,
    workers: int,
    seed: int = 0,
    searcher: Searcher | None = None,
    max_trials: int | None = None,
    rows: Sequence[int] | None = None,
    max_time: float = math.inf,
    target: float | None = None,
    min_time: float = 0.0,
    resume_overhead_s: float = 0.0,
    trial_prefix: str = "t",
) -> SimResult:
    """Replay ``table`` with ``workers`` workers under ``scheduler`` and return what happened.

    Configurations come from ``searcher`` (snapped to table rows) or, by default, from the rows in
    a random order drawn from ``seed`` (``rows`` fixes the order instead). ``max_trials`` caps the
    number of configurations; ``target`` ends the run once a fully trained trial reaches it
    (but not before ``min_time``, so that a fixed budget can be evaluated in the same run).
    """
    if workers < 1:
        raise ValueError(f"workers: must be >= 1, got {workers!r}")
    if searcher is not None:
        source: Any = SearcherRows(table, searcher, max_trials)
    else:
        source = RandomRows(table, seed, rows)
        if max_trials is not None:
            source._order = source._order[:max_trials]
    sim = _Sim(table, scheduler, source, workers, resume_overhead_s, trial_prefix)
    stop = None
    if target is not None:
        def stop(s: _Sim) -> bool:
            new = s.completions[s.n_seen:]
            s.n_seen = len(s.completions)
            s.hit = s.hit or any(table.reaches(v, target) for _, _, _, v in new)
            return s.hit and s.now >= min_time
    sim.run(max_time, stop)
    status = {t.trial_id: t.status for t in sim.trials}
    return SimResult(
        rows=dict(sim.row), epochs_done=dict(sim.done), status=status, events=sim.events,
        completions=sim.completions, end_time=sim.now,
        total_epochs=int(sum(sim.done.values())), busy_time=sim.busy,
        stranded=sum(1 for s in status.values() if s in (Trial.PAUSED, Trial.PENDING)),
    )
