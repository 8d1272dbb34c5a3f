"""When :class:`~rafiki_ray.searchers.GPSearch` re-optimises its GP's hyperparameters and its
output warping (a Yeo-Johnson power transform of the standardised losses), as plain state.

Refitting the hyperparameters (L-BFGS-B on the marginal likelihood, O(n^3) per step) at every
suggestion made the searcher's driver cost grow with the observations: +155 % wall per trial
against vanilla Tune in ``benchmarks/overhead.py`` (200 trials). :class:`FitSchedule` refits at
geometric observation counts (``growth``) and in between the posterior is only recomputed
with the hyperparameters fixed.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import numpy as np
from scipy.optimize import fminbound

__all__ = ["FitSchedule"]

logger = logging.getLogger("rafiki_ray.searchers.gp")


def _yj_halves(lp: np.ndarray, ln: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """The Yeo-Johnson transform with exponent ``lam`` of the non-negative and the negative
    values, given ``lp = log1p(x)`` of the first and ``ln = log1p(-x)`` of the second."""
    eps = np.finfo(float).eps
    return (lp if abs(lam) < eps else np.expm1(lam * lp) / lam,
            -ln if abs(lam - 2) < eps else -np.expm1((2 - lam) * ln) / (2 - lam))


def _yj_transform(x: np.ndarray, lam: float) -> np.ndarray:
    """The Yeo-Johnson transform of ``x`` with exponent ``lam`` (as ``scipy.stats.yeojohnson``
    with a given ``lmbda``, without its array-API dispatch: it runs at every suggestion)."""
    out = np.empty_like(x, dtype=float)
    pos = x >= 0
    out[pos], out[~pos] = _yj_halves(np.log1p(x[pos]), np.log1p(-x[~pos]), lam)
    return out


def _yj_normmax(x: np.ndarray) -> float:
    """Maximum-likelihood Yeo-Johnson exponent of ``x``: ``scipy.stats.yeojohnson_normmax``
    (scipy 1.17: the same bounds, ``fminbound`` and tolerance) with a log-likelihood whose
    ``log1p`` terms are computed once; scipy's costs about 0.7 ms per evaluation in argument
    checks, and a fit takes about 20 evaluations."""
    if np.all(x == 0):
        return 1.0
    eps = np.finfo(float).eps
    log1p_max_x = np.log1p(20 * np.max(np.abs(x)))
    log_eps = np.log(eps)
    lb = (np.log(np.finfo(float).tiny) - log_eps) / 2 / log1p_max_x
    ub = (np.log(np.finfo(float).max) + log_eps) / 2 / log1p_max_x
    if np.all(x < 0):
        lb, ub = 2 - ub, 2 - lb
    elif np.any(x < 0):
        lb, ub = max(2 - ub, lb), min(2 - lb, ub)
    pos = x >= 0
    lp, ln = np.log1p(x[pos]), np.log1p(-x[~pos])
    n, s = len(x), float(lp.sum() - ln.sum())  # sum(sign(x) * log1p(|x|))
    tiny = np.finfo(float).smallest_normal
    out = np.empty(n)
    k = len(lp)

    def neg_llf(lam: float) -> float:
        out[:k], out[k:] = _yj_halves(lp, ln, lam)
        var = float(out.var())
        if not var >= tiny:  # scipy: log-likelihood +inf (zero variance) is rejected
            return np.inf
        llf = -n / 2 * np.log(var) + (lam - 1) * s
        return np.inf if np.isinf(llf) else -llf

    return float(fminbound(neg_llf, lb, ub, xtol=1.48e-08))


def _yeo_johnson(ys: np.ndarray) -> np.ndarray:
    """Standardised Yeo-Johnson transform of standardised losses (MLE exponent); the identity
    when there are fewer than 3 distinct values or the fit is not finite."""
    return _yeo_johnson_with(ys, np.zeros(0))[0]


def _yeo_johnson_with(
    ys: np.ndarray, extra: np.ndarray, lam: float | None | str = "fit"
) -> tuple[np.ndarray, np.ndarray, float | None]:
    """:func:`_yeo_johnson` of ``ys``, and ``extra`` (values in the same units, e.g. constant
    liar losses) through the same exponent and standardisation; both unchanged where
    :func:`_yeo_johnson` is the identity. ``lam``: ``"fit"`` estimates the exponent, a number
    uses that one, ``None`` is the identity. Returns the two arrays and the exponent used
    (``None``: the identity)."""
    if lam is None or len(np.unique(ys)) < 3:
        return ys, extra, None
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if lam == "fit":
            lam = _yj_normmax(ys) if np.all(np.isfinite(ys)) else float("nan")
        w = _yj_transform(ys, float(lam))
        we = _yj_transform(extra, float(lam)) if len(extra) else extra
    sd = float(np.std(w))
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(we)) and sd > 0):
        logger.debug("output warping skipped: Yeo-Johnson fit not finite for %d losses", len(ys))
        return ys, extra, None
    return (w - w.mean()) / sd, (we - w.mean()) / sd, float(lam)


class FitSchedule:
    """Refit decisions and their state: ``growth`` is ``GPSearch``'s ``refit_growth``."""

    def __init__(self, growth: float) -> None:
        self.growth = float(growth)
        self.reset()

    def reset(self) -> None:
        self.fit_n: int | None = None  # real observations at the last hyperparameter fit
        self.warp_n: int | None = None  # real observations at the exponent's last fit
        self.lam: float | None = None  # Yeo-Johnson exponent of its last fit (None: identity)
        self.n_fits = 0  # hyperparameter fits so far

    def due(self, n_real: int) -> bool:
        """Re-optimise the hyperparameters at ``n_real`` real observations: the first fit,
        or ``max(1, floor(growth * n))`` new ones since the last (at ``n``)."""
        if self.fit_n is None:
            return True
        return n_real - self.fit_n >= max(1, math.floor(self.growth * self.fit_n))

    def fitted(self, n_real: int) -> None:
        self.fit_n, self.n_fits = n_real, self.n_fits + 1

    def warp(
        self, yr: np.ndarray, ys: np.ndarray, extra: np.ndarray, refit: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """``ys`` (the standardised real losses ``yr``) and ``extra`` through the exponent of
        the last fit, re-estimated with the hyperparameters (``refit``) and whenever a loss
        beyond the range of its last fit has arrived (a new best, a failed trial's huge
        loss: the old exponent would not tame it)."""
        n_w = self.warp_n
        grew = n_w is None or (
            len(yr) > n_w and (yr[n_w:].min() < yr[:n_w].min() or yr[n_w:].max() > yr[:n_w].max())
        )
        ys, extra, self.lam = _yeo_johnson_with(ys, extra, "fit" if refit or grew else self.lam)
        if refit or grew:
            self.warp_n = len(yr)
        return ys, extra

    def get_state(self) -> dict[str, Any]:
        return {"fit_n": self.fit_n, "warp_n": self.warp_n, "lam": self.lam, "n_fits": self.n_fits}

    def set_state(self, state: dict[str, Any] | None) -> None:
        """From :meth:`get_state`; ``None`` (a state saved before the schedule): refit next."""
        self.reset()
        if state:
            self.fit_n = None if state["fit_n"] is None else int(state["fit_n"])
            self.warp_n = None if state["warp_n"] is None else int(state["warp_n"])
            self.lam = None if state["lam"] is None else float(state["lam"])
            self.n_fits = int(state["n_fits"])
