"""Population Based Training whose exploit moves weights through Ray's object store.

Jaderberg et al. 2017, "Population Based Training of Neural Networks" (arXiv:1711.09846).
Every ``perturbation_interval`` (in ``time_attr`` units) a member in the bottom ``fraction``
of the population copies a member of the top ``fraction`` (*exploit*) and perturbs the copied
hyperparameters (*explore*): NNI's per-type rules (:func:`rafiki_ray.spaces.perturb`) on a
rafiki_ray / NNI / Tune search space, or Ray's rules on ``hyperparam_mutations``.

How exploit works
-----------------
**Ray's style (checkpoints).** A trainable written for Ray's ``PopulationBasedTraining``
reports its state with ``tune.report(metrics, checkpoint=...)`` and restores it from
``tune.get_checkpoint()``. When such a member is in the bottom group at a decision, it is
paused without saving and restarts from the copied member's checkpoint with the explored
config (as Ray does; :func:`rafiki_ray._tune_seam.restart_from_checkpoint`); its
``time_attr`` continues from the checkpoint's. Report a checkpoint at least every
``perturbation_interval``; with ``CheckpointConfig(num_to_keep=k)`` keep at least the reports
of one interval plus one (Tune's default keeps all), as for Ray's PBT.

**Which member is copied** is Ray's rule: only a top member that was in the top quantile at
its own last decision, with the checkpoint (or published weights) it had then; see
:mod:`rafiki_ray.schedulers._pbt_exploit`.

**In-memory (PBTSession), no write to storage, no pause.**
Trials report through :class:`PBTSession` (``rafiki_ray.schedulers.pbt.PBTSession``), which
publishes the model's parameters to a :class:`~rafiki_ray.sharing.ParamStore` (object refs in
a named actor, arrays in the object store) and then calls ``tune.report``. A Tune function
trainable is blocked inside ``tune.report`` until the scheduler has decided on that result, so
when ``on_trial_result`` picks an exploit it posts an instruction (source member, new config,
weight-noise seed) into the store's message slot for that trial, and the trial reads it as
``tune.report`` returns, with the source's latest complete set in the same actor round trip:
it ``ray.get``s the weights (zero-copy on the same node) and :meth:`Exploit.load_into` copies
them once into the model's own tensors, adding ``weight_noise`` (Gaussian,
``weight_noise * std`` of each tensor) in the same pass; it continues with the new
hyperparameters. On the driver the scheduler calls ``trial.set_config(new)`` so
Tune's bookkeeping (and a later restart from the trial's own checkpoint) sees the new config.
A member that reports through ``PBTSession`` copies published weights when a top member has
any, else a top member's checkpoint.

A member that neither publishes nor checkpoints raises :class:`CheckpointRequiredError` at
its first exploit decision (there is nothing to copy).

PAUSE is used only to time-share when there are more members than slots (as Ray's PBT; only
members that report checkpoints are paused, the others keep running) and in ``synch`` mode
(NNI's synchronous generations, where a missing checkpoint is an error, see the base class).
An instruction posted for a paused trial is applied by :meth:`PBTSession.start`.

Unlike Ray's ``PopulationBasedTraining``, a Searcher may generate the initial population.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from rafiki_ray._args import POSITIVE, check_number, resolve_aliases
from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray.schedulers._base import RafikiScheduler
from rafiki_ray.schedulers._pbt_exploit import ExploitMixin
from rafiki_ray.schedulers._pbt_explore import (
    call_explore_fn,
    check_mutations,
    instruction_key,
    mutate,
)
from rafiki_ray.schedulers._pbt_journal import JournalMixin
from rafiki_ray.schedulers._pbt_replay import PBTReplay, config_at, lineage_frame, lineage_schedule
from rafiki_ray.schedulers._pbt_session import (
    APPLIED_KEY,
    DEFAULT_STORE,
    PUBLISHED_KEY,
    Exploit,
    PBTSession,
)
from rafiki_ray.spaces._space import SearchSpace, as_space

if TYPE_CHECKING:
    import pandas as pd

    from rafiki_ray._tune_seam import TuneController

logger = logging.getLogger(__name__)

__all__ = ["ALIASES", "PBT", "Exploit", "PBTReplay", "PBTSession", "config_at"]

#: The one alias table: source argument names (NNI ``PBTTuner`` classArgs, Ray
#: ``PopulationBasedTraining``) -> this class's argument. ``None``: accepted and unused.
ALIASES: dict[str, str | None] = {
    "optimize_mode": "mode",  # NNI: "maximize" / "minimize"
    "quantile_fraction": "fraction",  # Ray
    "all_checkpoint_dir": None,  # NNI: weights move through the ParamStore instead
    "log_config": None,  # Ray: the lineage() DataFrame replaces the per-trial policy files
}


def _ray_up() -> bool:
    import ray

    return ray.is_initialized()


class PBT(ExploitMixin, JournalMixin, RafikiScheduler):
    """Population Based Training (Jaderberg et al. 2017) with in-memory exploit.

    Args:
        space: the hyperparameter space explored with NNI's rules (a ``SearchSpace`` or a
            Tune ``param_space``); defaults to the searcher's space when it has one.
        metric, mode, time_attr, seed, persist: as in :class:`RafikiScheduler`.
        population_size: expected population (NNI); defaults to Tune's ``num_samples``;
            only checked (a warning when more trials arrive).
        perturbation_interval: ``time_attr`` units between two exploit/explore decisions of
            a member (Ray; NNI's generation length).
        burn_in_period: no decision before this ``time_attr`` value (Ray).
        fraction: share of the population in the bottom (copying) and top (copied) groups:
            ``ceil(fraction * n)``, at most ``n // 2`` (NNI ``fraction``, Ray
            ``quantile_fraction``).
        factor: NNI's perturbation size (share of a parameter's range).
        resample_probability: probability to resample a hyperparameter from its prior.
        hyperparam_mutations: Ray-style mutations (lists, Tune domains, callables, nested
            dicts); when given, they are explored with Ray's rules instead of the space.
        perturbation_factors: Ray's multiplicative factors for mutated numbers.
        custom_explore_fn: ``f(config) -> config`` applied after the built-in explore.
        synch: synchronous generations (NNI, Ray ``synch=True``): members wait (PAUSE, needs
            checkpoints) until all reached the boundary, then the bottom copies the top.
        weight_noise: Gaussian noise added to copied weights, ``weight_noise * std(tensor)``;
            0 is classic PBT.
        store: the ParamStore (or its name) trials publish to; :class:`PBTSession` must use
            the same one.
        require_attrs: raise when a result lacks ``time_attr`` (Ray's default); otherwise the
            result is ignored.
        **aliases: source argument names, see :data:`ALIASES`.
    """

    pauses = True
    _supports_buffered_results = False
    #: Source argument names -> keyword (the module's :data:`ALIASES`).
    ALIASES: ClassVar[dict[str, str | None]] = ALIASES

    def __init__(
        self,
        space: Any = None,
        *,
        metric: str | None = None,
        mode: str | None = None,
        time_attr: str = "training_iteration",
        seed: int | None = None,
        persist: bool = True,
        population_size: int | None = None,
        perturbation_interval: float = 1,
        burn_in_period: float = 0,
        fraction: float = 0.2,
        factor: float = 0.2,
        resample_probability: float = 0.25,
        hyperparam_mutations: Mapping[str, Any] | None = None,
        perturbation_factors: tuple[float, ...] = (1.2, 0.8),
        custom_explore_fn: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        synch: bool = False,
        weight_noise: float = 0.0,
        store: Any = DEFAULT_STORE,
        namespace: str | None = None,
        require_attrs: bool = False,
        **aliases: Any,
    ) -> None:
        given = resolve_aliases(type(self), aliases, {"mode": mode, "fraction": fraction})
        super().__init__(metric=metric, mode=given["mode"], time_attr=time_attr, seed=seed,
                         persist=persist)
        self._space: SearchSpace | None = None if space is None else as_space(space, "PBT.space")
        self._population_size = check_number("PBT.population_size", population_size,
                                             integer=True, low=2, none_ok=True)
        self._interval = float(check_number("PBT.perturbation_interval", perturbation_interval, **POSITIVE))
        self._burn_in = float(check_number("PBT.burn_in_period", burn_in_period, low=0))
        self._fraction = float(check_number("PBT.fraction", given["fraction"], low=0, high=0.5, low_open=True))
        self._factor = float(check_number("PBT.factor", factor, low=0))
        self._resample_p = float(check_number("PBT.resample_probability", resample_probability, low=0, high=1))
        self._mutations = None if hyperparam_mutations is None else check_mutations(hyperparam_mutations)
        if not isinstance(perturbation_factors, (list, tuple)) or not perturbation_factors:
            raise invalid_type("PBT.perturbation_factors", "must be a non-empty tuple of numbers",
                               perturbation_factors)
        self._factors = tuple(float(check_number("PBT.perturbation_factors", f, low=0)) for f in perturbation_factors)
        if custom_explore_fn is not None and not callable(custom_explore_fn):
            raise invalid_type("PBT.custom_explore_fn", "must be callable", custom_explore_fn)
        self._explore_fn = custom_explore_fn
        if not isinstance(synch, bool):
            raise invalid_type("PBT.synch", "must be a bool", synch)
        self._synch = synch
        self._weight_noise = float(check_number("PBT.weight_noise", weight_noise, low=0))
        from rafiki_ray.sharing.param_store import ParamStore

        if isinstance(store, ParamStore):
            self._store_name, namespace = store.name, store.namespace
        elif isinstance(store, str) and store:
            self._store_name = store
        else:
            raise invalid_type("PBT.store", "must be a ParamStore or its name", store)
        self._namespace = namespace
        self._store: Any = None
        self._require_attrs = bool(require_attrs)
        self._warned_no_checkpoint = False
        self._trials: dict[str, Trial] = {}  # runtime only: the Trial objects by id
        self._pinned: dict[str, Any] = {}  # runtime only: checkpoints of top decisions
        # State (plain data, see _get_state)
        self._members: dict[str, dict[str, Any]] = {}
        self._lineage: list[dict[str, Any]] = []
        self._next_id = 0
        self._next_sync = max(self._burn_in, self._interval)
        self._num_exploits = 0
        # Runtime only: what changed since the last state write (journaled at a decision)
        self._dirty: set[str] = set()  # member ids
        self._dirty_rows: set[int] = set()  # lineage rows (seq)

    # ------------------------------------------------------------------ properties
    @property
    def space(self) -> SearchSpace | None:
        return self._space

    @property
    def store(self) -> Any:
        """The :class:`~rafiki_ray.sharing.ParamStore` (created on first use)."""
        if self._store is None:
            from rafiki_ray.sharing.param_store import ParamStore

            # PBT copies only each member's latest weights: a store it creates keeps the most
            # recent set per trial and releases every older one (max_bytes=1 evicts all that
            # is not protected). Pass a ParamStore of your own to keep more.
            self._store = ParamStore.get_or_create(
                self._store_name, namespace=self._namespace, mode=self._mode or "max",
                max_bytes=1, keep_top_k=1,
            )
        return self._store

    @property
    def num_exploits(self) -> int:
        return self._num_exploits

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_store"] = None  # the handle is found again by name
        state["_trials"], state["_pinned"] = {}, {}  # runtime only; two dicts, not one shared
        return state

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        ok = super().set_search_properties(metric, mode, **spec)
        n = spec.get("num_samples")
        if ok and self._population_size is None and isinstance(n, int) and n >= 2:
            self._population_size = n
        return ok

    # ------------------------------------------------------------------ explore
    def _find_space(self, controller: Any) -> None:
        if self._space is not None or self._mutations is not None or controller is None:
            return
        try:
            inner = controller.search_alg
        except Exception:  # noqa: BLE001 - the controller may refuse the attribute; no space then
            return
        while inner is not None:
            space = getattr(inner, "space", None)
            if isinstance(space, SearchSpace):
                self._space = space
                return
            inner = getattr(inner, "searcher", None)

    def explore(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """A perturbed copy of ``config`` (Ray's rules for mutations, else NNI's on the space)."""
        if self._mutations is not None:
            new = mutate(config, self._mutations, self._rng, resample_probability=self._resample_p,
                         perturbation_factors=self._factors)
        elif self._space is not None:
            from rafiki_ray.spaces._perturb import perturb

            new = perturb(self._space, config, self._rng, factor=self._factor,
                          resample_probability=self._resample_p)
        else:
            raise invalid(
                "PBT", "has nothing to explore: pass space= (a SearchSpace or the Tuner's "
                "param_space), hyperparam_mutations=, or a rafiki_ray searcher with a space", None,
            )
        if self._explore_fn is not None:
            new = call_explore_fn(self._explore_fn, new)
        return new

    # ------------------------------------------------------------------ population
    def _member(self, trial: Trial) -> dict[str, Any]:
        m = self._members.get(trial.trial_id)
        if m is None:
            m = self._members[trial.trial_id] = {
                "config": copy.deepcopy(dict(trial.config)), "score": None, "raw": None,
                "time": 0.0, "last_perturb": 0.0, "published": None, "pending": None,
                "finished": False, "session": False, "restart": None, "top": None,
            }
            self._dirty_rows.add(len(self._lineage))
            self._lineage.append({
                "seq": len(self._lineage), "trial_id": trial.trial_id, "event": "start",
                "step": 0.0, "member_step": 0.0, "wall_time": time.time(), "source": None,
                "source_score": None, "score": None, "config": copy.deepcopy(m["config"]), "changed": [],
                "instruction": None, "applied": True, "dropped": False, "via": None,
            })
        self._dirty.add(trial.trial_id)
        return m

    def _quantiles(self) -> tuple[list[str], list[str]]:
        # finished members rank too (as in Ray's PBT): they stay sources for the others, else
        # a member retried or restored after the rest finished is ranked alone and never
        # exploited; only live members are exploited
        ranked = [
            (m["score"], tid, m["finished"]) for tid, m in self._members.items()
            if m["score"] is not None
        ]
        if len(ranked) < 2 or all(fin for *_, fin in ranked):
            return [], []
        # ascending: worst first (higher is better); ties broken at random (a population of
        # identical scores, e.g. the symmetric start of the paper's toy problem, still mixes)
        tie = self._rng.random(len(ranked))
        order = sorted(range(len(ranked)), key=lambda j: (ranked[j][0], tie[j]))
        ranked = [ranked[j] for j in order]
        k = min(int(math.ceil(len(ranked) * self._fraction)), len(ranked) // 2)
        return ([t for _, t, fin in ranked[:k] if not fin],
                [t for _, t, _ in ranked[len(ranked) - k:]])

    # ------------------------------------------------------------------ Tune hooks
    def on_trial_add(self, tune_controller: TuneController, trial: Trial) -> None:
        if self._take_retry(trial):  # Tune retries a member from its checkpoint
            super().on_trial_add(tune_controller, trial)
            self._trials[trial.trial_id] = trial
            return
        super().on_trial_add(tune_controller, trial)
        self._find_space(tune_controller)
        if self._store is None and _ray_up():
            _ = self.store  # create it on the driver, before any trial runs
        known = trial.trial_id in self._members
        self._trials[trial.trial_id] = trial
        if self._mutations is not None and not known:
            missing = {k: v for k, v in self._mutations.items() if k not in trial.config}
            if missing:  # Ray fills keys that only hyperparam_mutations names
                filled = mutate({}, missing, self._rng, resample_probability=1.0,
                                perturbation_factors=self._factors)
                trial.set_config({**trial.config, **filled})
        m = self._member(trial)
        if known:
            if trial.config != m["config"]:  # restored: Tune's snapshot may predate an exploit
                trial.set_config(copy.deepcopy(m["config"]))
            if self._restored and not m["finished"] and trial.status == Trial.PENDING and (
                self._synch and m["time"] >= self._next_sync
            ):
                self._repause.add(trial.trial_id)
        elif self._population_size is not None and len(self._members) > self._population_size:
            logger.warning("PBT: %d trials for population_size=%d", len(self._members),
                           self._population_size)
        self._persist()

    def on_trial_result(
        self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]
    ) -> str:
        super().on_trial_result(tune_controller, trial, result)
        m = self._member(trial)
        self._trials[trial.trial_id] = trial
        if m.get("top") and trial.trial_id not in self._pinned:
            self._top_checkpoint(trial.trial_id, wait=False)  # pin it before a newer one
        if result.get(PUBLISHED_KEY) is not None:
            m["published"] = result[PUBLISHED_KEY]
        applied = result.get(APPLIED_KEY)
        if applied is not None:
            m["session"] = True
        if m["pending"] is not None and isinstance(applied, int) and applied >= m["pending"]:
            self._mark(m["pending"], "applied")
            m["pending"] = None
        if m.get("restart") is not None:  # the first result since restarting from a checkpoint
            self._mark(m["restart"], "applied")
            m["restart"] = None
        t = self._time(result)
        if t is None:
            if self._require_attrs:
                raise invalid("PBT", f"result has no time_attr {self._time_attr!r}", sorted(result))
            return TrialScheduler.CONTINUE
        m["time"] = t
        score = self._score(result)
        if score is not None:
            m["score"], m["raw"] = score, result.get(self._metric)
        if t < self._burn_in or t - m["last_perturb"] < self._interval:
            self._persist()
            return TrialScheduler.CONTINUE
        m["last_perturb"] = t
        if self._synch:
            return self._synch_result(tune_controller, trial, m, result)
        lower, upper = self._quantiles()
        self._note_decision(trial.trial_id, m, trial.trial_id in upper, result)
        logger.debug("PBT: decision for %s at %s: lower %s upper %s pending %s", trial.trial_id,
                     t, lower, upper, m["pending"])
        if trial.trial_id in lower and m["pending"] is None:
            exploited = self._exploit(tune_controller, trial, m, upper)
            if trial.status == Trial.PAUSED:  # restarts from the copied checkpoint
                self._decided()
                return TrialScheduler.NOOP
            if exploited:  # through the store: it goes on (a pause below journals it too)
                self._decided()
        if self._can_resume(trial, result) and any(
            t2 is not trial and (t2.status == Trial.PENDING or (
                t2.status == Trial.PAUSED and not self._restarting(t2)))
            for t2 in tune_controller.get_trials()
        ):  # more members than slots: time-share, as Ray's PBT does (a member paused only
            # to restart from a copied checkpoint is not waiting for a slot of its own)
            return self._pause(tune_controller, trial, result)
        self._persist()
        return TrialScheduler.CONTINUE

    def _restarting(self, trial: Trial) -> bool:
        m = self._members.get(trial.trial_id)
        return m is not None and m.get("restart") is not None

    def _can_resume(self, trial: Trial, result: dict[str, Any]) -> bool:
        """Whether pausing ``trial`` is safe (it has a checkpoint to resume from).

        Time-sharing is an optimisation: a member without checkpoints keeps running (the
        waiting members start when slots free up) instead of restarting from scratch.
        """
        try:
            self._check_checkpoint(trial, result)
        except RuntimeError:
            if not self._warned_no_checkpoint:
                self._warned_no_checkpoint = True
                logger.info(
                    "PBT: other trials wait (PENDING/PAUSED) but trial %s reports no checkpoint, "
                    "so it is not paused to time-share; pass PBTSession.report(checkpoint=...) "
                    "to enable time-sharing", trial.trial_id)
            return False
        return True

    def _pause(self, controller: Any, trial: Trial, result: dict[str, Any]) -> str:
        self._check_checkpoint(trial, result)
        self._release_slot(controller, trial)
        self._dirty.add(trial.trial_id)
        if self._synch:  # a generation's boundary: the whole population may change
            self._persist(force=True)
        else:
            self._decided()
        return TrialScheduler.PAUSE

    def _synch_result(self, controller: Any, trial: Trial, m: dict[str, Any],
                      result: dict[str, Any]) -> str:
        waiting = [
            tid for tid, o in self._members.items()
            if tid != trial.trial_id and not o["finished"] and o["time"] < self._next_sync
        ]
        short = self._population_size is not None and len(self._members) < self._population_size
        if waiting or short:  # NNI's generations: everyone reaches the boundary first
            return self._pause(controller, trial, result)
        lower, upper = self._quantiles()
        for tid, o in self._members.items():  # the top members record first (as Ray)
            if not o["finished"]:
                self._note_decision(tid, o, tid in upper, result if tid == trial.trial_id else None)
        by_id = {t.trial_id: t for t in controller.get_trials()}
        for tid in lower:
            if tid in by_id and self._members[tid]["pending"] is None:
                self._exploit(controller, by_id[tid], self._members[tid], upper)
        times = [o["time"] for o in self._members.values() if not o["finished"]]
        self._next_sync = max(self._next_sync + self._interval, max(times, default=0.0))
        for o in self._members.values():
            o["last_perturb"] = max(o["last_perturb"], o["time"])
        self._persist(force=True)
        if trial.status == Trial.PAUSED:  # it restarts from a copied checkpoint
            return TrialScheduler.NOOP
        return TrialScheduler.CONTINUE

    def _finish(self, trial: Trial) -> None:
        m = self._members.get(trial.trial_id)
        if m is not None:
            m["finished"] = True
            if m["pending"] is not None and self._store is not None:
                # decided at the trial's last report: nobody will apply it (lineage keeps
                # the row with applied=False)
                self._store.take(instruction_key(trial.trial_id))
                self._mark(m["pending"], "dropped")
                m["pending"] = None
            if m.get("restart") is not None:
                # restarted from the copied checkpoint, then ended without reporting again
                # (the copy was already at the last step): the exploit changed nothing
                self._mark(m["restart"], "dropped")
                m["restart"] = None
        self._released.discard(trial.trial_id)
        self._pinned.pop(trial.trial_id, None)
        self._dirty.add(trial.trial_id)
        self._decided()

    def on_trial_complete(self, tune_controller: TuneController, trial: Trial,
                          result: dict[str, Any]) -> None:
        if result:
            m = self._member(trial)
            score = self._score(result)
            if score is not None:
                m["score"], m["raw"] = score, result.get(self._metric)
        self._finish(trial)

    def on_trial_error(self, tune_controller: TuneController, trial: Trial) -> None:
        if self._retry(tune_controller, trial):
            # retried from its checkpoint: still a member; an instruction posted for it
            # stays in the store and PBTSession.start applies it
            self._persist(force=True)
            return
        self._finish(trial)

    def on_trial_remove(self, tune_controller: TuneController, trial: Trial) -> None:
        self._finish(trial)

    def choose_trial_to_run(self, tune_controller: TuneController) -> Trial | None:
        self._apply_repause(tune_controller)
        pending, paused = [], []
        for trial in tune_controller.get_trials():
            if trial.status == Trial.PENDING:
                pending.append(trial)
            elif trial.status == Trial.PAUSED:
                m = self._members.get(trial.trial_id)
                t = m["time"] if m else 0.0
                if self._synch and t >= self._next_sync:
                    continue
                paused.append((t, trial))
        if pending:
            return pending[0]
        paused.sort(key=lambda x: x[0])
        for _, trial in paused:  # the member furthest behind gets the slot (fair share)
            if self._claim_slot(tune_controller, trial):
                self._dirty.add(trial.trial_id)  # its slot is taken back
                return self._hand_over(tune_controller, trial)
        return None

    # ------------------------------------------------------------------ results
    def lineage(self) -> pd.DataFrame:
        """One row per member start and per exploit: who copied whom, when, with which config.

        Columns: ``trial_id``, ``event`` ("start" | "exploit"), ``step`` (``time_attr``),
        ``member_step`` (the member's own step at the decision; ``step`` is the copied
        checkpoint's, where it goes on from), ``wall_time``, ``source`` (copied member),
        ``source_score``, ``score`` (the member's metric before copying), ``changed``
        (hyperparameters that differ from the member's previous config), ``instruction``, ``applied`` (the trial confirmed loading, or
        reported after restarting from the copied checkpoint), ``dropped`` (decided at the
        member's last report, or restarted from a checkpoint already at the last step, so
        never applied), ``via`` (``"store"``: published weights,
        ``"checkpoint"``: restarted from the source's checkpoint), ``config`` and one
        ``config/<name>`` column per hyperparameter.
        """
        return lineage_frame(self._lineage)

    def schedule(self, trial_id: str, *, inherited: bool = True) -> list[dict[str, Any]]:
        """The hyperparameter schedule of a member: ``[{"step", "config", "trial_id"}, ...]``.

        With ``inherited`` (default) the schedule includes what the member inherited with the
        weights it copied (the source's schedule before the copy), i.e. the schedule that
        produced its final weights, the one :class:`PBTReplay` replays.
        """
        if trial_id not in self._members:
            raise invalid("PBT.schedule", "unknown trial id", trial_id)
        return lineage_schedule(self._lineage, trial_id, inherited=inherited)

    def best_trial_id(self) -> str | None:
        ranked = [(m["score"], tid) for tid, m in self._members.items() if m["score"] is not None]
        return max(ranked)[1] if ranked else None

    # ------------------------------------------------------------------ state
    def _known_trial_ids(self) -> set[str]:
        return set(self._members)

    def _get_state(self) -> dict[str, Any]:
        return self._sub_state(copy.deepcopy)

    def _persisted_sub_state(self) -> dict[str, Any]:
        # pickled at once: no copy (a deep copy of the history at every write cost O(history)
        # per decision); the file now covers every change
        self._dirty.clear()
        self._dirty_rows.clear()
        return self._sub_state(lambda x: x)

    def _sub_state(self, copy_: Callable[[Any], Any]) -> dict[str, Any]:
        return {
            "members": copy_(self._members),
            "lineage": copy_(self._lineage),
            "next_id": self._next_id,
            "next_sync": self._next_sync,
            "num_exploits": self._num_exploits,
            "population_size": self._population_size,
            "space": None if self._space is None else self._space.to_dict(),
            "store": self._store_name,
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self._members = copy.deepcopy(state["members"])
        self._lineage = copy.deepcopy(state["lineage"])
        self._next_id = state["next_id"]
        self._next_sync = state["next_sync"]
        self._num_exploits = state["num_exploits"]
        self._population_size = state["population_size"]
        if state["space"] is not None:
            self._space = SearchSpace.from_dict(state["space"])
        self._store_name = state["store"]
        self._store, self._pinned = None, {}

    def debug_string(self) -> str:
        return (f"PBT: {len(self._members)} members, {self._num_exploits} exploits "
                f"(weight_noise={self._weight_noise}, synch={self._synch}).")
