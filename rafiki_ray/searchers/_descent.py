"""Batched projected gradient descent in a box, for :class:`~rafiki_ray.searchers.GPSearch`'s
acquisition polish and posterior-mean minimiser.

Each row of a batch descends its own function independently: projected steps along the
negative gradient with Barzilai-Borwein step sizes (Barzilai & Borwein, "Two-Point Step Size
Gradient Methods", IMA J. Numer. Anal. 1988) and, where a step does not decrease the value
enough (Armijo's test on the projected step), a step four times shorter at the next iteration.
One batched function call per iteration and no per-call wrapping: scipy's L-BFGS-B on the
stacked rows spent more time in its Python wrappers than in the GP's arithmetic (about 0.15 of
0.3 ms per call at 200 observations).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["descend"]

#: Armijo's sufficient-decrease constant and the first step's reach (a fraction of the box)
_ARMIJO, _FIRST_REACH = 1e-4, 0.1


def descend(
    fn: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    z0: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    *,
    evals: int,
    tol: float = 1e-9,
    gtol: float = 1e-6,
    ftol: float = 1e-9,
) -> np.ndarray:
    """Minimise each row of ``z0`` (shape ``(rows, dims)``) inside ``[lo, hi]`` (per dim, or per
    row and dim) with at most ``evals`` calls of ``fn``, which maps the rows to their values
    (shape ``(rows,)``) and gradients (the rows' shape). A row stops once its projected
    gradient is below ``gtol`` (max norm), its step moves it by less than ``tol``, or an
    accepted step gains less than ``ftol * (1 + |value|)``; no row ends worse than it started."""
    z = np.clip(np.asarray(z0, dtype=float), lo, hi)
    v, g = fn(z)
    v, g = np.asarray(v, dtype=float).copy(), np.asarray(g, dtype=float).copy()
    step = _FIRST_REACH / np.maximum(np.abs(g).max(1), 1e-12)
    active = np.isfinite(v) & np.isfinite(g).all(1)
    for _ in range(evals - 1):
        # stationary in the box (the projected gradient vanishes), or the step no longer moves
        active &= np.abs(np.clip(z - g, lo, hi) - z).max(1) > gtol
        zn = np.clip(z - step[:, None] * g, lo, hi)
        d = zn - z
        active &= np.abs(d).max(1) > tol
        if not active.any():
            break
        vn, gn = fn(np.where(active[:, None], zn, z))
        ok = active & np.isfinite(vn) & np.isfinite(gn).all(1) & (vn <= v + _ARMIJO * (g * d).sum(1))
        if ok.any():
            # a row whose accepted step gains almost nothing has converged
            active[ok] &= v[ok] - vn[ok] > ftol * (1.0 + np.abs(v[ok]))
            s, y = d[ok], gn[ok] - g[ok]
            sy, ss = (s * y).sum(1), (s * s).sum(1)
            # Barzilai-Borwein's first step size where the curvature is positive, else longer
            step[ok] = np.clip(np.where(sy > 0, ss / np.where(sy > 0, sy, 1.0), 4.0 * step[ok]), 1e-12, 1e12)
            z[ok], v[ok], g[ok] = zn[ok], vn[ok], gn[ok]
        step[active & ~ok] *= 0.25
    return z
