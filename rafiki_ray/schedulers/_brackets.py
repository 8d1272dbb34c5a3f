"""Synchronous successive-halving brackets shared by ``SuccessiveHalving`` and ``Hyperband``.

A bracket holds ``capacity`` trials and a list of rung milestones (values of ``time_attr``);
every trial of the bracket trains to the current milestone and PAUSES there; once every live
trial of the rung has reported, the best ``floor(entered / eta)`` go on (resumed from their
checkpoints) and the others are stopped (Jamieson & Talwalkar 2016). A trial reaching the
last milestone is stopped as finished. Brackets progress independently (asynchronously).

State is plain data keyed by ``trial_id``. If the experiment runs dry before a bracket is
full (no trial running or pending), the bracket is closed with the trials it has.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from rafiki_ray.schedulers._rungs import RungScheduler

if TYPE_CHECKING:
    from rafiki_ray._tune_seam import TuneController

logger = logging.getLogger(__name__)

_NEG = float("-inf")


def _new_bracket(
    bid: int, milestones: list[float], capacity: int, tag: Any = None,
    sizes: list[int] | None = None,
) -> dict:
    return {
        "sizes": list(sizes) if sizes else None,  # planned rung sizes of a full bracket
        "id": bid,
        "tag": tag,  # e.g. Hyperband's s
        "milestones": list(milestones),
        "capacity": int(capacity),
        "members": [],
        "closed": False,
        "cur": 0,
        "active": [],  # trial ids working towards milestone[cur]
        "entered": [],  # number of trials that entered each rung
        "records": [[] for _ in milestones],  # per rung: [trial_id, score] in arrival order
        "done": False,
    }


class SyncBracketScheduler(RungScheduler):
    """Base of the synchronous schedulers; subclasses define :meth:`_next_bracket_spec`."""

    pauses = True
    _supports_buffered_results = False

    def __init__(self, *, reduction_factor: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._eta = reduction_factor
        self._brackets: list[dict] = []
        self._bracket_of: dict[str, int] = {}
        self._paused: dict[str, None] = {}  # waiting at a rung (ordered set)
        self._to_resume: dict[str, None] = {}  # promoted, waiting for a worker
        self._dead: set[str] = set()
        self._trials: dict[str, Trial] = {}  # runtime only
        self._processing = False

    # ------------------------------------------------------------ to override
    def _next_bracket_spec(self) -> tuple[list[float], int, Any]:
        """(milestones, capacity, tag) of the next bracket to open."""
        raise NotImplementedError

    def _on_assign(self, trial: Trial, bracket: dict) -> None:
        """A new trial joined ``bracket`` (Hyperband writes its budget into the config)."""

    def _on_promote(self, trial: Trial, bracket: dict) -> None:
        """``trial`` was kept and will work towards ``bracket['milestones'][cur]``."""

    def _before_resume(self, trial: Trial) -> None:
        """Called when a promoted trial is handed to Tune to resume."""

    #: a winner that completes its rung may continue without a pause/resume cycle
    _in_place_ok: bool = True
    #: pausing requires a checkpoint to resume from
    _needs_checkpoint: bool = True

    def _keep(self, b: dict) -> int:
        """How many trials of the current rung go on."""
        cur = b["cur"]
        sizes = b.get("sizes")
        if sizes and cur + 1 < len(sizes) and b["entered"][cur] == sizes[cur]:
            return max(1, int(sizes[cur + 1]))
        return max(1, int(b["entered"][cur] // self._eta))

    # ------------------------------------------------------------ state
    def _get_state(self) -> dict[str, Any]:
        return {
            "brackets": self._brackets,
            "bracket_of": dict(self._bracket_of),
            "paused": list(self._paused),
            "to_resume": list(self._to_resume),
            "dead": sorted(self._dead),
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        import copy

        self._brackets = copy.deepcopy(state["brackets"])
        self._bracket_of = dict(state["bracket_of"])
        self._paused = dict.fromkeys(state["paused"])
        self._to_resume = dict.fromkeys(state["to_resume"])
        self._dead = set(state["dead"])

    # ------------------------------------------------------------ views
    def rungs(self) -> list[dict[str, Any]]:
        """One row per (bracket, rung): milestone, entered, recorded, kept (for reports)."""
        rows = []
        for b in self._brackets:
            for k, m in enumerate(b["milestones"]):
                rows.append({
                    "bracket": b["id"], "tag": b["tag"], "rung": k, "milestone": m,
                    "entered": b["entered"][k] if k < len(b["entered"]) else 0,
                    "recorded": len(b["records"][k]),
                })
        return rows

    # ------------------------------------------------------------ Tune hooks
    def _was_stopped(self, tid: str) -> bool:
        return tid in self._dead

    def _was_waiting(self, tid: str) -> bool:
        return tid in self._paused or tid in self._to_resume

    def _place(self, trial: Trial) -> None:
        tid = trial.trial_id
        b = self._brackets[-1] if self._brackets else None
        if b is None or b["closed"] or len(b["members"]) >= b["capacity"] or b["cur"] > 0:
            milestones, capacity, tag, *rest = self._next_bracket_spec()
            b = _new_bracket(len(self._brackets), milestones, capacity, tag,
                             rest[0] if rest else None)
            self._brackets.append(b)
        b["members"].append(tid)
        b["active"].append(tid)
        if len(b["members"]) >= b["capacity"]:
            b["closed"] = True
        self._bracket_of[tid] = b["id"]
        self._on_assign(trial, b)
        self._persist()

    def _decide(self, tune_controller: Any, trial: Trial, result: dict[str, Any]) -> str:
        tid = trial.trial_id
        if tid not in self._bracket_of:
            return TrialScheduler.CONTINUE
        if tid in self._dead:
            return TrialScheduler.STOP
        self._to_resume.pop(tid, None)
        b = self._brackets[self._bracket_of[tid]]
        if tid not in b["active"]:
            if b["done"]:
                return TrialScheduler.STOP
            if tid in self._paused:  # restarted by Tune after a restore: wait again
                return self._pause(tune_controller, trial, result)
            return TrialScheduler.STOP  # a loser whose stop did not reach Tune
        t = self._time(result)
        milestone = b["milestones"][b["cur"]]
        if t is None or t < milestone:
            return TrialScheduler.CONTINUE
        score = self._score(result)
        rec = b["records"][b["cur"]]
        if not any(r[0] == tid for r in rec):
            rec.append([tid, _NEG if score is None else score])
        if b["cur"] == len(b["milestones"]) - 1:
            b["active"].remove(tid)
            if not b["active"] and b["closed"]:
                b["done"] = True
            self._persist(force=True)
            return TrialScheduler.STOP
        decision = self._maybe_process(tune_controller, b, current=tid)
        if decision is None:
            decision = self._pause(tune_controller, trial, result)
            if tid in self._to_resume:  # a winner that must restart: not "waiting"
                self._paused.pop(tid, None)
        self._persist(force=True)
        return decision

    def _pause(self, controller: Any, trial: Trial, result: dict[str, Any]) -> str:
        if self._needs_checkpoint:
            self._check_checkpoint(trial, result)
        self._paused[trial.trial_id] = None
        self._release_slot(controller, trial)
        return TrialScheduler.PAUSE

    def _rung_complete(self, b: dict) -> bool:
        if not b["closed"] or b["done"]:
            return False
        recorded = {r[0] for r in b["records"][b["cur"]]}
        return all(t in recorded for t in b["active"])

    def _maybe_process(self, controller: Any, b: dict, current: str | None = None) -> str | None:
        """Halve the bracket if its rung is complete; return the current trial's decision."""
        if self._processing or not self._rung_complete(b):
            return None
        if b["cur"] >= len(b["milestones"]) - 1:
            b["done"] = not b["active"]
            return None
        self._processing = True
        try:
            cur = b["cur"]
            while len(b["entered"]) <= cur:
                b["entered"].append(0)
            if b["entered"][cur] == 0:
                b["entered"][cur] = len(b["active"]) if cur else len(b["members"])
            ranked = sorted(
                (r for r in b["records"][cur] if r[0] in b["active"]),
                key=lambda r: -r[1],
            )  # stable: ties keep arrival order
            keep = self._keep(b)
            winners = [r[0] for r in ranked[:keep]]
            losers = [r[0] for r in ranked[keep:]]
            b["cur"] = cur + 1
            b["active"] = list(winners)
            b["entered"].append(len(winners))
            decision = None
            for tid in losers:
                self._paused.pop(tid, None)
                self._dead.add(tid)
                if tid == current:
                    decision = TrialScheduler.STOP
            for tid in winners:
                trial = self._trials.get(tid)
                if trial is not None:
                    self._on_promote(trial, b)
                if tid == current and self._in_place_ok:
                    decision = TrialScheduler.CONTINUE
                else:
                    self._paused.pop(tid, None)
                    self._to_resume[tid] = None
            if not winners:
                b["done"] = True
            logger.debug("bracket %s rung %s: kept %s, stopped %s", b["id"], cur, winners, losers)
            # The whole halving is written before Tune hears of a stop: every stop below
            # persists the state (``_forget``), and Tune may upload any of those writes as
            # the one a driver crash leaves. Written halfway (winners still waiting at the
            # old rung), a restore stopped the winners as the run went dry (CI, 2026-12-07).
            self._persist(force=True)
            for tid in losers:
                trial = self._trials.get(tid)
                if tid != current and trial is not None and \
                        trial.status in (Trial.PAUSED, Trial.PENDING, Trial.RUNNING):
                    # RUNNING: its pause is still being saved (Ray's HyperBand: is_saving)
                    self._stop_paused(controller, trial)
            return decision  # each stop above persisted the state once more (``_forget``)
        finally:
            self._processing = False

    def _forget(self, controller: Any, trial: Trial) -> None:
        tid = trial.trial_id
        self._untrack(trial)
        logger.debug("trial %s ended (status %s)", tid, trial.status)
        if tid not in self._bracket_of:
            return
        self._paused.pop(tid, None)
        self._to_resume.pop(tid, None)
        self._dead.add(tid)
        b = self._brackets[self._bracket_of[tid]]
        if tid in b["active"]:
            b["active"].remove(tid)
            self._maybe_process(controller, b)
        self._persist(force=True)

    def choose_trial_to_run(self, tune_controller: TuneController) -> Trial | None:
        self._apply_repause(tune_controller)
        chosen = self._first_resumable(tune_controller)
        if chosen is not None:
            return chosen
        pending = self._first_pending()
        if pending is not None:
            return pending
        if self._anything_running():
            return None
        trials = tune_controller.get_trials()
        # Nothing runs and nothing is pending: close unfilled brackets, halve what is ready.
        for b in self._brackets:
            if not b["done"] and not b["closed"]:
                b["closed"] = True
                self._maybe_process(tune_controller, b)
        chosen = self._first_resumable(tune_controller)
        if chosen is None:  # never leave a trial PAUSED with nothing to run it
            for trial in trials:
                if trial.status == Trial.PAUSED:
                    b = self._brackets[self._bracket_of[trial.trial_id]]
                    if self._maybe_process(tune_controller, b) is None and \
                            trial.trial_id not in self._to_resume:
                        self._stop_paused(tune_controller, trial)
            chosen = self._first_resumable(tune_controller)
        self._persist()
        return chosen

    def resumable_trials(self) -> list[Trial]:
        """The PAUSED trials this scheduler has promoted and will resume next (public for
        wrappers such as :class:`rafiki_ray.schedulers.RoundRobin`)."""
        return [t for t in (self._trials.get(tid) for tid in self._to_resume)
                if t is not None and t.status == Trial.PAUSED]

    def _first_resumable(self, controller: Any) -> Trial | None:
        for tid in self._to_resume:
            trial = self._trials.get(tid)
            if trial is not None and trial.status == Trial.PAUSED:
                if self._claim_slot(controller, trial):
                    self._before_resume(trial)
                    self._track(trial)
                    logger.debug("resuming %s", tid)
                    return self._hand_over(controller, trial)
                logger.debug("no free slot to resume %s", tid)
                return None
        return None

    def debug_string(self) -> str:
        parts = [f"{type(self).__name__}: {len(self._brackets)} brackets"]
        for b in self._brackets[-3:]:
            parts.append(f"bracket {b['id']} rung {b['cur']}/{len(b['milestones'])} "
                         f"active={len(b['active'])} members={len(b['members'])}")
        return "; ".join(parts)
