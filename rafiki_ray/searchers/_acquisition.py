"""Acquisition functions for minimisation, in log space where it matters, with gradients.

Each returns ``(a, da_dmu, da_dsd)``: the value to *maximise* at a posterior mean ``mu`` and
standard deviation ``sd``, and its partial derivatives.

* ``ei``: log expected improvement, computed stably far in the tail (Ament et al., "Unexpected
  Improvements to Expected Improvement for Bayesian Optimization", NeurIPS 2023), with
  ``xi`` the exploration margin (Jones et al. 1998; Lizotte 2008);
* ``poi``: log probability of improvement by at least ``xi`` (Kushner 1964);
* ``ucb``: the lower confidence bound ``-(mu - kappa * sd)`` (Srinivas et al., ICML 2010).
"""

from __future__ import annotations

import numpy as np
from scipy.special import erfcx, log_ndtr, ndtr

__all__ = ["ACQUISITIONS", "acquisition"]

ACQUISITIONS = ("ei", "ucb", "poi")
_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)
_SQRT_PI_2 = np.sqrt(np.pi / 2)


def _log_h(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``log(z Phi(z) + phi(z))`` and ``d/dz`` of it (``Phi(z) / h(z)``), stable for z << 0."""
    z = np.asarray(z, dtype=float)
    out = np.empty_like(z)
    ratio = np.empty_like(z)
    hi = z > -1.0
    zh = z[hi]
    h = zh * ndtr(zh) + np.exp(-0.5 * zh * zh - _LOG_SQRT_2PI)
    out[hi] = np.log(h)
    ratio[hi] = ndtr(zh) / h
    lo = ~hi
    zl = z[lo]
    # Phi(z)/phi(z) = sqrt(pi/2) erfcx(-z/sqrt(2)); h = phi(z) (1 + z Phi/phi)
    m = _SQRT_PI_2 * erfcx(-zl / np.sqrt(2.0))
    t = 1.0 + zl * m
    far = zl < -1e4
    t = np.where(far, 1.0 / (zl * zl), np.maximum(t, 1e-300))
    out[lo] = -0.5 * zl * zl - _LOG_SQRT_2PI + np.log(t)
    ratio[lo] = np.where(far, -1.0 / zl, m / t)
    return out, ratio


def acquisition(
    kind: str, mu: np.ndarray, sd: np.ndarray, best: float, *, xi: float = 0.0, kappa: float = 2.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Value (to maximise) and its derivatives with respect to ``mu`` and ``sd``."""
    if kind == "ucb":
        return -(mu - kappa * sd), -np.ones_like(mu), np.full_like(sd, kappa)
    z = (best - xi - mu) / sd
    if kind == "poi":
        a = log_ndtr(z)
        # d log Phi(z)/dz = phi(z)/Phi(z)
        dz = np.exp(-0.5 * z * z - _LOG_SQRT_2PI - a)
        return a, -dz / sd, -dz * z / sd
    if kind == "ei":
        lh, r = _log_h(z)
        a = lh + np.log(sd)
        # EI = sd h(z): dlogEI/dmu = -r/sd; dlogEI/dsd = 1/sd - r z/sd
        return a, -r / sd, (1.0 - r * z) / sd
    raise ValueError(f"acquisition: must be one of {list(ACQUISITIONS)}, got {kind!r}")
