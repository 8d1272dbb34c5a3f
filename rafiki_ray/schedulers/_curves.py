"""Learning-curve extrapolation for :class:`~rafiki_ray.schedulers.CurveFitting`.

Domhan, Springenberg & Hutter, "Speeding up Automatic Hyperparameter Optimization of Deep
Neural Networks by Extrapolation of Learning Curves", IJCAI 2015, in the reduced form NNI's
Curvefitting assessor uses: 12 parametric families fitted by least squares on ``x = 1..n``,
a filter on the fits, and a short Metropolis chain over the ensemble weights.

Everything here is a pure function of its inputs (the history, the target position and a
``numpy.random.Generator``): no module-level fit state, unlike NNI, whose fitted parameters live
in module globals shared by all trials (and whose failed fits silently reuse another trial's
parameters). The only module-level data are constant basis tables (see ``_Bases``).

Differences from NNI's code, on purpose:

* Speed: NNI runs 12 ``scipy.optimize.curve_fit`` calls per assessment (tens of ms). Here each
  family is written ``c0 + c1 g(x; theta)``; the coefficients are solved in closed form for
  every ``theta`` of a fixed log-spaced grid and the best grid point is kept (variable
  projection over a grid). The families and the least-squares criterion are NNI's; the
  nonlinear parameters are resolved to the grid (``vap`` is fitted in log space). A full
  fit + MCMC takes about a millisecond.

* ``ilog2`` is ``c - a / log(x + 1)``: NNI's ``c - a / log(x)`` is infinite at ``x = 1`` so it
  can never be fitted there.
* A failed fit drops the family from the ensemble (NNI reuses stale global parameters).
* The likelihood is the proper Gaussian with ``sigma^2 = MSE`` of the combined curve, in log
  space (NNI multiplies densities with ``sqrt(2 pi sqrt(sigma^2))`` in the normaliser).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "CURVES",
    "MIN_CURVES",
    "N_CHAINS",
    "N_STEPS",
    "STEP_SIZE",
    "Prediction",
    "fit_curves",
    "predict",
]

N_CHAINS = 10  # NNI NUM_OF_INSTANCE
N_STEPS = 20  # NNI NUM_OF_SIMULATION_TIME
STEP_SIZE = 0.0005  # NNI STEP_SIZE
MIN_CURVES = 4  # NNI LEAST_FITTED_FUNCTION


# ------------------------------------------------------------------------------ the families
# Every family is written as ``c0 + c1 * g(x; theta)`` (or ``c1 * g`` without ``c0``): the
# coefficients enter linearly, so for each candidate ``theta`` of a fixed grid the least-squares
# fit is closed-form (variable projection, Golub & Pereyra 1973); the best grid point wins.
# The bases ``g`` over ``x = 1..N`` are constants computed once (with prefix sums), so a fit of
# all 12 families costs a few matrix-vector products instead of 12 iterative ``curve_fit`` runs.
# ``vap`` (``exp(a + b/x + c log x)``) is fitted by linear least squares in log space.


def _grid2(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    aa, bb = np.meshgrid(a, b, indexing="ij")
    return aa.ravel(), bb.ravel()


_LOG = np.logspace
_P_POW3 = (_LOG(-2, 1, 64),)
_P_POW4 = _grid2(np.array([-0.9, -0.5, 0.0, 0.5, 1, 2, 4, 8, 16, 32, 64, 128]), _LOG(-2, 1, 24))
_P_HILL = _grid2(_LOG(-1, 1, 24), _LOG(-1, 3, 24))  # eta, kappa
_P_LOGPOW = _grid2(_LOG(-1, 3, 24), -_LOG(-1, 1, 24))  # exp(b), c < 0
_P_MMF = _grid2(_LOG(-3, 1, 24), _LOG(-1, 1, 24))  # kappa, delta
_P_EXP4 = _grid2(_LOG(-3, 1, 24), _LOG(-1.5, 0.5, 24))  # a, alpha
_P_WEIB = _grid2(_LOG(-3, 1, 24), _LOG(-1, 1, 24))  # kappa, delta
_P_JANO = _grid2(_LOG(-3, 1, 24), _LOG(-1.5, 1, 24))  # k, delta


def _g(name: str, x: np.ndarray) -> np.ndarray:
    """Basis values ``g(x; theta)`` for every grid candidate: shape (candidates, len(x))."""
    x = x[None, :]
    with np.errstate(all="ignore"):
        if name == "pow3":
            return x ** (-_P_POW3[0][:, None])
        if name == "linear":
            return x
        if name == "logx_linear":
            return np.log(x)
        if name == "ilog2":
            return 1.0 / np.log(x + 1.0)
        if name == "pow4":
            s, al = _P_POW4
            return (x + s[:, None]) ** (-al[:, None])
        if name == "dr_hill_zero_background":
            eta, kap = _P_HILL
            xe = x ** eta[:, None]
            return xe / (kap[:, None] ** eta[:, None] + xe)
        if name == "log_power":
            eb, c = _P_LOGPOW
            return 1.0 / (1.0 + (x / eb[:, None]) ** c[:, None])
        if name == "mmf":
            kap, de = _P_MMF
            return 1.0 / (1.0 + (kap[:, None] * x) ** de[:, None])
        if name == "exp4":
            a, al = _P_EXP4
            return np.exp(-a[:, None] * x ** al[:, None])
        if name == "weibull":
            kap, de = _P_WEIB
            return np.exp(-((kap[:, None] * x) ** de[:, None]))
        if name == "janoschek":
            k, de = _P_JANO
            return np.exp(-k[:, None] * x ** de[:, None])
    raise KeyError(name)  # pragma: no cover


#: family -> whether it has the free offset ``c0`` (NNI's order; ``vap`` is special)
CURVES: dict[str, bool] = {
    "vap": True, "pow3": True, "linear": True, "logx_linear": True,
    "dr_hill_zero_background": False, "log_power": False, "pow4": True, "mmf": True,
    "exp4": True, "ilog2": True, "weibull": True, "janoschek": True,
}


class _Bases:
    """Constant bases of all grid families over ``x = 1..N``, stacked (candidates, N), with
    prefix sums; grown on demand. Constants only: never fit state."""

    def __init__(self) -> None:
        self.names = [k for k in CURVES if k != "vap"]
        self.n = 0
        self.g = np.zeros((0, 0))
        self.cg = np.zeros((0, 0))
        self.cgg = np.zeros((0, 0))
        self.starts = np.zeros(0, dtype=int)
        self.offset = np.zeros(0, dtype=bool)
        self.target: dict[float, np.ndarray] = {}

    def _stack(self, x: np.ndarray) -> np.ndarray:
        blocks = [np.broadcast_to(_g(k, x), (_g(k, x[:1]).shape[0], len(x))) for k in self.names]
        return np.concatenate(blocks, axis=0)

    def ensure(self, n: int) -> None:
        if n <= self.n:
            return
        size = max(64, 1 << (n - 1).bit_length())
        x = np.arange(1, size + 1, dtype=float)
        with np.errstate(all="ignore"):
            g = self._stack(x)
        g = np.where(np.isfinite(g), g, np.nan)
        sizes = [_g(k, x[:1]).shape[0] for k in self.names]
        self.starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
        self.offset = np.repeat([CURVES[k] for k in self.names], sizes)
        z = np.zeros((g.shape[0], 1))
        self.g = np.ascontiguousarray(g)
        self.cg = np.concatenate([z, np.cumsum(g, axis=1)], axis=1)
        self.cgg = np.concatenate([z, np.cumsum(g * g, axis=1)], axis=1)
        self.n = size

    def at(self, target: float) -> np.ndarray:
        key = float(target)
        v = self.target.get(key)
        if v is None:
            if len(self.target) > 1024:
                self.target.clear()
            with np.errstate(all="ignore"):
                v = self._stack(np.array([key]))[:, 0]
            self.target[key] = v
        return v


_BASES = _Bases()


def fit_curves(y: Sequence[float], target: float) -> dict[str, tuple[np.ndarray, float]]:
    """Least-squares fit of every family to ``y`` at ``x = 1..n``.

    Returns ``name -> (values at x = 1..n, value at target)`` for the families whose fit is
    finite (a family that cannot be fitted, e.g. ``vap`` to non-positive values, is omitted).
    """
    yv = np.asarray(y, dtype=float)
    n = len(yv)
    out: dict[str, tuple[np.ndarray, float]] = {}
    if n < 2:
        return out
    B = _BASES
    B.ensure(n)
    x = np.arange(1, n + 1, dtype=float)
    sy, syy = float(yv.sum()), float(yv @ yv)
    with np.errstate(all="ignore"):
        if np.all(yv > 0):  # vap: log y = a + b / x + c log x
            A = np.stack([np.ones(n), 1.0 / x, np.log(x)], axis=1)
            coef, *_ = np.linalg.lstsq(A, np.log(yv), rcond=None)
            vals = np.exp(A @ coef)
            at = float(np.exp(coef[0] + coef[1] / target + coef[2] * math.log(target)))
            if np.all(np.isfinite(vals)) and math.isfinite(at):
                out["vap"] = (vals, at)
        g = B.g[:, :n]
        sg, sgg = B.cg[:, n], B.cgg[:, n]
        sgy = g @ yv
        # with offset: [c0, c1] from the 2x2 normal equations; without: c1 = sgy / sgg
        den = np.where(B.offset, n * sgg - sg * sg, sgg)
        c1 = np.where(B.offset, n * sgy - sg * sy, sgy) / den
        c0 = np.where(B.offset, (sy - c1 * sg) / n, 0.0)
        sse = syy - c0 * sy - c1 * sgy
        gt = B.at(target)
        at_t = c0 + c1 * gt
        bad = ~(np.isfinite(sse) & np.isfinite(at_t)) | (np.abs(den) <= 1e-12)
        sse = np.where(bad, np.inf, sse)
        ends = list(B.starts[1:]) + [len(sse)]
        for name, lo, hi in zip(B.names, B.starts, ends):
            i = lo + int(np.argmin(sse[lo:hi]))
            if not math.isfinite(sse[i]):
                continue
            vals = c0[i] + c1[i] * g[i]
            if np.all(np.isfinite(vals)):
                out[name] = (vals, float(at_t[i]))
    return out


class Prediction:
    """Outcome of :func:`predict`: the value (None when too few curves survive) and details."""

    __slots__ = ("bound", "curves", "value", "weights")

    def __init__(self, value: float | None, curves: Sequence[str], weights: np.ndarray | None,
                 bound: bool = False):
        self.value = value
        self.curves = list(curves)
        self.weights = weights
        self.bound = bound

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Prediction(value={self.value!r}, curves={self.curves})"


def predict(
    y: Sequence[float],
    target: float,
    rng: np.random.Generator,
    *,
    n_chains: int = N_CHAINS,
    n_steps: int = N_STEPS,
    step_size: float = STEP_SIZE,
    min_curves: int = MIN_CURVES,
    bar: float | None = None,
) -> Prediction:
    """Ensemble prediction at ``target`` of a curve ``y`` (higher is better).

    With ``bar``, only the comparison ``prediction <= bar`` is needed: when the kept curves'
    target values all lie on one side of it, the chains are skipped and ``value`` is the
    bound that decides (``bound=True``), with no random draws.

    1. fit every family (:func:`fit_curves`); keep fits whose squared error is below
       ``n * mean(y)^2`` and whose value at ``target`` lies within ``median +- (n/10) std``
       of those fits' values at the last observed step ``x = n`` (NNI's rules: only fits that
       say the curve has converged take part);
    2. fewer than ``min_curves`` left: ``value=None`` (not converged or no agreement: no
       judgement);
    3. Metropolis over the weights: ``n_chains`` chains start from equal weights and take
       ``n_steps`` Gaussian steps of ``step_size`` (renormalised to sum 1); the log posterior is
       the Gaussian log likelihood with ``sigma^2 = MSE`` plus a prior that is zero unless every
       weight is > 0 and the combined curve rises from ``x = 1`` to ``target``;
    4. the prediction is the mean over chains of the combined curve at ``target``.
    """
    yv = np.asarray(y, dtype=float)
    n = len(yv)
    fits = fit_curves(yv, target)
    if not fits:
        return Prediction(None, [], None)
    names = list(fits)
    vals = np.array([np.append(v, at) for v, at in fits.values()])
    fit, at_target = vals[:, :n], vals[:, n]
    sse = ((fit - yv) ** 2).sum(axis=1)
    keep = sse < n * float(yv.mean()) ** 2
    if keep.sum() == 0:
        return Prediction(None, [], None)
    # NNI's convergence filter: the median and std are those of the fits' values at the LAST
    # observed step; a fit survives if its value at the target stays within (n/10) std of that
    # median, i.e. if it predicts the curve has (nearly) converged
    at_last = fit[keep, n - 1]
    med, std = float(np.median(at_last)), float(np.std(at_last))
    eps = n / 10.0 * std
    keep &= (at_target > med - eps) & (at_target < med + eps)
    k = int(keep.sum())
    if k < min_curves:
        return Prediction(None, [n_ for n_, kp in zip(names, keep) if kp], None)
    F = vals[keep]  # (k, n + 1)
    chosen = [n_ for n_, kp in zip(names, keep) if kp]
    if bar is not None:
        # every chain's weights stay positive and sum to 1, so the prediction is a convex
        # combination of the kept curves' target values: when all of them lie on one side of
        # ``bar`` the chains cannot change the decision and are not run (value = that bound)
        low, high = float(F[:, n].min()), float(F[:, n].max())
        if high <= bar:
            return Prediction(high, chosen, None, bound=True)
        if low > bar:
            return Prediction(low, chosen, None, bound=True)

    # sum of squared errors of w @ F as a quadratic form: no pass over the n points per step
    Fn = F[:, :n]
    AA, bb, cc = Fn @ Fn.T, Fn @ yv, float(yv @ yv)
    ends = F[:, [0, n]]  # the combined curve at x = 1 and at the target

    def log_post(w: np.ndarray) -> np.ndarray:
        mse = np.maximum((((w @ AA) * w).sum(axis=1) - 2 * (w @ bb) + cc) / n, 1e-300)
        e = w @ ends
        ok = (w.min(axis=1) > 0) & (e[:, 0] < e[:, 1])
        return np.where(ok, -0.5 * n * (np.log(2 * math.pi * mse) + 1.0), -np.inf)

    w = np.full((n_chains, k), 1.0 / k)
    lp = log_post(w)
    steps = rng.standard_normal((n_steps, n_chains, k)) * step_size  # all draws at once
    log_u = np.log(np.maximum(rng.random((n_steps, n_chains)), 1e-300))
    for s_ in range(n_steps):
        prop = w + steps[s_]
        prop /= prop.sum(axis=1, keepdims=True)
        lp_new = log_post(prop)
        # Metropolis: accept with probability min(1, p_new / p_old); from a zero-prior state
        # any proposal with a positive posterior is accepted (NNI: ratio x / 0 = inf)
        with np.errstate(invalid="ignore"):
            accept = (log_u[s_] < lp_new - lp) | (np.isneginf(lp) & ~np.isneginf(lp_new))
        w = np.where(accept[:, None], prop, w)
        lp = np.where(accept, lp_new, lp)
    value = float((w @ F[:, n]).mean())
    if not math.isfinite(value):
        return Prediction(None, chosen, w)
    return Prediction(value, chosen, w)
