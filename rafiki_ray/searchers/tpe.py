"""``TPESearch``: multivariate Tree-structured Parzen Estimator, with hyperopt's annealing
and seeded random search as the other two ``algo`` values (the names NNI and T9k use).

* ``algo="tpe"``: Bergstra et al. 2011, "Algorithms for hyper-parameter optimization", with
  multivariate product kernels (Falkner et al. 2018, BOHB) over the shared encoding, so that
  correlated parameters are modelled jointly, and conditional parameters handled through the
  encoding's active masks (see :mod:`rafiki_ray.searchers._parzen`). Defaults follow
  Watanabe 2023, "Tree-structured Parzen estimator: understanding its algorithm components"
  (multivariate kernels, a small linear quantile ``gamma``, a prior component of weight 1,
  Scott-style bandwidth, old observations down-weighted in ``g``). The kernel scale
  ``bandwidth=0.06`` (Optuna's multivariate TPE uses 0.2) and ``n_candidates=48`` were
  measured on Hartmann6 and Branin (50 evaluations): 0.2 left the median regret about 2.5x
  higher on Hartmann6.
* ``algo="anneal"``: hyperopt's annealing sampler (``hyperopt.anneal``): pick a good earlier
  point (rank drawn from a geometric law with mean ``avg_best_idx``), then resample every
  parameter around it in a window that shrinks as ``1 / (1 + n * shrink_coef)``.
* ``algo="random"``: seeded random search from the space's own prior.

Multi-fidelity (``algo="tpe"``; BOHB, Falkner et al. 2018): under a scheduler that stops
or pauses trials early (Hyperband, ASHA, successive halving) TPE keeps every intermediate
result per budget (``budget_attr``, default ``training_iteration``;
:mod:`rafiki_ray.searchers._tpe_fidelity`) and fits ``l`` and ``g`` on the largest budget
with at least ``min_points_in_model`` observations, with a ``random_fraction`` of
suggestions drawn from the prior. Trials that report at a single budget leave TPE as it is
without a scheduler, and so does a history where no budget has enough observations yet
(or where budgets never repeat, e.g. ``budget_attr="time_total_s"``). The configuration
recorded is the one the trial ran with (the result's ``config`` restricted to the space's
keys, when the space contains it).

Parallel trials (``batch_strategy="local"``, :mod:`rafiki_ray.searchers._tpe_batch`): with
trials pending, TPE models completed trials only, penalises the pending ones in ``g`` with
narrow kernels, and draws all but one proposal in ``k + 1`` (``k`` pending) around the best
observation; ``batch_strategy="liar"`` is the base class's constant liar.

Sequential runs (no trial ever pending at a proposal) alternate between candidates drawn
from ``l(x)`` and candidates drawn around the best observation (``incumbent_every=2``, each
candidate at its own radius between ``incumbent_scale_min`` and ``incumbent_scale`` times the
kernel's bandwidths), all ranked by ``l(x)/g(x)``: TPE's proposals otherwise rarely refine
the incumbent within 50 evaluations.

Two guards found with the bayesmark-style problems (batches of 8 on scikit-learn models),
where TPE scored below random search: observations tied across the good/bad split (plateaus of
equal accuracy) go to the bad group, so that a plateau does not trap the narrow kernels (with
no good observation left, ``l`` is the prior and the proposal explores); and a proposal never
repeats an observed or pending configuration while another candidate remains (integer
spaces such as kNN's spent half of their evaluations on duplicates).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from rafiki_ray._args import POSITIVE, check_number
from rafiki_ray._errors import invalid
from rafiki_ray.searchers._base import RafikiSearcher
from rafiki_ray.searchers._near import pick_new
from rafiki_ray.searchers._parzen import ParzenEstimator, active_mask, cat_prior
from rafiki_ray.searchers._tpe_batch import log_g_with_pending
from rafiki_ray.searchers._tpe_fidelity import BudgetHistory, budget_of

__all__ = ["ALGOS", "BATCH_STRATEGIES", "TPESearch"]

logger = logging.getLogger(__name__)

ALGOS = ("tpe", "anneal", "random")
#: ``batch_strategy`` values (see :mod:`rafiki_ray.searchers._tpe_batch`).
BATCH_STRATEGIES = ("local", "liar")


class TPESearch(RafikiSearcher):
    """Multivariate TPE (or hyperopt-style annealing, or random search) as a Tune searcher.

    Args:
        space, metric, mode, seed, points_to_evaluate, constant_liar_type, max_concurrent:
            as :class:`~rafiki_ray.searchers.RafikiSearcher`; ``constant_liar_type=None``
            ignores pending trials whatever the ``batch_strategy``.
        algo: ``"tpe"``, ``"anneal"`` or ``"random"``.
        n_startup_trials: random suggestions before TPE models (completed trials count, and
            pending ones too when a constant liar is set).
        n_candidates: candidates drawn from ``l(x)``; the one maximising ``l(x)/g(x)`` wins.
        gamma: fraction of observations in the good group (``ceil(gamma * n)``, at most
            ``max_good``, at least 1).
        max_good: cap on the good group's size.
        prior_weight: weight of the prior component in ``l`` and ``g``.
        bandwidth: scale of the numeric kernels in the unit cube (times Scott's factor).
        linear_forgetting: in ``g``, observations older than the latest this many get
            linearly decaying weights (hyperopt/NNI ``linear_forgetting``); ``None``: equal.
        avg_best_idx: anneal: mean rank of the point annealed around (hyperopt's name).
        shrink_coef: anneal: the window shrinks as ``1 / (1 + n * shrink_coef)``.
        budget_attr: the result key holding a trial's budget (``training_iteration``,
            epochs, seconds...); ``None`` ignores intermediate results (no multi-fidelity).
        min_points_in_model: observations a budget needs before TPE models it (BOHB's
            name; ``None``: number of dims + 1, as BOHB).
        random_fraction: share of random suggestions once results arrive at several budgets
            (no effect otherwise). BOHB uses 1/3; 0.1 was measured better with Hyperband on
            the learning-curve benchmark (``benchmarks/multi_fidelity.py``, 20 seeds).
        batch_strategy: how pending (parallel) trials shape a TPE proposal: ``"local"``
            (default; :mod:`rafiki_ray.searchers._tpe_batch`): the model sees completed
            trials only, pending ones are penalised in ``g`` with narrow kernels, and all but
            one proposal in ``k + 1`` (``k`` pending) search around the best observation;
            ``"liar"``: pending trials enter the model at the constant liar's loss. The
            multi-fidelity path always uses the liar. Batches of 8 (48 evaluations, 200
            seeds): median regret Hartmann6 0.63 -> 0.38, Branin 0.13 -> 0.036.
        local_scale: ``"local"``: the search around the best observation draws from its
            kernel in ``l(x)`` with the numeric bandwidths times this.
        pending_scale, pending_weight: ``"local"``: kernel scale (times ``bandwidth``) and
            weight (relative to one observation) of each pending trial's kernel in ``g``.
        incumbent_every: in sequential runs (no trial has been pending at a proposal: parallel
            runs keep their first proposal per batch global, measured better with batches
            of 8: Hartmann6 0.34 instead of 0.47), every k-th TPE proposal draws its candidates
            from the best observation's kernel in ``l(x)`` (a local search around the
            incumbent, still ranked by ``l(x)/g(x)``); ``None``: never. Measured with 2
            (Hartmann6 / Branin median regret at 50 evaluations, 40 seeds, before -> after:
            seeds 0-39 0.234 -> 0.218 / 0.067 -> 0.036; seeds 200-239, not used to pick it,
            0.33 -> 0.235 / 0.081 -> 0.030; the mixed problem 0.557 -> 0.416 and 0.484 ->
            0.541).
        incumbent_scale: numeric bandwidths of those draws, times ``bandwidth``'s kernels
            (the largest factor when ``incumbent_scale_min`` is set).
        incumbent_scale_min: each candidate of an incumbent draw gets its own factor,
            log-uniform in ``[incumbent_scale_min, incumbent_scale]`` (a local search at
            several radii at once); ``None``: every candidate at ``incumbent_scale``. Measured
            with 0.25 against ``None`` (48 sequential evaluations, median regret over seeds
            0-99 / 100-299 / 300-499): Branin 0.043 / 0.047 / 0.037 -> 0.031 / 0.035 /
            0.037, Hartmann6 0.25 / 0.256 / 0.278 -> 0.236 / 0.269 / 0.26, the mixed problem
            0.552 / 0.512 / 0.589 -> 0.394 / 0.396 / 0.445.
        min_distance: a proposal within ``min_distance * (n + 1) ** (-1 / d)`` (unit cube,
            largest coordinate difference, same categories; ``n`` known points, ``d``
            numeric dimensions) of an observed or pending point is skipped while a farther
            candidate remains (:mod:`rafiki_ray.searchers._near`); ``None``: only exact
            repeats are skipped.
        budget_bandwidth: ``bandwidth`` used when modelling one budget (multi-fidelity).
            Wider than the sequential default, as BOHB's KDEs (normal-reference bandwidths):
            the model sees few observations at the top budgets. On the benchmark, 0.15
            reached the target about 16 % sooner than 0.06 with 16 workers (40 seeds),
            and about 20 % later with 4 workers (both sooner than random sampling).

    Source argument names (:meth:`from_args`), one table:

    ==========================  =======================================================
    source name                 meaning here
    ==========================  =======================================================
    ``optimize_mode``           ``mode`` (``maximize``/``minimize`` accepted)
    ``random_state``            ``seed``
    ``algorithm_name``          ``algo`` (NNI/T9k HyperoptTuner; ``random_search`` = random)
    ``n_startup_jobs``          ``n_startup_trials`` (hyperopt / NNI ``tpe_args``)
    ``n_ei_candidates``         ``n_candidates``
    ``parallel_optimize``       ``False``: ignore running trials (``constant_liar_type=None``)
    ``tpe_args``                NNI TpeTuner's dict of the above; flattened
    ==========================  =======================================================
    """

    ALIASES: ClassVar[dict[str, str]] = {
        **RafikiSearcher.ALIASES,
        "algorithm_name": "algo",
        "n_startup_jobs": "n_startup_trials",
        "n_ei_candidates": "n_candidates",
    }
    _ALGO_NAMES: ClassVar[dict[str, str]] = {
        "random_search": "random",
        "tpe": "tpe",
        "anneal": "anneal",
        "random": "random",
    }

    def __init__(
        self,
        space: Any = None,
        *,
        metric: str | None = None,
        mode: str | None = None,
        seed: int | None = None,
        points_to_evaluate: Sequence[Mapping[str, Any]] | None = None,
        constant_liar_type: str | None = "min",
        max_concurrent: int | None = None,
        algo: str = "tpe",
        n_startup_trials: int = 10,
        n_candidates: int = 48,
        gamma: float = 0.1,
        max_good: int = 25,
        prior_weight: float = 1.0,
        bandwidth: float = 0.06,
        linear_forgetting: int | None = 25,
        avg_best_idx: float = 2.0,
        shrink_coef: float = 0.1,
        budget_attr: str | None = "training_iteration",
        min_points_in_model: int | None = None,
        random_fraction: float = 0.1,
        budget_bandwidth: float = 0.15,
        batch_strategy: str = "local",
        local_scale: float = 1.4,
        pending_scale: float = 0.5,
        pending_weight: float = 0.5,
        incumbent_every: int | None = 2,
        incumbent_scale: float = 1.0,
        incumbent_scale_min: float | None = 0.25,
        min_distance: float | None = 0.02,
    ) -> None:
        if algo not in ALGOS:
            raise invalid("algo", f"must be one of {list(ALGOS)}", algo)
        self._algo = algo
        self._n_startup = check_number("n_startup_trials", n_startup_trials, integer=True, low=0)
        self._n_candidates = check_number("n_candidates", n_candidates, integer=True, low=1)
        self._gamma = check_number("gamma", gamma, low=0, high=1.0, low_open=True)
        self._max_good = check_number("max_good", max_good, integer=True, low=1)
        self._prior_weight = check_number("prior_weight", prior_weight, **POSITIVE)
        self._bandwidth = check_number("bandwidth", bandwidth, **POSITIVE)
        self._forget = check_number("linear_forgetting", linear_forgetting, integer=True, low=1, none_ok=True)
        self._avg_best_idx = check_number("avg_best_idx", avg_best_idx, **POSITIVE)
        self._shrink_coef = check_number("shrink_coef", shrink_coef, **POSITIVE)
        if budget_attr is not None and not isinstance(budget_attr, str):
            raise invalid("budget_attr", "must be a str or None", budget_attr)
        self._budget_attr = budget_attr
        self._min_points = check_number("min_points_in_model", min_points_in_model, integer=True, low=2, none_ok=True)
        self._random_fraction = check_number("random_fraction", random_fraction, low=0, high=1)
        self._budget_bandwidth = check_number("budget_bandwidth", budget_bandwidth, **POSITIVE)
        if batch_strategy not in BATCH_STRATEGIES:
            raise invalid(
                "batch_strategy", f"must be one of {list(BATCH_STRATEGIES)}", batch_strategy
            )
        self._batch = str(batch_strategy)
        self._local_scale = check_number("local_scale", local_scale, **POSITIVE)
        self._pending_scale = check_number("pending_scale", pending_scale, **POSITIVE)
        self._pending_weight = check_number("pending_weight", pending_weight, **POSITIVE)
        self._incumbent_every = check_number("incumbent_every", incumbent_every, integer=True, low=1, none_ok=True)
        self._incumbent_scale = check_number("incumbent_scale", incumbent_scale, **POSITIVE)
        self._incumbent_scale_min = check_number("incumbent_scale_min", incumbent_scale_min, none_ok=True, **POSITIVE)
        if self._incumbent_scale_min is not None and self._incumbent_scale_min > self._incumbent_scale:
            raise invalid(
                "incumbent_scale_min",
                f"must be <= incumbent_scale ({self._incumbent_scale})",
                incumbent_scale_min,
            )
        self._min_distance = check_number("min_distance", min_distance, none_ok=True, **POSITIVE)
        self._n_sequential = 0  # TPE proposals made with no trial pending
        self._parallel = False  # a proposal has been made with trials pending
        # proposals since the last one drawn from l(x) while trials were pending ("local")
        self._since_global = 0
        self._fid = BudgetHistory()
        self._seen_keys: set[bytes] = set()
        super().__init__(
            space,
            metric=metric,
            mode=mode,
            seed=seed,
            points_to_evaluate=points_to_evaluate,
            constant_liar_type=constant_liar_type,
            max_concurrent=max_concurrent,
        )

    @property
    def algo(self) -> str:
        return self._algo

    # ------------------------------------------------------------------ proposals
    def _propose(self, trial_id: str) -> dict[str, Any]:
        if self._algo == "random" or self.encoder.n_dims == 0:
            return self.space.sample(self.rng)
        if self._algo == "tpe" and self._fid.is_multi_fidelity():
            budget = self._fid.model_budget(max(self._min_points or self.encoder.n_dims + 1, 2))
            if budget is not None:
                return self._propose_multi_fidelity(budget)
            # no budget has enough observations yet (or budgets are continuous, e.g.
            # seconds): TPE on completed trials, as without a scheduler
        X, A, y = self.model_data(with_pending=False)
        n_real = len(y)
        pending = list(self._pending.values())
        self._parallel = self._parallel or bool(pending)
        local = self._algo == "tpe" and self._batch == "local" and self._liar is not None
        if not local:
            X, A, y = self._with_liar(X, A, y, pending)
        n_obs = int(np.count_nonzero(~np.isnan(self._obs_arrays()[2])))  # losses not None
        # with a liar, pending trials count towards the random start-up (batches of
        # parallel trials would otherwise all start at random)
        n_started = n_obs + (len(self._pending) if self._liar is not None else 0)
        if self._algo == "anneal":
            if len(y) == 0:
                return self.space.sample(self.rng)
            return self.encoder.decode(self._anneal(X, A, y))
        if n_started < self._n_startup or n_obs < 2 or len(y) < 2:
            return self.space.sample(self.rng)
        if local and pending:
            return self._tpe(X, A, y, n_real, pending=pending)
        self._since_global = 0
        around_best = False
        if not pending and not self._parallel and self._incumbent_every is not None:
            self._n_sequential += 1
            around_best = self._n_sequential % self._incumbent_every == 0
        return self._tpe(X, A, y, n_real, around_best=around_best)

    def _propose_multi_fidelity(self, budget: float) -> dict[str, Any]:
        """BOHB: TPE on ``budget`` (the largest with enough observations); a
        ``random_fraction`` of suggestions stays random."""
        started = self._fid.n_seen_with(self._pending)
        if started < self._n_startup or self.rng.random() < self._random_fraction:
            return self.space.sample(self.rng)
        d = self.encoder.n_dims
        X, A, y = self._fid.data(budget, self.encoder.encode, d)
        if len(y) < 2:
            return self.space.sample(self.rng)
        # trials started but without any result yet count at the liar's loss; trials
        # already reported at lower budgets are judged there, not here
        n_real = len(y)
        fresh = [c for t, c in self._pending.items() if not self._fid.has_config(t)]
        X, A, y = self._with_liar(X, A, y, fresh)
        return self._tpe(X, A, y, n_real, self._budget_bandwidth)

    def _n_good(self, n: int) -> int:
        return max(1, min(math.ceil(self._gamma * n), self._max_good, n - 1))

    def _tpe(
        self,
        X: np.ndarray,
        A: np.ndarray,
        y: np.ndarray,
        n_real: int,
        bandwidth: float | None = None,
        pending: list[dict[str, Any]] | None = None,
        around_best: bool = False,
    ) -> dict[str, Any]:
        """One TPE proposal from observations ``y`` (the first ``n_real`` are real, the rest
        pending trials at the liar's loss); with ``pending`` (``batch_strategy="local"``,
        ``y`` all real) the proposal of :mod:`rafiki_ray.searchers._tpe_batch`; with
        ``around_best`` the candidates come from the best observation's kernel in ``l(x)``
        (numeric bandwidths times ``incumbent_scale``)."""
        dims = self.encoder.dims
        order = np.argsort(y, kind="stable")
        n_good = self._n_good(len(y))
        # a good group must be better than the bad one: real observations tied across the
        # split (a plateau of equal losses, common with accuracies) move to the bad group;
        # with none left, l(x) is the prior and the proposal explores
        while (
            n_good > 0
            and order[n_good - 1] < n_real
            and order[n_good] < n_real
            and y[order[n_good - 1]] >= y[order[n_good]]
        ):
            n_good -= 1
        good, bad = np.sort(order[:n_good]), np.sort(order[n_good:])
        w_bad = None
        if self._forget is not None and len(bad) > self._forget:
            # bad is in chronological order (model_data keeps observation order)
            ramp = np.linspace(1.0 / len(bad), 1.0, len(bad) - self._forget)
            w_bad = np.concatenate([ramp, np.ones(self._forget)])
        scale = bandwidth or self._bandwidth
        kw = {"prior_weight": self._prior_weight, "scale": scale}
        below = ParzenEstimator(dims, X[good], A[good], **kw)
        above = ParzenEstimator(dims, X[bad], A[bad], **kw, weights=w_bad)
        best = int(np.searchsorted(good, order[0]))  # the best observation's kernel in l
        if not pending and around_best:
            cands = below.sample(
                self.rng, self._n_candidates, component=best, bw_factor=self._incumbent_factors()
            )
        elif not pending:
            cands = below.sample(self.rng, self._n_candidates)
        elif self._since_global >= len(pending):
            self._since_global = 0
            cands = below.sample(self.rng, self._n_candidates)
        else:
            self._since_global += 1
            cands = below.sample(
                self.rng, self._n_candidates, component=best, bw_factor=self._local_scale
            )
        CA = active_mask(dims, cands)
        log_g = above.log_pdf(cands, CA)
        if pending:
            P, PA = (np.array(v) for v in zip(*(self.encoder.encode(c) for c in pending)))
            mass = (len(bad) if w_bad is None else float(w_bad.sum())) + self._prior_weight
            log_g = log_g_with_pending(
                log_g, mass, dims, P, PA, cands, CA,
                scale=scale * self._pending_scale, weight=self._pending_weight,
            )
        score = below.log_pdf(cands, CA) - log_g
        order = np.argsort(-score, kind="stable")
        config = self._new_config(cands, order)
        if config is None and not pending and around_best:
            # narrow draws on a small integer / categorical grid can all snap back onto known
            # configurations: draw this proposal from l(x) instead of repeating one
            return self._tpe(X, A, y, n_real, bandwidth)
        return self.encoder.decode(cands[order[0]]) if config is None else config

    def _incumbent_factors(self) -> float | np.ndarray:
        """Bandwidth factor of an incumbent draw: ``incumbent_scale``, or one per candidate,
        log-uniform from ``incumbent_scale_min`` to it (shape ``(n_candidates, 1)``)."""
        if self._incumbent_scale_min is None:
            return self._incumbent_scale
        lo, hi = np.log(self._incumbent_scale_min), np.log(self._incumbent_scale)
        return np.exp(self.rng.uniform(lo, hi, size=(self._n_candidates, 1)))

    def _new_config(self, cands: np.ndarray, order: np.ndarray) -> dict[str, Any] | None:
        """The best-scored candidate that neither repeats nor lies near (``min_distance``)
        an observed or pending configuration; else the best new one that is near; ``None``
        when every candidate repeats a known configuration."""
        X, A, _ = self._obs_arrays()
        return pick_new(
            self.encoder, (cands[i] for i in order), self._seen_keys, list(self._pending.values()),
            X, A, self._min_distance, _key,
        )

    def _record(self, config: dict[str, Any], loss: float | None, trial_id: str | None) -> None:
        super()._record(config, loss, trial_id)
        self._seen_keys.add(_key(self._obs_x[-1]))

    def set_state(self, state: dict[str, Any]) -> None:
        self._seen_keys = set()
        super().set_state(state)

    # ------------------------------------------------------------------ multi-fidelity
    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """Keep an intermediate result under its budget (BOHB); see the module docstring."""
        self._record_budget(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if result is not None and not error:
            self._record_budget(trial_id, result)
        super().on_trial_complete(trial_id, result, error)

    def _record_budget(self, trial_id: str, result: Mapping[str, Any] | None) -> None:
        if self._budget_attr is None or not result or self._space is None:
            return
        budget = budget_of(result, self._budget_attr)
        loss = self._loss(result.get(self._metric)) if self._metric is not None else None
        if budget is None or loss is None:
            return
        if self._fid.has_config(trial_id):
            self._fid.record(trial_id, budget, loss)
            return
        config = self._ran_config(result, self._pending.get(trial_id))
        if config is not None:
            self._fid.record(trial_id, budget, loss, config)

    def _ran_config(
        self, result: Mapping[str, Any], suggested: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """The configuration the trial ran with: the result's ``config`` restricted to the
        space's keys when the space contains it (a scheduler may add keys, e.g. the budget),
        else the suggested one."""
        ran = result.get("config")
        if isinstance(ran, Mapping):
            space = self._require_space()
            cfg = {k: ran[k] for k in space if k in ran}
            if space.contains(cfg):
                return cfg
        return suggested

    def _anneal(self, X: np.ndarray, A: np.ndarray, y: np.ndarray) -> np.ndarray:
        """hyperopt's anneal: perturb a good earlier point within a shrinking window."""
        dims = self.encoder.dims
        n = len(y)
        order = np.argsort(y, kind="stable")
        rank = min(int(self.rng.geometric(1.0 / self._avg_best_idx)) - 1, n - 1)
        x0, a0 = X[order[rank]], A[order[rank]]
        shrink = 1.0 / (1.0 + n * self._shrink_coef)
        out = np.empty(len(dims))
        for j, d in enumerate(dims):
            if d.kind == "cat":
                prior = cat_prior(d)
                fresh = float(self.rng.choice(len(prior), p=prior))
                keep = a0[j] and self.rng.random() >= shrink
                out[j] = x0[j] if keep else fresh
            elif a0[j]:
                out[j] = min(max(x0[j] + (self.rng.random() - 0.5) * shrink, 0.0), 1.0)
            else:
                out[j] = self.rng.random()
        return out

    # ------------------------------------------------------------------ state / args
    def _get_extra_state(self) -> dict[str, Any]:
        return {
            "algo": self._algo,
            "n_startup_trials": self._n_startup,
            "n_candidates": self._n_candidates,
            "gamma": self._gamma,
            "max_good": self._max_good,
            "prior_weight": self._prior_weight,
            "bandwidth": self._bandwidth,
            "linear_forgetting": self._forget,
            "avg_best_idx": self._avg_best_idx,
            "shrink_coef": self._shrink_coef,
            "budget_attr": self._budget_attr,
            "min_points_in_model": self._min_points,
            "random_fraction": self._random_fraction,
            "budget_bandwidth": self._budget_bandwidth,
            "batch_strategy": self._batch,
            "local_scale": self._local_scale,
            "pending_scale": self._pending_scale,
            "pending_weight": self._pending_weight,
            "since_global": self._since_global,
            "incumbent_every": self._incumbent_every,
            "incumbent_scale": self._incumbent_scale,
            "incumbent_scale_min": self._incumbent_scale_min,
            "n_sequential": self._n_sequential,
            "parallel": self._parallel,
            "budgets": self._fid.to_state(),
        }

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        self._algo = state["algo"]
        self._n_startup = state["n_startup_trials"]
        self._n_candidates = state["n_candidates"]
        self._gamma = state["gamma"]
        self._max_good = state["max_good"]
        self._prior_weight = state["prior_weight"]
        self._bandwidth = state["bandwidth"]
        self._forget = state["linear_forgetting"]
        self._avg_best_idx = state["avg_best_idx"]
        self._shrink_coef = state["shrink_coef"]
        self._budget_attr = state.get("budget_attr", "training_iteration")
        self._min_points = state.get("min_points_in_model")
        self._random_fraction = state.get("random_fraction", 0.1)
        self._budget_bandwidth = state.get("budget_bandwidth", 0.15)
        # states saved before batch_strategy existed ran the constant liar
        self._batch = state.get("batch_strategy", "liar")
        self._local_scale = state.get("local_scale", 1.4)
        self._pending_scale = state.get("pending_scale", 0.5)
        self._pending_weight = state.get("pending_weight", 0.5)
        self._since_global = state.get("since_global", 0)
        # states saved before the option existed never drew around the incumbent
        self._incumbent_every = state.get("incumbent_every")
        self._incumbent_scale = state.get("incumbent_scale", 1.0)
        # states saved before incumbent_scale_min existed drew every candidate at one scale
        self._incumbent_scale_min = state.get("incumbent_scale_min")
        self._n_sequential = state.get("n_sequential", 0)
        self._parallel = bool(state.get("parallel", False))
        self._fid = BudgetHistory.from_state(state.get("budgets"))

    @classmethod
    def from_args(cls, args: Mapping[str, Any], **kwargs: Any) -> TPESearch:
        """Build from NNI ``TpeTuner`` / ``HyperoptTuner`` or T9k class arguments (see the
        table in the class docstring), e.g. ``{"optimize_mode": "maximize",
        "algorithm_name": "random_search", "parallel_optimize": True}``."""
        args = dict(args)
        nested = args.pop("tpe_args", None) or {}
        if not isinstance(nested, Mapping):
            raise invalid(f"{cls.__name__}.tpe_args", "must be a dict", nested)
        args.update(nested)
        for key in ("algorithm_name", "algo"):
            if key in args:
                name = args[key]
                if name not in cls._ALGO_NAMES:
                    raise invalid(
                        f"{cls.__name__}.{key}", f"must be one of {sorted(cls._ALGO_NAMES)}", name
                    )
                args[key] = cls._ALGO_NAMES[name]
        if "parallel_optimize" in args:
            parallel = args.pop("parallel_optimize")
            if not isinstance(parallel, bool):
                raise invalid(f"{cls.__name__}.parallel_optimize", "must be a bool", parallel)
            if not parallel:
                args["constant_liar_type"] = None
        return super().from_args(args, **kwargs)  # type: ignore[return-value]


def _key(x: np.ndarray) -> bytes:
    return np.round(np.asarray(x, dtype=float), 9).tobytes()
