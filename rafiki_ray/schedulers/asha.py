"""Asynchronous successive halving (Li et al., "A System for Massively Parallel Hyperparameter
Tuning", MLSys 2020), promotion-based as in the paper's Algorithm 2.

``promotion="pause"`` (default): a trial that reaches a rung (``grace_period * eta**k``, in
``time_attr`` units) records its score there. Whenever a worker frees up, the scheduler looks
for the best not-yet-promoted trial in the top ``floor(n_k / eta)`` of the highest rung that
has one; that trial is promoted (resumed from its checkpoint, or simply continued when it is
the trial that just reported); otherwise the trial pauses and a new configuration starts.
Paused trials need checkpoints (``tune.report(..., checkpoint=...)``).

``promotion="stop"``: the stopping variant of Ray's ``ASHAScheduler`` for trainables without
checkpoints: a trial crossing a rung stops if its score is below the ``1 - 1/eta`` quantile
of the scores recorded there before it; it never pauses.

When nothing runs and nothing is pending (the searcher is exhausted), paused trials are
promoted with ``ceil(n_k / eta)`` instead of ``floor`` so that the best trials finish, and
the remaining paused trials are then stopped: the experiment always ends.
"""

from __future__ import annotations

import bisect
import logging
import math
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from rafiki_ray._args import POSITIVE, check_number, resolve_aliases
from rafiki_ray._errors import invalid
from rafiki_ray.schedulers._rungs import RungScheduler, rung_milestones

if TYPE_CHECKING:
    from rafiki_ray._tune_seam import TuneController

__all__ = ["ASHA"]

logger = logging.getLogger(__name__)

_PROMOTIONS = ("pause", "stop")


class _Rung:
    """Scores recorded at one milestone, sorted for O(log n) rank queries."""

    __slots__ = ("keys", "milestone", "promoted", "scores", "waiting")

    def __init__(self, milestone: float) -> None:
        self.milestone = milestone
        self.scores: dict[str, tuple[float, int]] = {}  # tid -> (score, seq)
        self.keys: list[tuple[float, int]] = []  # sorted (-score, seq): best first
        self.promoted: set[str] = set()
        self.waiting: list[tuple[float, int, str]] = []  # paused, unpromoted: best first

    def record(self, tid: str, score: float, seq: int) -> None:
        self.scores[tid] = (score, seq)
        bisect.insort(self.keys, (-score, seq))

    def key(self, tid: str) -> tuple[float, int]:
        """Sort key of a recorded trial: lower is better."""
        score, seq = self.scores[tid]
        return (-score, seq)

    def rank(self, tid: str) -> int:
        score, seq = self.scores[tid]
        return bisect.bisect_left(self.keys, (-score, seq))

    def top(self, relaxed: bool, eta: float) -> int:
        n = len(self.keys)
        return int(math.ceil(n / eta)) if relaxed else int(n // eta)

    def add_waiting(self, tid: str) -> None:
        score, seq = self.scores[tid]
        bisect.insort(self.waiting, (-score, seq, tid))

    def drop_waiting(self, tid: str) -> None:
        if tid in self.scores:
            score, seq = self.scores[tid]
            i = bisect.bisect_left(self.waiting, (-score, seq, tid))
            if i < len(self.waiting) and self.waiting[i][2] == tid:
                del self.waiting[i]

    def cutoff(self, eta: float) -> float | None:
        """The ``1 - 1/eta`` quantile (linear interpolation) of the recorded scores."""
        n = len(self.keys)
        if n == 0:
            return None
        pos = (n - 1) * (1.0 - 1.0 / eta)
        lo = int(math.floor(pos))
        hi = min(lo + 1, n - 1)
        # the scores ascending are the keys reversed, negated: two look-ups, not a copy
        a, b = -self.keys[n - 1 - lo][0], -self.keys[n - 1 - hi][0]
        if a == b or not (math.isfinite(a) and math.isfinite(b)):
            return a if pos == lo else float(np.interp(pos - lo, [0, 1], [a, b]))
        return a + (b - a) * (pos - lo)


class ASHA(RungScheduler):
    """Promotion-based asynchronous successive halving.

    Args:
        max_t: largest ``time_attr`` a trial reaches; trials stop there (alias
            ``max_resource``).
        grace_period: first rung (alias ``min_resource``).
        reduction_factor: eta > 1 (alias ``eta``).
        brackets: number of brackets ``s = 0 .. brackets-1`` with first rung
            ``grace_period * eta**s``; a new trial joins one at random (weights as Ray's).
        promotion: ``"pause"`` (paper, needs checkpoints) or ``"stop"`` (Ray's behaviour).
        metric, mode, time_attr, seed, persist: see :class:`RafikiScheduler`.
        **aliases: source argument names, see :attr:`ALIASES`.
    """

    #: Source argument names (paper / NNI style) -> our (Ray) name.
    ALIASES: ClassVar[dict[str, str | None]] = {
        "min_resource": "grace_period",
        "max_resource": "max_t",
        "eta": "reduction_factor",
    }

    def __init__(
        self,
        *,
        max_t: float | None = None,
        grace_period: float | None = None,
        reduction_factor: float | None = None,
        brackets: int = 1,
        promotion: str = "pause",
        metric: str | None = None,
        mode: str | None = None,
        time_attr: str = "training_iteration",
        seed: int | None = None,
        persist: bool = True,
        **aliases: Any,
    ) -> None:
        name = type(self).__name__
        values = resolve_aliases(
            type(self), aliases,
            {"max_t": max_t, "grace_period": grace_period, "reduction_factor": reduction_factor},
            defaults={"max_t": 100, "grace_period": 1, "reduction_factor": 4},
        )
        big_r, r, eta = values["max_t"], values["grace_period"], values["reduction_factor"]
        big_r = check_number(f"{name}.max_t", big_r, **POSITIVE)
        r = check_number(f"{name}.grace_period", r, **POSITIVE)
        eta = check_number(f"{name}.reduction_factor", eta, low=1, low_open=True)
        if r > big_r:
            raise invalid(f"{name}.grace_period", f"must be <= max_t ({big_r})", r)
        brackets = check_number(f"{name}.brackets", brackets, integer=True, low=1)
        if promotion not in _PROMOTIONS:
            raise invalid(f"{name}.promotion", "must be 'pause' or 'stop'", promotion)
        super().__init__(metric=metric, mode=mode, time_attr=time_attr, seed=seed,
                         persist=persist)
        self._max_t, self._grace, self._eta = big_r, r, eta
        self._promotion = promotion
        self.pauses = promotion == "pause"
        self._supports_buffered_results = promotion != "pause"
        self._milestones = [
            rung_milestones(min(r * eta**s, big_r), big_r, eta) for s in range(brackets)
        ]
        sizes = np.array([len(m) for m in self._milestones], dtype=float)
        probs = np.exp(sizes - sizes.max())
        self._bracket_probs = probs / probs.sum()
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._rungs = [[_Rung(m) for m in ms] for ms in self._milestones]
        self._bracket_of: dict[str, int] = {}
        self._level: dict[str, int] = {}  # index of the milestone a trial works towards
        self._paused: dict[str, None] = {}
        self._chosen: set[str] = set()
        self._done: set[str] = set()
        self._seq = 0
        self._trials: dict[str, Trial] = {}

    # ------------------------------------------------------------ state
    def _get_state(self) -> dict[str, Any]:
        return {
            "promotion": self._promotion,
            "milestones": self._milestones,
            "rungs": [
                [{"milestone": g.milestone,
                  "scores": [[tid, s, q] for tid, (s, q) in g.scores.items()],
                  "promoted": sorted(g.promoted)} for g in rungs]
                for rungs in self._rungs
            ],
            "bracket_of": dict(self._bracket_of),
            "level": dict(self._level),
            "paused": list(self._paused),
            "chosen": sorted(self._chosen),
            "done": sorted(self._done),
            "seq": self._seq,
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        trials = self._trials
        self._promotion = state["promotion"]
        self.pauses = self._promotion == "pause"
        self._milestones = [list(m) for m in state["milestones"]]
        self._init_runtime()
        self._trials = trials
        for b, rungs in enumerate(state["rungs"]):
            for k, g in enumerate(rungs):
                rung = self._rungs[b][k]
                for tid, s, q in g["scores"]:
                    rung.record(tid, float(s), int(q))
                rung.promoted = set(g["promoted"])
        self._bracket_of = dict(state["bracket_of"])
        self._level = {k: int(v) for k, v in state["level"].items()}
        self._paused = dict.fromkeys(state["paused"])
        self._chosen = set(state["chosen"])
        self._done = set(state["done"])
        self._seq = int(state["seq"])
        for tid in self._paused:
            b, k = self._bracket_of[tid], self._level[tid]
            if tid in self._rungs[b][k].scores and tid not in self._rungs[b][k].promoted:
                self._rungs[b][k].add_waiting(tid)

    def _trial_row(self, tid: str) -> Any:
        """bracket, level, ``[rung, score, seq]`` recorded, rungs promoted from, flags
        (paused, chosen, done) and the global record counter."""
        b = self._bracket_of.get(tid)
        if b is None:
            return None
        rungs = self._rungs[b]
        return [b, self._level[tid],
                [[k, *g.scores[tid]] for k, g in enumerate(rungs) if tid in g.scores],
                [k for k, g in enumerate(rungs) if tid in g.promoted],
                [int(tid in self._paused), int(tid in self._chosen), int(tid in self._done)],
                self._seq]

    def _set_trial_row(self, tid: str, row: Any) -> None:
        if row is None:
            return
        b, level, scores, promoted, (paused, chosen, done), seq = row
        old_b = self._bracket_of.get(tid)
        if old_b is not None and old_b != b:  # a trial never changes bracket
            raise ValueError(f"state.trials[{tid!r}].bracket: a trial keeps its bracket, "
                             f"got {b!r} after {old_b!r} (the state file is inconsistent)")
        if old_b is not None:  # its place among the waiting trials is rebuilt below
            self._rungs[old_b][self._level[tid]].drop_waiting(tid)
        rungs = self._rungs[b]
        self._bracket_of[tid], self._level[tid] = b, int(level)
        for k, score, q in scores:
            g = rungs[k]
            if g.scores.get(tid) != (float(score), int(q)):
                if tid in g.scores:
                    g.keys.remove(g.key(tid))
                g.record(tid, float(score), int(q))
        up = set(promoted)
        for k, g in enumerate(rungs):
            if k in up:
                g.promoted.add(tid)
            else:
                g.promoted.discard(tid)
        if paused:
            self._paused.setdefault(tid, None)
            g = rungs[self._level[tid]]
            if tid in g.scores and tid not in g.promoted:
                g.add_waiting(tid)
        else:
            self._paused.pop(tid, None)
        for flag, ids in ((chosen, self._chosen), (done, self._done)):
            if flag:
                ids.add(tid)
            else:
                ids.discard(tid)
        self._seq = max(self._seq, int(seq))

    def rungs(self) -> list[dict[str, Any]]:
        """One row per (bracket, rung): milestone, recorded, promoted, waiting, best score."""
        rows = []
        for b, rungs in enumerate(self._rungs):
            for k, g in enumerate(rungs):
                best = -g.keys[0][0] if g.keys else None
                if best is not None and self._mode == "min":
                    best = -best
                rows.append({"bracket": b, "rung": k, "milestone": g.milestone,
                             "recorded": len(g.scores), "promoted": len(g.promoted),
                             "waiting": len(g.waiting), "best": best})
        return rows

    # ------------------------------------------------------------ Tune hooks
    def _was_stopped(self, tid: str) -> bool:
        return tid in self._done

    def _was_waiting(self, tid: str) -> bool:
        return tid in self._paused

    def _place(self, trial: Trial) -> None:
        tid = trial.trial_id
        b = 0
        if len(self._milestones) > 1:
            b = int(self._rng.choice(len(self._milestones), p=self._bracket_probs))
        self._bracket_of[tid] = b
        self._level[tid] = 0
        self._persist_trial(tid, rng=len(self._milestones) > 1)

    def _decide(self, tune_controller: Any, trial: Trial, result: dict[str, Any]) -> str:
        tid = trial.trial_id
        if tid not in self._bracket_of or tid in self._done:
            return TrialScheduler.CONTINUE if tid not in self._done else TrialScheduler.STOP
        b = self._bracket_of[tid]
        rungs = self._rungs[b]
        resumed = tid in self._paused
        if resumed:
            level = self._level[tid]
            if tid not in self._chosen:  # restarted by Tune after a restore, not promoted
                decision = self._pause_decision(tune_controller, trial, result)
                self._persist_trial(tid)
                return decision
            self._unwait(tid)
            self._promote(tid, level)
        t = self._time(result)
        level = self._level[tid]
        if t is None or (t < self._max_t and t < rungs[level].milestone):
            if resumed:
                self._persist_trial(tid)
            return TrialScheduler.CONTINUE
        if t >= self._max_t:
            self._record_passed(tid, t, result)
            self._done.add(tid)
            decision = TrialScheduler.STOP
        elif self._promotion == "stop":
            decision = self._stop_decision(tid, t, result)
        else:
            self._record_passed(tid, t, result)
            if self._best_candidate(b, extra=tid) == tid:
                self._promote(tid, self._level[tid])
                decision = TrialScheduler.CONTINUE
            else:
                decision = self._pause_decision(tune_controller, trial, result)
        self._persist_trial(tid)  # one journal line, not a full write (see _persistence)
        return decision

    # ------------------------------------------------------------ internals
    def _score_of(self, result: dict[str, Any]) -> float:
        s = self._score(result)
        return -math.inf if s is None else s

    def _record_passed(self, tid: str, t: float, result: dict[str, Any]) -> None:
        """Record the score at every milestone <= t the trial had not recorded yet."""
        rungs = self._rungs[self._bracket_of[tid]]
        score = self._score_of(result)
        level = self._level[tid]
        while True:
            rung = rungs[level]
            if t < rung.milestone:
                break
            if tid not in rung.scores:
                self._seq += 1
                rung.record(tid, score, self._seq)
            if level == len(rungs) - 1 or t < rungs[level + 1].milestone:
                break
            rung.promoted.add(tid)
            level += 1
        self._level[tid] = level

    def _promote(self, tid: str, level: int) -> None:
        rungs = self._rungs[self._bracket_of[tid]]
        rungs[level].promoted.add(tid)
        self._level[tid] = min(level + 1, len(rungs) - 1)
        self._chosen.discard(tid)

    def _unwait(self, tid: str) -> None:
        if tid in self._paused:
            del self._paused[tid]
            b, k = self._bracket_of[tid], self._level[tid]
            self._rungs[b][k].drop_waiting(tid)

    def _pause_decision(self, controller: Any, trial: Trial, result: dict[str, Any]) -> str:
        self._check_checkpoint(trial, result)
        tid = trial.trial_id
        if tid not in self._paused:
            self._paused[tid] = None
            b, k = self._bracket_of[tid], self._level[tid]
            if tid in self._rungs[b][k].scores:
                self._rungs[b][k].add_waiting(tid)
        self._release_slot(controller, trial)
        return TrialScheduler.PAUSE

    def _best_candidate(self, b: int, extra: str | None = None, relaxed: bool = False
                        ) -> str | None:
        """Algorithm 2's get_job: the best promotable trial of the highest rung that has one.

        Candidates are paused, unpromoted trials in the top ``floor(n_k / eta)`` of their rung
        (``ceil`` when ``relaxed``), plus ``extra``, the trial that has just reported.
        """
        rungs = self._rungs[b]
        extra_level = self._level.get(extra) if extra is not None else None
        for k in range(len(rungs) - 2, -1, -1):
            rung = rungs[k]
            top = rung.top(relaxed, self._eta)
            if top <= 0:
                continue
            best: str | None = None
            for _, _, tid in rung.waiting:  # best first
                trial = self._trials.get(tid)
                if tid not in rung.promoted and trial is not None and trial.status == Trial.PAUSED:
                    best = tid
                    break
            if (extra is not None and extra_level == k and extra not in rung.promoted
                    and (best is None or rung.key(extra) < rung.key(best))):
                best = extra
            if best is not None and rung.rank(best) < top:
                return best
        return None

    def _stop_decision(self, tid: str, t: float, result: dict[str, Any]) -> str:
        """Ray's ASHAScheduler rule: compare with the rung's cutoff before recording."""
        rungs = self._rungs[self._bracket_of[tid]]
        score = self._score_of(result)
        decision = TrialScheduler.CONTINUE
        for k in range(len(rungs) - 1, -1, -1):
            rung = rungs[k]
            if t < rung.milestone or tid in rung.scores:
                continue
            cutoff = rung.cutoff(self._eta)
            if cutoff is not None and score < cutoff:
                decision = TrialScheduler.STOP
            self._seq += 1
            rung.record(tid, score, self._seq)
            break
        while self._level[tid] < len(rungs) - 1 and t >= rungs[self._level[tid]].milestone:
            self._level[tid] += 1
        if decision == TrialScheduler.STOP:
            self._done.add(tid)
        return decision

    def _forget(self, controller: Any, trial: Trial) -> None:
        tid = trial.trial_id
        if tid in self._bracket_of:
            self._unwait(tid)
            self._chosen.discard(tid)
            self._done.add(tid)
            self._persist_trial(tid)
        self._untrack(trial)

    def _candidate_any(self, controller: Any, relaxed: bool) -> Trial | None:
        best: tuple[int, str] | None = None
        for b in range(len(self._rungs)):
            tid = self._best_candidate(b, relaxed=relaxed)
            if tid is not None:
                level = self._level[tid]
                if best is None or level > best[0]:
                    best = (level, tid)
        return None if best is None else self._trials[best[1]]

    def resumable_trials(self) -> list[Trial]:
        """The paused trial this scheduler would promote now, if any (public for wrappers
        such as :class:`rafiki_ray.schedulers.RoundRobin`)."""
        if self._promotion != "pause" or not self._paused:
            return []
        trial = self._candidate_any(None, relaxed=False)
        return [] if trial is None else [trial]

    def choose_trial_to_run(self, tune_controller: TuneController) -> Trial | None:
        self._apply_repause(tune_controller)
        if self._promotion == "pause" and self._paused:
            trial = self._candidate_any(tune_controller, relaxed=False)
            if trial is not None:
                if not self._claim_slot(tune_controller, trial):
                    return None
                self._chosen.add(trial.trial_id)
                self._persist_trial(trial.trial_id)
                self._track(trial)
                return self._hand_over(tune_controller, trial)
        pending = self._first_pending()
        if pending is not None:
            return pending
        if not self._paused or self._anything_running():
            return None
        # Nothing runs, nothing is pending: finish the best, then stop the rest.
        trial = self._candidate_any(tune_controller, relaxed=True)
        if trial is not None:
            self._claim_slot(tune_controller, trial, force=True)
            self._chosen.add(trial.trial_id)
            self._persist_trial(trial.trial_id)
            self._track(trial)
            return self._hand_over(tune_controller, trial)
        for trial in list(tune_controller.get_trials()):
            if trial.status == Trial.PAUSED and trial.trial_id in self._paused:
                self._stop_paused(tune_controller, trial)
        return None

    def debug_string(self) -> str:
        rows = self.rungs()
        text = ", ".join(f"b{r['bracket']}r{r['rung']}@{r['milestone']}:{r['recorded']}"
                         for r in rows)
        return f"ASHA(promotion={self._promotion}): {text}"
