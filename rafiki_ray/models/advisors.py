"""Rafiki's advisors on Tune searchers (``rafiki/advisor/advisor.py`` ``make_advisor``).

:func:`choose_advisor` takes the first compatible advisor in the original's order:

1. ``FIXED``: only Fixed/Policy knobs: one trial.
2. ``BAYES_OPT_WITH_PARAM_SHARING``: only Categorical/Integer/Float/Fixed/Policy knobs and a
   ``SHARE_PARAMS`` policy: :class:`~rafiki_ray.searchers.GPSearch`, every trial with
   SHARE_PARAMS (and EARLY_STOP) on; it starts from ``GLOBAL_BEST`` parameters with
   probability ``1 - exp(-4 * used)`` (``used``: fraction of the budget spent), from scratch
   otherwise (decaying epsilon-greedy), and every trial publishes its parameters; with an
   ``EARLY_STOP`` policy, the same final window as BAYES_OPT follows (a deliberate change,
   below).
3. ``BAYES_OPT``: the same knob types: GPSearch; with an ``EARLY_STOP`` policy, SEARCH trials
   train with EARLY_STOP until the final window, then FINAL_TRAIN trials re-train the best
   SEARCH configurations, best first, each once, with every policy off.
4. ``ENAS``: only Arch/Fixed/Policy knobs, all five policies and ``TIME_HOURS >= 12``:
   :class:`rafiki_ray.nas.ENASSearch`.
5. ``RANDOM``: everything else: :class:`RandomSearch`.

Fixed bugs of the original (each has a test): FIXED read ``.value.value`` on policy knobs
(here policies are plain booleans); RANDOM ignored ``is_exp`` (here log-uniform, as the space
says); BO ignored integer ``is_exp`` (GPSearch searches log-integers in log space); a zero
bound of a log-scaled knob was replaced by 1e-12 in BO (here refused when the knob is
built: ``FloatKnob(0, 1, is_exp=True)`` raises ``ValueError``); the GLOBAL_BEST cache was never
filled because only ENAS trials cached parameters (here every parameter-sharing trial
publishes, so later trials do receive the best one's parameters).

Deliberate change (tested): the original's final window was the last hour whatever the
budget (``BayesOptAdvisor``: FINAL_TRAIN once ``hours left <= 1``), so under its default
0.1 h budget, and any budget up to 1 h, every trial was FINAL_TRAIN: the EARLY_STOP search
never ran and the advisor only fell back to plain BO proposals with every policy off. Here the
window is ``min(1 h, final_fraction * TIME_HOURS)`` (``final_fraction`` 0.25 by default): the
original's last hour for budgets of 4 h and more, the last quarter of shorter ones. With a
``MODEL_TRIAL_COUNT`` (which the original's BO never planned for), the last
``ceil(final_fraction * count)`` trials are final too.

Deliberate change (tested): the original's ``BayesOptWithParamSharingAdvisor`` had no final
phase: every trial trained with EARLY_STOP, so the best trial, the one deployed, was an
early-stopped one (``PyFeedForward``: 2 of its 10 epochs, continued from shared parameters).
Here it ends with BAYES_OPT's FINAL_TRAIN window (same rule, same mechanism): the best SEARCH
configurations re-trained in full, from scratch, every policy off.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ray.tune.search import Searcher

from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray._rng import check_seed, make_rng, rng_state, set_rng_state
from rafiki_ray._state import load_state, save_state
from rafiki_ray.knobs import (
    ArchKnob,
    CategoricalKnob,
    FixedKnob,
    FloatKnob,
    IntegerKnob,
    PolicyKnob,
)
from rafiki_ray.models._budget import Budget, BudgetClock
from rafiki_ray.searchers._base import RafikiSearcher

__all__ = [
    "ADVISORS",
    "DIRECTIVE_KEY",
    "PARAMS_TYPES",
    "PHASES",
    "AdvisorChoice",
    "AdvisorSearch",
    "FixedSearch",
    "RandomSearch",
    "choose_advisor",
    "default_directive",
]

logger = logging.getLogger(__name__)

ADVISORS = ("FIXED", "BAYES_OPT_WITH_PARAM_SHARING", "BAYES_OPT", "ENAS", "RANDOM")
DIRECTIVE_KEY = "_rafiki"
PHASES = ("SEARCH", "FINAL_TRAIN", "TRAIN", "EVAL", "FINAL_EVAL")
PARAMS_TYPES = (None, "LOCAL_RECENT", "LOCAL_BEST", "GLOBAL_RECENT", "GLOBAL_BEST")
ENAS_MIN_HOURS = 12.0
_BO_KNOBS = (CategoricalKnob, IntegerKnob, FloatKnob, FixedKnob, PolicyKnob)
_FINAL_ADVISORS = ("BAYES_OPT", "BAYES_OPT_WITH_PARAM_SHARING")


def default_directive() -> dict[str, Any]:
    """The directive of a config without ``"_rafiki"``."""
    return {"phase": "SEARCH", "params_type": None, "to_eval": True, "to_cache_params": False}


@dataclass(frozen=True)
class AdvisorChoice:
    """Which advisor runs the job and why."""

    name: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "reason": self.reason}


def _policies(knob_config: Mapping[str, Any]) -> dict[str, str]:
    return {k: v.policy for k, v in knob_config.items() if isinstance(v, PolicyKnob)}


def choose_advisor(knob_config: Mapping[str, Any], budget: Budget) -> AdvisorChoice:
    """The first advisor in Rafiki's order whose rule the knobs and budget meet."""
    knobs = list(knob_config.values())
    kinds = sorted({type(k).__name__ for k in knobs})
    policies = set(_policies(knob_config).values())
    if all(isinstance(k, (FixedKnob, PolicyKnob)) for k in knobs):
        return AdvisorChoice("FIXED", f"only Fixed/Policy knobs ({kinds}): a single trial")
    if all(isinstance(k, _BO_KNOBS) for k in knobs):
        early = " with EARLY_STOP search trials then FINAL_TRAIN" if "EARLY_STOP" in policies \
            else ""
        if "SHARE_PARAMS" in policies:
            return AdvisorChoice(
                "BAYES_OPT_WITH_PARAM_SHARING",
                f"only Categorical/Integer/Float/Fixed/Policy knobs ({kinds}) and the "
                "SHARE_PARAMS policy: GP Bayesian optimisation with epsilon-greedy "
                f"GLOBAL_BEST parameter sharing{early}")
        return AdvisorChoice(
            "BAYES_OPT",
            f"only Categorical/Integer/Float/Fixed/Policy knobs ({kinds}), no SHARE_PARAMS: "
            f"GP Bayesian optimisation{early}")
    all_policies = {"SHARE_PARAMS", "EARLY_STOP", "SKIP_TRAIN", "QUICK_EVAL", "DOWNSCALE"}
    if all(isinstance(k, (ArchKnob, FixedKnob, PolicyKnob)) for k in knobs):
        if policies >= all_policies and budget.time_hours >= ENAS_MIN_HOURS:
            return AdvisorChoice(
                "ENAS", f"only Arch/Fixed/Policy knobs, all five policies and TIME_HOURS "
                f"{budget.time_hours} >= {ENAS_MIN_HOURS}: ENAS architecture search")
        missing = sorted(all_policies - policies)
        why = (f"policies {missing} missing" if missing
               else f"TIME_HOURS {budget.time_hours} < {ENAS_MIN_HOURS}")
        return AdvisorChoice("RANDOM", f"Arch/Fixed/Policy knobs but not ENAS ({why}): "
                             "uniformly random knobs")
    return AdvisorChoice("RANDOM", f"knob types {kinds} fit no other advisor: random knobs")


def check_advisor(name: Any, knob_config: Mapping[str, Any]) -> str:
    """Validate an ``advisor=`` override against the knobs."""
    if not isinstance(name, str) or name.upper() not in ADVISORS:
        raise invalid("advisor", f"must be one of {list(ADVISORS)}", name)
    name = name.upper()
    knobs = list(knob_config.values())
    policies = set(_policies(knob_config).values())
    if name == "FIXED" and not all(isinstance(k, (FixedKnob, PolicyKnob)) for k in knobs):
        raise invalid("advisor", "FIXED needs only Fixed/Policy knobs", name)
    if name == "BAYES_OPT_WITH_PARAM_SHARING" and "SHARE_PARAMS" not in policies:
        raise invalid("advisor", "BAYES_OPT_WITH_PARAM_SHARING needs a SHARE_PARAMS policy "
                      "knob (models would ignore the shared parameters)", name)
    if name == "ENAS" and not any(isinstance(k, ArchKnob) for k in knobs):
        raise invalid("advisor", "ENAS needs an ArchKnob", name)
    return name


class FixedSearch(RafikiSearcher):
    """Rafiki's FIXED advisor: the one configuration (fixed values, policies off), once."""

    def __init__(self, space: Any = None, **kwargs: Any) -> None:
        self._done = 0
        super().__init__(space, **kwargs)

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self._done >= 1 and not self._queued:
            return Searcher.FINISHED
        out = super().suggest(trial_id)
        if out is not None:
            self._done += 1
        return out

    def _propose(self, trial_id: str) -> dict[str, Any]:
        return self._require_space().sample(self.rng)

    def _get_extra_state(self) -> dict[str, Any]:
        return {"done": self._done}

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        self._done = int(state.get("done", 0))


class RandomSearch(RafikiSearcher):
    """Rafiki's RANDOM advisor, with ``is_exp`` honoured (log-uniform floats and integers)."""

    def _propose(self, trial_id: str) -> dict[str, Any]:
        return self._require_space().sample(self.rng)


def _copy(x: Any) -> Any:
    import copy

    return copy.deepcopy(x)


class AdvisorSearch(Searcher):
    """Wraps a searcher with Rafiki's advisor behaviour and the time budget.

    Adds each trial's directive (``config["_rafiki"]``) and policy booleans; returns
    ``FINISHED`` once the clock says the time budget is spent. A directive the wrapped
    searcher already put in its config (ENAS) is kept as it is.

    Args:
        inner: any Tune ``Searcher`` (rafiki_ray's or Tune's own).
        advisor: one of :data:`ADVISORS`, or ``"CUSTOM"`` (directives left to ``inner``).
        policies: ``{knob name: policy}`` of the model's PolicyKnobs.
        clock: the experiment's :class:`BudgetClock` (``None``: no time budget).
        trial_count: ``MODEL_TRIAL_COUNT`` (``None``: unlimited), for the final window.
        forward_space: pass Tune's ``param_space`` on to ``inner`` (a user's searcher);
            ``False`` when ``inner`` was built with the space.
        final_fraction: FINAL_TRAIN window of BAYES_OPT (with or without parameter sharing)
            and EARLY_STOP: the last
            ``min(1 h, final_fraction * TIME_HOURS)`` and the last
            ``ceil(final_fraction * MODEL_TRIAL_COUNT)`` trials (see the module docstring for
            why this differs from the original's fixed last hour).
        share_decay: epsilon-greedy decay rate (Rafiki: 4): ``P(no sharing) = exp(-decay*used)``.
        seed: seeds this wrapper's own generator (the sharing coin).

    :attr:`created_s` maps each suggested trial id to the budget seconds spent when it was
    suggested (kept in the state, so it spans a ``Tuner.restore``).
    """

    def __init__(
        self,
        inner: Searcher,
        *,
        advisor: str,
        policies: Mapping[str, str] | None = None,
        clock: BudgetClock | None = None,
        trial_count: int | None = None,
        forward_space: bool = False,
        final_fraction: float = 0.25,
        share_decay: float = 4.0,
        seed: int | None = None,
        metric: str | None = "score",
        mode: str | None = "max",
    ) -> None:
        if not isinstance(inner, Searcher):
            raise invalid_type("search_alg", "must be a ray.tune.search.Searcher", inner)
        if advisor not in (*ADVISORS, "CUSTOM"):
            raise invalid("advisor", f"must be one of {list(ADVISORS) + ['CUSTOM']}", advisor)
        if not (isinstance(final_fraction, (int, float)) and 0 <= final_fraction < 1):
            raise invalid("final_fraction", "must be in [0, 1)", final_fraction)
        if not (isinstance(share_decay, (int, float)) and share_decay >= 0):
            raise invalid("share_decay", "must be a number >= 0", share_decay)
        super().__init__(metric=metric, mode=mode)
        self._inner = inner
        self.advisor = advisor
        self._policies = dict(policies or {})
        self._clock = clock
        self._count = trial_count
        self._forward = bool(forward_space)
        self._final_fraction = float(final_fraction)
        self._decay = float(share_decay)
        self._seed = check_seed(seed)
        self._rng = make_rng(self._seed)
        self._n = 0  # trials suggested
        self._pending: dict[str, dict[str, Any]] = {}
        self._search_results: list[dict[str, Any]] = []  # SEARCH configs and scores
        self._final_done: list[dict[str, Any]] = []  # configs already final-trained
        # trial id -> budget seconds spent when it was suggested (None without a clock)
        self._created: dict[str, float | None] = {}

    # ------------------------------------------------------------------ helpers
    @property
    def inner(self) -> Searcher:
        return self._inner

    # the inner searcher's max_concurrent slots (RafikiSearcher.slots), for pausing schedulers;
    # not a ``.searcher`` attribute: Tune would take this searcher for a wrapper and save it so
    def slots(self) -> tuple[set[str], int] | None:
        fn = getattr(self._inner, "slots", None)
        return fn() if callable(fn) else None

    def release_slot(self, trial_id: str) -> bool:
        return bool(self._inner.release_slot(trial_id)) if self.slots() is not None else False

    def claim_slot(self, trial_id: str, *, force: bool = False) -> bool:
        if self.slots() is None:
            return True
        return bool(self._inner.claim_slot(trial_id, force=force))

    @property
    def created_s(self) -> dict[str, float | None]:
        return dict(self._created)

    def _knob(self, policy: str) -> str | None:
        for name, pol in self._policies.items():
            if pol == policy:
                return name
        return None

    def _with_policies(self, config: dict[str, Any], on: set[str]) -> dict[str, Any]:
        out = dict(config)
        for name, pol in self._policies.items():
            out[name] = pol in on
        return out

    def _used(self) -> float:
        used = self._clock.fraction_used() if self._clock is not None else 0.0
        if self._count:
            used = max(used, self._n / self._count)
        return min(1.0, used)

    def has_final_phase(self) -> bool:
        """Whether this job ends with FINAL_TRAIN trials: BAYES_OPT and
        BAYES_OPT_WITH_PARAM_SHARING whose model has an ``EARLY_STOP`` policy (their SEARCH
        trials train early-stopped, so the best configurations are re-trained in full)."""
        return self.advisor in _FINAL_ADVISORS and self._knob("EARLY_STOP") is not None

    def in_final_window(self) -> bool:
        """Whether the budget has reached the FINAL_TRAIN window (see :meth:`has_final_phase`
        for the jobs that have one)."""
        if self._clock is not None and self._clock.budget_s:
            window = min(3600.0, self._final_fraction * self._clock.budget_s)
            if (self._clock.remaining() or 0.0) <= window:
                return True
        if self._count and self._count > 1 and self._final_fraction > 0:
            n_final = math.ceil(self._final_fraction * self._count)
            if self._count - self._n <= n_final:
                return True
        return False

    def _next_final(self) -> dict[str, Any] | None:
        """The best SEARCH configuration not final-trained yet (or ``None``)."""
        ranked = sorted((r for r in self._search_results if math.isfinite(r["score"])),
                        key=lambda r: -r["score"])
        for r in ranked:
            if r["config"] not in self._final_done:
                return r["config"]
        return None

    # ------------------------------------------------------------------ Tune protocol
    def set_search_properties(self, metric: str | None, mode: str | None,
                              config: dict[str, Any], **spec: Any) -> bool:
        if metric is not None:
            self._metric = metric
        if mode is not None:
            self._mode = mode
        inner_cfg = config if self._forward else {}
        return bool(self._inner.set_search_properties(metric, mode, inner_cfg, **spec))

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return bool(self._inner.set_max_concurrency(max_concurrent))

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self._clock is not None and self._clock.time_up():
            logger.info("time budget spent (%.1f s): no new trial", self._clock.elapsed())
            return Searcher.FINISHED
        if self._count is not None and self._n >= self._count:
            return Searcher.FINISHED
        directive = default_directive()
        from_inner = True
        on: set[str] | None = None
        if self.has_final_phase() and self.in_final_window():
            best = self._next_final()
            if best is not None:
                config, from_inner = _copy(best), False
                self._final_done.append(_copy(best))
            else:
                config = self._inner.suggest(trial_id)
            directive["phase"] = "FINAL_TRAIN"
            on = set()
        else:
            config = self._inner.suggest(trial_id)
            if self.advisor == "BAYES_OPT" and self._knob("EARLY_STOP"):
                on = {"EARLY_STOP"}
            elif self.advisor == "BAYES_OPT_WITH_PARAM_SHARING":
                on = {"SHARE_PARAMS", "EARLY_STOP"}
                fresh = self._rng.random() < math.exp(-self._decay * self._used())
                directive["params_type"] = None if fresh else "GLOBAL_BEST"
                directive["to_cache_params"] = True
            elif self.advisor in ("BAYES_OPT", "FIXED", "RANDOM"):
                on = set()
        if config is None or config == Searcher.FINISHED:
            return config
        config = dict(config)
        if on is not None:
            config = self._with_policies(config, on)
        if DIRECTIVE_KEY not in config:
            config[DIRECTIVE_KEY] = directive
        self._n += 1
        at = round(self._clock.elapsed(), 3) if self._clock is not None else None
        self._created[trial_id] = at
        logger.debug("trial %s suggested (%d of %s) at %s s of the time budget", trial_id,
                     self._n, self._count, at)
        self._pending[trial_id] = {"config": {k: v for k, v in config.items()
                                              if k != DIRECTIVE_KEY},
                                   "phase": config[DIRECTIVE_KEY].get("phase", "SEARCH"),
                                   "from_inner": from_inner}
        return config

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if self._pending.get(trial_id, {}).get("from_inner", True):
            self._inner.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:
        info = self._pending.pop(trial_id, None)
        if info is None or info["from_inner"]:
            self._inner.on_trial_complete(trial_id, result=result, error=error)
        if info is None or error or not result:
            return
        score = result.get(self._metric) if self._metric else None
        try:
            score = float(score)
        except (TypeError, ValueError):
            return
        if self._mode == "min":
            score = -score
        if info["phase"] == "SEARCH" and math.isfinite(score):
            base = self._with_policies(info["config"], set())
            self._search_results.append({"config": base, "score": score})

    # ------------------------------------------------------------------ state
    def _inner_state(self) -> dict[str, Any]:
        if isinstance(self._inner, RafikiSearcher):
            return {"kind": "plain", "state": self._inner.get_state()}
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "inner.pkl")
            try:
                self._inner.save(path)
            except NotImplementedError:
                logger.warning("%s cannot save its state; it restarts after a restore",
                               type(self._inner).__name__)
                return {"kind": "none"}
            with open(path, "rb") as f:
                return {"kind": "bytes", "state": f.read()}

    def _set_inner_state(self, blob: dict[str, Any]) -> None:
        if blob["kind"] == "plain":
            self._inner.set_state(blob["state"])
        elif blob["kind"] == "bytes":
            with tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, "inner.pkl")
                with open(path, "wb") as f:
                    f.write(blob["state"])
                self._inner.restore(path)

    def get_state(self) -> dict[str, Any]:
        return {
            "advisor": self.advisor, "metric": self._metric, "mode": self._mode,
            "policies": dict(self._policies), "count": self._count, "seed": self._seed,
            "rng": rng_state(self._rng), "n": self._n, "pending": _copy(self._pending),
            "search_results": _copy(self._search_results),
            "final_done": _copy(self._final_done), "created_s": dict(self._created),
            "inner": self._inner_state(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.advisor, self._metric, self._mode = state["advisor"], state["metric"], state["mode"]
        self._policies, self._count = dict(state["policies"]), state["count"]
        self._seed = state["seed"]
        set_rng_state(self._rng, state["rng"])
        self._n, self._pending = int(state["n"]), _copy(state["pending"])
        self._search_results = _copy(state["search_results"])
        self._final_done = _copy(state["final_done"])
        self._created = dict(state.get("created_s", {}))
        self._set_inner_state(state["inner"])

    def save(self, checkpoint_path: str) -> None:
        save_state(checkpoint_path, self.get_state(), kind=type(self).__name__)

    def restore(self, checkpoint_path: str) -> None:
        self.set_state(load_state(checkpoint_path, kind=type(self).__name__))


def build_inner(advisor: str, space: Any, *, seed: int | None, budget: Budget,
                n_initial: int | None = None) -> Searcher:
    """The searcher behind each advisor (``space`` from ``from_knobs``)."""
    kw: dict[str, Any] = {"metric": "score", "mode": "max", "seed": seed}
    if advisor == "FIXED":
        return FixedSearch(space, **kw)
    if advisor in ("BAYES_OPT", "BAYES_OPT_WITH_PARAM_SHARING"):
        from rafiki_ray.searchers import GPSearch

        if n_initial is None and budget.trial_count is not None:
            # Rafiki's skopt used 10 initial points; keep BO room in small trial budgets
            n_initial = max(2, min(10, budget.trial_count // 2))
        return GPSearch(space, n_initial=n_initial, **kw)
    if advisor == "ENAS":
        return _enas(space, seed=seed, budget=budget)
    if advisor == "RANDOM":
        return RandomSearch(space, **kw)
    raise invalid("advisor", f"must be one of {list(ADVISORS)}", advisor)


#: Rafiki's ENAS advisor spends its last 12 hours on FINAL_EVAL x10 and one FINAL_TRAIN
ENAS_FINAL_HOURS = 12.0


def _enas(space: Any, *, seed: int | None, budget: Budget) -> Searcher:
    """:class:`rafiki_ray.nas.ENASSearch` on Rafiki's schedule (1 TRAIN + 300 EVAL per period;
    the final phase starts :data:`ENAS_FINAL_HOURS` before the time budget ends, or 11 trials
    before ``MODEL_TRIAL_COUNT`` is reached, whichever comes first)."""
    from rafiki_ray.nas import ENASSearch, RafikiSchedule

    n_final_eval = 10
    after_trials = None
    if budget.trial_count is not None:
        after_trials = max(0, budget.trial_count - (n_final_eval + 1))
    schedule = RafikiSchedule(
        n_final_eval=n_final_eval,
        final_after_s=max(0.0, budget.time_s - ENAS_FINAL_HOURS * 3600.0),
        final_after_trials=after_trials,
    )
    return ENASSearch(space, metric="score", mode="max", seed=seed, schedule=schedule)
