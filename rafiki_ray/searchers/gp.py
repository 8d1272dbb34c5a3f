"""``GPSearch``: Gaussian-process Bayesian optimisation (Snoek, Larochelle & Adams, "Practical
Bayesian Optimization of Machine Learning Algorithms", NeurIPS 2012; Jones, Schonlau & Welch,
"Efficient Global Optimization of Expensive Black-Box Functions", 1998).

* A scrambled Sobol design (``n_initial`` points, seeded by the searcher) starts the search.
* Then an exact GP (:mod:`rafiki_ray.searchers._gp`: Matern nu 0.5/1.5/2.5 or RBF, ARD,
  hyperparameters by maximum a posteriori with analytic gradients, warm-started, refit at
  geometric observation counts: ``refit_growth``, :mod:`._gp_fit`) models the losses, and the
  next point maximises log-EI, log-PI or UCB (:mod:`._acquisition`).
* The acquisition is maximised over candidates (Sobol points plus perturbations of the best
  observations at several radii), each snapped to a value the space can produce (integer
  levels, category indices, inactive conditional dims set to a constant), and the best few are
  polished by a batched projected gradient descent on the continuous dims (:mod:`._descent`).
* Integers are numeric inputs snapped to their levels; categoricals (and conditional choices)
  use a Hamming distance in the kernel; dims inactive under a conditional are masked to the
  encoder's neutral constant, so configurations under another branch differ only through the
  branch's categorical dim.
* Parallel trials (``batch_strategy``): by default a Kriging believer (Ginsbourger, Le Riche &
  Carraro, "Kriging is well-suited to parallelize optimization", 2010): hyperparameters are fit
  on the real observations only, then the GP is conditioned on the pending configurations at
  their own posterior mean (no refit), which leaves the mean unchanged and collapses the
  variance around them, and the acquisition (incumbent: the best of the real losses and the
  fantasies) is maximised as usual, so a batch spreads out. ``batch_strategy="liar"`` keeps
  the older constant liar (pending points at the ``constant_liar_type`` loss, refit included).
  Pending points in the initial design continue the same Sobol sequence. Once parallel trials
  have been seen, the design is cut short as soon as one batch of it has results and at least
  half of it does (Hartmann6, batch 8: 16 design points instead of 18; a first batch of 8 as
  the whole design was worse there, median regret 0.19 instead of 0.1-0.12 over 10 seeds).
* Trust region (``trust_region``, opt-in): of the pending suggestions, one at a time searches
  the whole space, one is the posterior-mean minimiser and the others search a TuRBO-style
  adaptive box around the incumbent (:mod:`._gp_batch`, with measurements); sequential runs
  never use it.
* Exploitation (``exploit_every``): with parallel trials, whenever no pending trial is an
  exploitation point, the next suggestion is the minimiser of the posterior mean (the same descent
  from the best observations and the best candidates), so each batch holds one
  pure-exploitation point and the rest of it is spread by the Kriging believer (or liar).
  ``exploit_every=k`` also makes every k-th sequential suggestion one. A mean minimiser that
  is observed, pending or where the posterior sd is ~0 is skipped (the acquisition decides).
* Output warping (``output_warping``, default ``"yeo-johnson"``): the standardised losses are
  passed through a Yeo-Johnson power transform with its maximum-likelihood exponent before the
  GP is fit, as in HEBO (Cowen-Rivers et al., "HEBO: Pushing The Limits of Sample-Efficient
  Hyperparameter Optimisation", JAIR 2022). The transform is monotone (the incumbent and the
  ranking are kept) and tames heavy tails (log losses, MSEs, failed trials told as large
  values). Measured (benchmarks/search_quality.py, 20 seeds, 50 evaluations): Hartmann6 median
  regret 0.0011 instead of 0.0053, the mixed problem 0.013 instead of 1.0, Branin unchanged.

NNI GPTuner class arguments and Polyaxon ``bo`` settings are accepted by name through
:attr:`GPSearch.ALIASES` / :meth:`GPSearch.from_args`.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from scipy.stats import qmc

from rafiki_ray._args import POSITIVE, check_number
from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray._rng import child_seed
from rafiki_ray.searchers._acquisition import ACQUISITIONS, acquisition
from rafiki_ray.searchers._base import RafikiSearcher
from rafiki_ray.searchers._descent import descend
from rafiki_ray.searchers._gp import GP, KERNELS, single_thread
from rafiki_ray.searchers._gp_batch import TrustRegion, perturb, shifted_sobol
from rafiki_ray.searchers._gp_fit import FitSchedule
from rafiki_ray.spaces._params import Conditional, Float, Int

__all__ = ["GPSearch"]

logger = logging.getLogger(__name__)

_MAX_LEVELS = 4096
#: exploitation points with a smaller posterior sd (standardised loss units) are skipped
_MIN_EXPLOIT_SD = 1e-3
#: the acquisition's optimisation (candidates, polished rows, mean-minimiser starts) is at full
#: size up to this many observations and scaled by ``_FULL_EFFORT_N / n`` beyond: each scored
#: point costs O(n), so the cost per suggestion stays about flat (see :meth:`GPSearch._effort`)
_FULL_EFFORT_N = 50
#: default candidate count per input dim (``n_candidates=None``), and its cap
_CANDIDATES_PER_DIM, _MAX_CANDIDATES = 128, 2048
#: function evaluations of the acquisition's polish and of the posterior-mean minimiser
_POLISH_EVALS = 20
_MEAN_MIN_EVALS = 30
#: ``batch_strategy`` values: Kriging believer (default) or the base class's constant liar.
BATCH_STRATEGIES = ("believer", "liar")
#: ``output_warping`` values (``None`` is the same as ``"none"``).
OUTPUT_WARPINGS = ("yeo-johnson", "none")


class GPSearch(RafikiSearcher):
    """GP Bayesian optimisation over any rafiki_ray space (see the module docstring).

    Args:
        space, metric, mode, seed, points_to_evaluate, constant_liar_type, max_concurrent:
            as :class:`~rafiki_ray.searchers._base.RafikiSearcher`.
        acquisition: ``"ei"`` (log expected improvement), ``"ucb"`` or ``"poi"``.
        kappa: UCB exploration weight (``mu - kappa * sd`` is minimised).
        xi: EI / PI improvement margin, in units of the standardised loss.
        kernel: ``"matern"`` or ``"rbf"``; ``nu``: Matern smoothness, 0.5, 1.5 or 2.5.
        length_scale: initial lengthscale (unit-cube inputs) before the first fit.
        alpha: smallest noise variance (standardised loss units) added to the kernel diagonal.
        n_restarts: extra random restarts of the hyperparameter optimiser per fit.
        n_initial: size of the space-filling (scrambled Sobol) initial design; ``None``:
            ``3 * dims`` clipped to [10, 20] (NNI's ``cold_start_num`` default is 10; on
            Hartmann6 a 6-D design of 10 left half the seeds in a local basin, 18-20 about 3 in 10).
        n_candidates: Sobol + local candidates scored per suggestion (scaled down by
            ``50 / n`` beyond 50 observations, at least 256); ``None``: ``128 * dims`` clipped
            to [256, 2048].
        n_polish: best candidates refined by gradient descent on the continuous dims (at most twice
            their number; scaled down by ``50 / n`` beyond 50 observations, at least 2).
        n_iterations: stop (``Searcher.FINISHED``) after ``n_initial + n_iterations`` trials;
            ``None`` never stops (Polyaxon's ``n_iterations``).
        exploit_every: ``None`` (default): one posterior-mean minimiser per batch of parallel
            trials, none sequentially; ``k > 0``: also every k-th sequential model-based
            suggestion (it sharpens the incumbent: Branin median regret 5e-7 instead of 1.4e-6
            at 50 evaluations, Hartmann6 unchanged within seed noise); ``0``: never.
        batch_strategy: how pending (parallel) trials shape the next suggestion:
            ``"believer"`` (default, Kriging believer: pending points at their posterior mean,
            hyperparameters from real observations only; ``constant_liar_type`` is then
            ignored) or ``"liar"`` (constant liar at ``constant_liar_type``; with ``None``
            pending trials are ignored).
        output_warping: ``"yeo-johnson"`` (default; HEBO's power transform of the standardised
            losses before the fit) or ``"none"`` / ``None`` (standardisation only).
        trust_region: ``None`` (default): every batch suggestion searches the whole space; a
            number (0.6 measured): the initial side (unit cube, before the per-dim lengthscale
            weights) of a TuRBO-style trust region that holds the batch suggestions other than
            the one global and the one exploitation point (see the module docstring).
        refit_growth: when the hyperparameters (and the output warping's exponent) are
            re-optimised: at the first model-based suggestion, then once the real
            observations have grown by this fraction since the last fit (by at least one):
            with the default 0.125, at every new one up to 16, then at 18, 20, 22, 24, 27, 30,
            33, ... 162, 182, 204 (the earlier default, 0.0625, fit twice as often). In between, a
            suggestion only recomputes the posterior with them fixed (one
            Cholesky); the exponent is also refit when a loss beyond the range of its last
            fit arrives. It trades model freshness for driver time: ``0`` refits at every new
            observation (a full fit per suggestion, the cost grows with it); larger values fit
            at sparser (geometric) counts, so the fits' total cost stays a constant multiple
            of the last one's, and let the lengthscales lag further behind the data.
    """

    #: One table of source argument names: NNI GPTuner classArgs and Polyaxon ``bo``
    #: (``utility_function`` and ``gaussian_process`` sub-sections are flattened first).
    ALIASES: ClassVar[dict[str, str]] = {
        **RafikiSearcher.ALIASES,
        # NNI GPTuner
        "utility": "acquisition",
        "cold_start_num": "n_initial",
        "selection_num_warm_up": "n_candidates",
        "selection_num_starting_points": "n_polish",
        # Polyaxon bo
        "n_initial_trials": "n_initial",
        "acquisition_function": "acquisition",
        "eps": "xi",
        "n_warmup": "n_candidates",
        "n_iter": "n_polish",
        "n_restarts_optimizer": "n_restarts",
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
        acquisition: str = "ei",
        kappa: float = 2.576,
        xi: float = 0.0,
        kernel: str = "matern",
        nu: float = 2.5,
        length_scale: float = 0.5,
        alpha: float = 1e-10,
        n_restarts: int = 0,
        n_initial: int | None = None,
        n_candidates: int | None = None,
        n_polish: int = 8,
        n_iterations: int | None = None,
        batch_strategy: str = "believer",
        exploit_every: int | None = None,
        output_warping: str | None = "yeo-johnson",
        trust_region: float | None = None,
        refit_growth: float = 0.125,
    ) -> None:
        warp = "none" if output_warping is None else output_warping
        if warp not in OUTPUT_WARPINGS:
            raise invalid("output_warping", f"must be one of {list(OUTPUT_WARPINGS)} or None", output_warping)
        self._warp = str(warp)
        if batch_strategy not in BATCH_STRATEGIES:
            raise invalid("batch_strategy", f"must be one of {list(BATCH_STRATEGIES)}", batch_strategy)
        self._batch = str(batch_strategy)
        if acquisition not in ACQUISITIONS:
            raise invalid("acquisition", f"must be one of {list(ACQUISITIONS)}", acquisition)
        if kernel not in KERNELS:
            raise invalid("kernel", f"must be one of {list(KERNELS)}", kernel)
        nu_f = check_number("nu", nu, **POSITIVE)
        if nu_f not in (0.5, 1.5, 2.5):
            raise invalid("nu", "must be 0.5, 1.5 or 2.5", nu)
        self._acq = str(acquisition)
        self._kappa = check_number("kappa", kappa, low=0.0)
        self._xi = check_number("xi", xi, low=0.0)
        self._kernel, self._nu = str(kernel), nu_f
        self._length_scale = check_number("length_scale", length_scale, **POSITIVE)
        self._alpha = check_number("alpha", alpha, low=0.0)
        self._n_restarts = check_number("n_restarts", n_restarts, integer=True, low=0)
        self._n_initial = check_number("n_initial", n_initial, integer=True, low=1, none_ok=True)
        self._n_candidates = check_number("n_candidates", n_candidates, integer=True, low=1, none_ok=True)
        self._n_polish = check_number("n_polish", n_polish, integer=True, low=0)
        self._n_iterations = check_number("n_iterations", n_iterations, integer=True, low=0,
                                          none_ok=True)
        self._exploit_every = check_number("exploit_every", exploit_every, integer=True, low=0,
                                           none_ok=True)
        self._n_bo = 0  # model-based suggestions so far
        self._max_pending = 0  # most trials seen pending at a suggestion (parallel runs)
        self._exploit_ids: list[str] = []  # pending trials that were exploitation points
        self._global_ids: list[str] = []  # pending trials whose acquisition saw the whole space
        tr0 = check_number("trust_region", trust_region, none_ok=True, **POSITIVE)
        self._tr = None if tr0 is None else TrustRegion(tr0)
        self._sched = FitSchedule(check_number("refit_growth", refit_growth, low=0.0))
        self._gp: GP | None = None
        self._design_seed: int | None = None
        self._n_design = 0
        super().__init__(
            space, metric=metric, mode=mode, seed=seed, points_to_evaluate=points_to_evaluate,
            constant_liar_type=constant_liar_type, max_concurrent=max_concurrent,
        )

    # ------------------------------------------------------------------ argument names
    @classmethod
    def from_args(cls, args: Mapping[str, Any], **kwargs: Any) -> GPSearch:
        """Build from NNI GPTuner ``classArgs`` or a Polyaxon ``bo`` section (nested
        ``utility_function`` / ``gaussian_process`` and ``metric: {name, optimization}``
        are flattened), mapping names through :attr:`ALIASES`."""
        if not isinstance(args, Mapping):
            raise invalid_type(f"{cls.__name__}.args", "must be a mapping", args)
        flat: dict[str, Any] = {}

        def visit(d: Mapping[str, Any], path: str) -> None:
            for key, value in d.items():
                if key in ("utility_function", "gaussian_process"):
                    if not isinstance(value, Mapping):
                        raise invalid_type(f"{path}{key}", "must be a mapping", value)
                    visit(value, f"{path}{key}.")
                elif key == "metric" and isinstance(value, Mapping):
                    if "name" not in value:
                        raise invalid(f"{path}metric", "needs a 'name'", dict(value))
                    flat["metric"] = value["name"]
                    flat["mode"] = value.get("optimization", "maximize")
                else:
                    flat[key] = value

        visit(args, "")
        out = super().from_args(flat, **kwargs)
        assert isinstance(out, GPSearch)
        return out

    # ------------------------------------------------------------------ space structure
    def _on_space(self) -> None:
        enc = self.encoder
        d = enc.n_dims
        self._kinds = np.array([dim.kind for dim in enc.dims])
        self._is_cat = self._kinds == "cat"
        self._card = enc.cardinalities()
        self._neutral = enc.neutral()
        self._parents = [(j, dim.parent, dim.parent_option) for j, dim in enumerate(enc.dims) if dim.parent is not None]
        self._levels: dict[int, np.ndarray] = {}
        self._walk(enc._plan)
        cont = ~self._is_cat
        for j in self._levels:
            cont[j] = False
        self._cont = cont  # dims refined by gradient
        self._gp = None
        self._sched.reset()
        logger.debug("GPSearch: %d dims (%d continuous)", d, int(cont.sum()))

    def _walk(self, plan: list[Any]) -> None:
        for _key, kind, sub in plan:
            if kind == "space":
                self._walk(sub)
                continue
            p, idx = sub
            if isinstance(p, Conditional):
                for s in idx[1]:
                    self._walk(s)
            elif isinstance(p, (Int, Float)) and isinstance(idx, int) and not (isinstance(p, Float) and p.q is None):
                vals = p.grid_values()
                if vals is not None and len(vals) <= _MAX_LEVELS:
                    self._levels[idx] = np.unique([p.to_unit(v) for v in vals])

    def _snap(self, X: np.ndarray) -> np.ndarray:
        """Vectorised approximation of ``encoder.round_trip``: categories rounded, integer and
        quantised dims on their levels, inactive conditional dims at the neutral constant."""
        X = np.clip(X, 0.0, 1.0) if not self._is_cat.any() else X.copy()
        for j in np.flatnonzero(self._is_cat):
            X[:, j] = np.clip(np.round(X[:, j]), 0, self._card[j] - 1)
        if self._is_cat.any():
            nc = ~self._is_cat
            X[:, nc] = np.clip(X[:, nc], 0.0, 1.0)
        for j, lev in self._levels.items():
            if len(lev) == 1:
                X[:, j] = lev[0]
                continue
            mids = 0.5 * (lev[1:] + lev[:-1])
            X[:, j] = lev[np.searchsorted(mids, X[:, j])]
        if self._parents:
            active = np.ones(X.shape, dtype=bool)
            for j, p, o in self._parents:
                active[:, j] = active[:, p] & (X[:, p] == o)
                X[~active[:, j], j] = self._neutral[j]
        return X

    def _from_unit(self, U: np.ndarray) -> np.ndarray:
        """Unit-cube points to encodings (categories by ``floor(u * n)``), snapped."""
        X = U.copy()
        for j in np.flatnonzero(self._is_cat):
            X[:, j] = np.minimum(np.floor(U[:, j] * self._card[j]), self._card[j] - 1)
        return self._snap(X)

    @property
    def n_initial(self) -> int:
        """Size of the initial design (see the ``n_initial`` argument)."""
        if self._n_initial is not None:
            return self._n_initial
        d = self.encoder.n_dims if self._space is not None else 0
        return int(min(max(10, 3 * d), 20))

    @property
    def n_fits(self) -> int:
        """Hyperparameter fits so far (see the ``refit_growth`` argument)."""
        return self._sched.n_fits

    @staticmethod
    def _effort(full: int, n_real: int, floor: int) -> int:
        """``full`` up to ``_FULL_EFFORT_N`` observations, then ``full * _FULL_EFFORT_N / n``,
        at least ``min(full, floor)``."""
        if n_real <= _FULL_EFFORT_N:
            return full
        return max(min(full, floor), full * _FULL_EFFORT_N // n_real)

    # ------------------------------------------------------------------ proposals
    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if (self._n_iterations is not None and self._space is not None
                and self.n_observations + len(self._pending)
                >= self.n_initial + self._n_iterations):
            return self.FINISHED
        return super().suggest(trial_id)

    def _propose(self, trial_id: str) -> dict[str, Any]:
        Xr, _, yr = self.model_data(with_pending=False)
        n_pending = len(self._pending)
        self._max_pending = max(self._max_pending, n_pending)
        if len(yr) < 2 or not self._design_done(len(yr), n_pending):
            return self._design_point()
        k = self._exploit_every
        self._exploit_ids = [t for t in self._exploit_ids if t in self._pending]
        exploit = k != 0 and not self._exploit_ids and (n_pending > 0 or (k is not None and self._n_bo % k == k - 1))
        self._global_ids = [t for t in self._global_ids if t in self._pending]
        # with a trust region, a batch slot searches it once one pending trial searched globally
        region = self._tr if n_pending > 0 and self._global_ids else None
        if region is not None:
            region.update(yr, self.encoder.n_dims)
        with single_thread():
            x, exploited = self._bo_point(Xr, yr, exploit=exploit, region=region)
        self._n_bo += 1
        if exploited:
            self._exploit_ids.append(trial_id)
        elif region is None:
            self._global_ids.append(trial_id)
        return self.encoder.decode(x)

    def _design_done(self, n_real: int, n_pending: int) -> bool:
        """The initial design is complete, or (parallel trials) one batch of it and at least
        half of it have results."""
        if self.n_observations + n_pending >= self.n_initial:
            return True
        return self._max_pending > 0 and n_real >= max(self._max_pending + 1, (self.n_initial + 1) // 2)

    def _design_point(self) -> dict[str, Any]:
        d = self.encoder.n_dims
        if self._design_seed is None:
            self._design_seed = child_seed(self.rng)
        i = self._n_design
        self._n_design += 1
        m = max(1, math.ceil(math.log2(max(self.n_initial, i + 1))))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            U = qmc.Sobol(d, scramble=True, seed=self._design_seed).random_base2(m)
        return self.encoder.decode(self._from_unit(U[i : i + 1])[0])

    def _bo_point(
        self, Xr: np.ndarray, yr: np.ndarray, *, exploit: bool = False,
        region: TrustRegion | None = None,
    ) -> tuple[np.ndarray, bool]:
        mean = float(yr.mean())
        std = float(yr.std()) or 1.0
        ys = (yr - mean) / std
        lies = np.zeros(0)  # constant liar losses of pending trials, in the same units as ys
        if self._batch == "liar":
            Xa, _, ya = self.model_data(with_pending=True)
            lies = (ya[len(yr) :] - mean) / std
        # hyperparameters and the warping exponent on a schedule (``refit_growth``); a batch's
        # suggestions see the same real data, so it is fitted at most once for them
        refit = self._gp is None or self._gp.theta is None or self._sched.due(len(yr))
        if self._warp == "yeo-johnson":
            ys, lies = self._sched.warp(yr, ys, lies, refit)
        if self._gp is None:
            self._gp = GP(
                self._is_cat, kind=self._kernel, nu=self._nu, min_noise=max(self._alpha, 1e-10),
                length_scale=self._length_scale, n_restarts=self._n_restarts,
            )
        gp = self._gp
        gp.fit(Xr, ys, self.rng, refit=refit)
        if refit:
            self._sched.fitted(len(yr))
        best = float(ys.min())
        if self._batch == "believer":
            Xp = self._pending_x()
            Xa = np.vstack([Xr, Xp])
            if len(Xp):
                # Kriging believer: fantasy losses = posterior mean (the mean stays, the variance
                # at and around pending points collapses); hyperparameters stay from real data
                mu_p = gp.predict(Xp)[0]
                gp.condition(Xa, np.concatenate([ys, mu_p]))
                best = min(best, float(mu_p.min()))
        elif len(lies):
            # constant liar: pending points at the liar's loss, standardised and warped as the
            # real losses (the hyperparameters and the incumbent are in those units)
            gp.condition(Xa, np.concatenate([ys, lies]))

        def acq(X: np.ndarray) -> np.ndarray:
            mu, sd = gp.predict(X)
            return acquisition(self._acq, mu, sd, best, xi=self._xi, kappa=self._kappa)[0]

        C, n_global = self._candidates(Xr, ys, gp)
        if exploit:
            # pure exploitation: the posterior mean's minimiser (the believer keeps the mean)
            k_s = min(self._effort(4, len(ys), 1), max(1, int(self._cont.sum())))
            starts = np.vstack([Xr[np.argsort(ys)[:k_s]], C[np.argsort(gp.predict(C, mean_only=True)[0])[:k_s]]])
            P = self._mean_min(gp, starts)
            mu, sd = gp.predict(P)
            Xk = np.vstack([Xr, self._pending_x()])
            for j in np.argsort(mu):
                # a point the model already knows (sd ~ 0: at or next to an observed or
                # pending point) teaches nothing: leave the choice to the acquisition
                if sd[j] > _MIN_EXPLOIT_SD and not self._is_known(P[j : j + 1], Xk)[0]:
                    return P[j], True
        bounds = None
        if region is not None:
            # a batch slot inside the trust region around the incumbent (._gp_batch)
            C, lo, hi = region.candidates(
                Xr[int(np.argmin(ys))], gp.lengthscales, self._is_cat, self._card, max(2, len(C) // 2), self.rng
            )
            C, n_global, bounds = self._snap(C), 0, (lo, hi)
        a = acq(C)
        n_polish = min(self._effort(self._n_polish, len(ys), 2), 2 * int(self._cont.sum()))
        if self._cont.any() and n_polish:
            # polish the best global and the best local candidates (half each)
            k_g = (n_polish + 1) // 2 if n_global else 0
            idx = np.argsort(-a[:n_global])[:k_g]
            idx = np.concatenate([idx, n_global + np.argsort(-a[n_global:])[: n_polish - k_g]])
            P = self._polish(C[idx], gp, best, bounds)
            C, a = np.vstack([C, P]), np.concatenate([a, acq(P)])
        # never re-propose a known point (observed or pending)
        for j in np.argsort(-a)[:64]:
            if np.isfinite(a[j]) and not self._is_known(C[j : j + 1], Xa)[0]:
                return C[j], False
        return self.encoder.sample_vector(self.rng), False  # (tiny finite space, all known)

    def _pending_x(self) -> np.ndarray:
        """Encodings of the pending configurations, shape ``(n_pending, n_dims)``."""
        d = self.encoder.n_dims
        xs = [self.encoder.encode(c)[0] for c in self._pending.values()]
        return np.array(xs, dtype=float).reshape(len(xs), d)

    def _is_known(self, C: np.ndarray, Xa: np.ndarray) -> np.ndarray:
        if not len(Xa):
            return np.zeros(len(C), dtype=bool)
        diff = np.abs(C[:, None, :] - Xa[None, :, :]).max(-1)
        return (diff < 1e-9).any(1)

    def _candidates(self, Xr: np.ndarray, ys: np.ndarray, gp: GP) -> np.ndarray:
        d = Xr.shape[1]
        m = self._effort(self._n_candidates or min(_MAX_CANDIDATES, max(256, _CANDIDATES_PER_DIM * d)), len(Xr), 256)
        n_global = max(1, m // 2)
        G = self._from_unit(shifted_sobol(d, n_global, self.rng))
        n_local = m - n_global
        if n_local <= 0:
            return G, n_global
        # perturb the best observations; rank-weighted so the incumbent gets the most
        k = min(5, len(ys))
        top = np.argsort(ys)[:k]
        weights = 1.0 / np.arange(1, k + 1)
        centers = Xr[top[self.rng.choice(k, size=n_local, p=weights / weights.sum())]]
        ls = np.minimum(gp.lengthscales, 1.0)
        L = perturb(centers, ls, 0.5, self._is_cat, self._card, self.rng)
        return np.vstack([G, self._snap(L)]), n_global

    def _mean_min(self, gp: GP, starts: np.ndarray) -> np.ndarray:
        """Minimisers of the posterior mean from ``starts``, snapped."""
        return self._minimise_rows(starts, lambda X0: gp.local(X0, self._cont, with_sd=False), evals=_MEAN_MIN_EVALS)

    def _polish(
        self, starts: np.ndarray, gp: GP, best: float, bounds: tuple[np.ndarray, np.ndarray] | None = None
    ) -> np.ndarray:
        """Maximisers of the acquisition from ``starts`` (inside ``bounds``: ``(lo, hi)``
        per dim, default the unit cube), snapped."""

        def make(X0: np.ndarray) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
            post = gp.local(X0, self._cont)

            def neg_acq(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                mu, sd, dmu, dsd = post(Z)
                a, da_mu, da_sd = acquisition(self._acq, mu, sd, best, xi=self._xi, kappa=self._kappa)
                return -a, -(da_mu[:, None] * dmu + da_sd[:, None] * dsd)

            return neg_acq

        return self._minimise_rows(starts, make, evals=_POLISH_EVALS, bounds=bounds)

    def _minimise_rows(
        self,
        starts: np.ndarray,
        make: Callable[[np.ndarray], Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]],
        *,
        evals: int,
        bounds: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """Batched descent (:func:`._descent.descend`) on the continuous dims: each row of
        ``starts`` descends ``make(starts)`` (a function of the continuous dims' values, shape
        ``(rows, n_cont)``, returning per-row values and their gradients on those dims)
        independently, with at most ``evals`` calls; snapped."""
        cont = self._cont
        if not cont.any():
            return self._snap(starts)
        nc = int(cont.sum())
        lo, hi = (np.zeros(nc), np.ones(nc)) if bounds is None else (bounds[0][cont], bounds[1][cont])
        out = starts.copy()
        out[:, cont] = descend(make(starts), starts[:, cont], lo, hi, evals=evals)
        return self._snap(out)

    # ------------------------------------------------------------------ state
    def _get_extra_state(self) -> dict[str, Any]:
        theta = None if self._gp is None or self._gp.theta is None else [float(t) for t in self._gp.theta]
        options = {
            "acquisition": self._acq, "kappa": self._kappa, "xi": self._xi, "kernel": self._kernel,
            "nu": self._nu, "length_scale": self._length_scale, "alpha": self._alpha,
            "n_restarts": self._n_restarts, "n_initial": self._n_initial,
            "n_candidates": self._n_candidates, "n_polish": self._n_polish, "n_iterations": self._n_iterations,
            "batch_strategy": self._batch, "exploit_every": self._exploit_every,
            "output_warping": self._warp,
            "trust_region": None if self._tr is None else self._tr.length0,
            "refit_growth": self._sched.growth,
        }
        return {
            "theta": theta, "schedule": self._sched.get_state(),
            "design_seed": self._design_seed, "n_design": self._n_design, "n_bo": self._n_bo,
            "max_pending": self._max_pending, "exploit_ids": list(self._exploit_ids), "options": options,
            "global_ids": list(self._global_ids),
            "trust_region": None if self._tr is None else self._tr.get_state(),
        }

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        o = state.get("options")
        if o:
            self._acq, self._kappa, self._xi = o["acquisition"], o["kappa"], o["xi"]
            self._kernel, self._nu, self._length_scale = o["kernel"], o["nu"], o["length_scale"]
            self._alpha, self._n_restarts, self._n_initial = o["alpha"], o["n_restarts"], o["n_initial"]
            self._n_candidates, self._n_polish = o["n_candidates"], o["n_polish"]
            self._n_iterations = o["n_iterations"]
            self._batch = o.get("batch_strategy", "liar")
            self._exploit_every = o.get("exploit_every", 0)
            self._warp = o.get("output_warping", "none")  # states written before the option: none
            tr0 = o.get("trust_region")  # states written before the option: none
            self._tr = None if tr0 is None else TrustRegion(tr0)
            self._sched.growth = float(o.get("refit_growth", 0.0))  # states written before: every time
        self._design_seed = state.get("design_seed")
        self._n_design = int(state.get("n_design", 0))
        self._n_bo = int(state.get("n_bo", 0))
        self._max_pending = int(state.get("max_pending", 0))
        self._exploit_ids = [str(t) for t in state.get("exploit_ids", [])]
        self._global_ids = [str(t) for t in state.get("global_ids", [])]
        if self._tr is not None and state.get("trust_region") is not None:
            self._tr.set_state(state["trust_region"])
        self._gp = None
        self._sched.set_state(state.get("schedule"))
        if state.get("theta") is not None and self._space is not None:
            self._gp = GP(
                self._is_cat, kind=self._kernel, nu=self._nu, min_noise=max(self._alpha, 1e-10),
                length_scale=self._length_scale, n_restarts=self._n_restarts,
            )
            self._gp.theta = np.asarray(state["theta"], dtype=float)
