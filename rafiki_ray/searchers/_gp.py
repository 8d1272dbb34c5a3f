"""Exact Gaussian-process regression in numpy/scipy for :class:`~rafiki_ray.searchers.GPSearch`.

* Kernels: Matern (nu = 0.5, 1.5, 2.5) and RBF (squared exponential) with one inverse squared
  lengthscale per input (ARD), a signal variance and a noise variance (Rasmussen & Williams,
  *Gaussian Processes for Machine Learning*, 2006, ch. 4).
* Numeric inputs live in [0, 1]; categorical inputs hold an index and contribute a Hamming
  term (``[x_i != x'_i]`` instead of ``(x_i - x'_i)**2``) to the scaled squared distance.
* Hyperparameters maximise the log marginal likelihood plus weak priors (R&W eq. 5.8-5.9),
  with analytic gradients and L-BFGS-B, warm-started from the previous fit.
* Predictions return the posterior mean and standard deviation, and their gradients with
  respect to the numeric inputs, for gradient-based acquisition optimisation
  (:meth:`GP.local`: along the continuous inputs only, the fixed inputs' share of the
  distances computed once per optimisation).
* Conditioning with fixed hyperparameters extends the last Cholesky factor by the appended
  rows (new observations, pending points) instead of rebuilding it (:meth:`GP.condition`).
* :func:`single_thread` runs BLAS on one thread: the matrices are small (hundreds of rows), and
  on a busy machine (Tune's driver beside its trials) OpenBLAS's threads wait for each other.
  Measured on 2 loaded cores, 200 observations: a hyperparameter fit 1481 ms CPU on OpenBLAS's
  2 threads, 79 ms on one; scoring 1024 candidates 29.6 ms, 10.8 ms.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.linalg import cho_solve, cholesky, solve_triangular
from scipy.optimize import minimize

__all__ = ["GP", "KERNELS", "kernel_only", "kernel_value", "single_thread"]

KERNELS = ("matern", "rbf")
_NUS = (0.5, 1.5, 2.5)
_S3, _S5 = np.sqrt(3.0), np.sqrt(5.0)

# bounds of the log hyperparameters (inputs in the unit cube, outputs standardised)
_LOGW_BOUNDS = (np.log(1e-4), np.log(1e5))  # lengthscale from ~0.003 to 100
_LOGS_BOUNDS = (np.log(1e-2), np.log(1e2))
_LOGN_MAX = np.log(1.0)
# lengthscale prior: -log p(w) = A (W0 / w + w / W0) on each inverse squared lengthscale w
_PRIOR_A, _PRIOR_W0 = 0.1, 1.0


_controller: Any = None  # threadpoolctl's ThreadpoolController, built at the first use


_CAT_EPS = 1e-12  # encoded categories closer than this are the same category


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """BLAS limited to one thread inside the block (see the module docstring; threadpoolctl
    is a runtime dependency)."""
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    with _controller.limit(limits=1, user_api="blas"):
        yield


def kernel_value(r2: np.ndarray, kind: str, nu: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit-variance correlation ``k(r2)`` and ``dk/d(r2)`` for a scaled squared distance."""
    if kind == "rbf":
        k = np.exp(-0.5 * r2)
        return k, -0.5 * k
    r = np.sqrt(np.maximum(r2, 0.0))
    if nu == 2.5:
        e = np.exp(-_S5 * r)
        return (1.0 + _S5 * r + (5.0 / 3.0) * r2) * e, -(5.0 / 6.0) * (1.0 + _S5 * r) * e
    if nu == 1.5:
        e = np.exp(-_S3 * r)
        return (1.0 + _S3 * r) * e, -1.5 * e
    e = np.exp(-r)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(r > 1e-12, -e / (2.0 * np.maximum(r, 1e-12)), 0.0)
    return e, d


def kernel_only(r2: np.ndarray, kind: str, nu: float) -> np.ndarray:
    """``kernel_value(r2, kind, nu)[0]`` computed in place in ``r2`` (which it overwrites),
    without the derivative: the candidate scoring's hot path."""
    if kind == "rbf":
        r2 *= -0.5
        return np.exp(r2, out=r2)
    np.maximum(r2, 0.0, out=r2)
    r = np.sqrt(r2)
    if nu == 2.5:
        r2 *= 5.0 / 3.0
        r *= _S5
        r2 += r
        r2 += 1.0
        np.negative(r, out=r)
        r2 *= np.exp(r, out=r)
        return r2
    if nu == 1.5:
        r *= _S3
        r2[...] = r
        r2 += 1.0
        np.negative(r, out=r)
        r2 *= np.exp(r, out=r)
        return r2
    np.negative(r, out=r)
    return np.exp(r, out=r)


@dataclass
class _Fit:
    theta: np.ndarray  # [log w (d), log signal, log noise]
    L: np.ndarray
    alpha: np.ndarray
    X: np.ndarray
    Kinv: np.ndarray | None = None
    Linv: np.ndarray | None = None  # L^-1, built at the first gradient prediction
    jitter: float = 0.0  # added to the diagonal beyond the noise (0: none was needed)


class GP:
    """A zero-mean GP on standardised targets (see module docstring).

    Args:
        is_cat: boolean mask of categorical inputs (Hamming distance).
        kind: ``"matern"`` or ``"rbf"``; ``nu``: Matern smoothness (0.5, 1.5 or 2.5).
        min_noise: lower bound of the noise variance (NNI's ``alpha``), in standardised units.
        length_scale: the initial lengthscale of every input (Polyaxon ``length_scale``).
        n_restarts: extra random starts of the hyperparameter optimiser.
    """

    def __init__(
        self,
        is_cat: np.ndarray,
        *,
        kind: str = "matern",
        nu: float = 2.5,
        min_noise: float = 1e-6,
        length_scale: float = 0.5,
        n_restarts: int = 0,
    ) -> None:
        self.is_cat = np.asarray(is_cat, dtype=bool)
        self.kind, self.nu = kind, float(nu)
        self.min_noise = float(min_noise)
        self.length_scale = float(length_scale)
        self.n_restarts = int(n_restarts)
        self.theta: np.ndarray | None = None
        self._fit: _Fit | None = None

    # ------------------------------------------------------------------ distances
    def _sqdist_parts(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        """Per-dimension squared distances, shape (d, len(A), len(B))."""
        D = A.T[:, :, None] - B.T[:, None, :]
        D = D * D
        if self.is_cat.any():
            D[self.is_cat] = (D[self.is_cat] > _CAT_EPS).astype(float)
        return D

    def _r2(self, A: np.ndarray, B: np.ndarray, w: np.ndarray, is_cat: np.ndarray | None = None) -> np.ndarray:
        """Scaled squared distances ``sum_i w_i dist_i(a, b)``, shape (len(A), len(B)),
        by matrix products on the numeric inputs (no per-dimension tensor); ``is_cat``: the
        categorical mask of these columns (default: all inputs')."""
        is_cat = self.is_cat if is_cat is None else is_cat
        num = ~is_cat
        sw = np.sqrt(w[num])
        a, b = A[:, num] * sw, B[:, num] * sw
        r2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
        np.maximum(r2, 0.0, out=r2)
        for i in np.flatnonzero(is_cat):
            r2 += w[i] * (np.abs(A[:, i][:, None] - B[:, i][None, :]) > _CAT_EPS)
        return r2

    def default_theta(self, d: int) -> np.ndarray:
        w = 1.0 / self.length_scale**2
        return np.concatenate([np.full(d, np.log(w)), [0.0, np.log(max(1e-4, self.min_noise))]])

    def _bounds(self, d: int) -> list[tuple[float, float]]:
        lo_n = np.log(max(self.min_noise, 1e-10))
        return [_LOGW_BOUNDS] * d + [_LOGS_BOUNDS, (lo_n, max(lo_n, _LOGN_MAX))]

    # ------------------------------------------------------------------ marginal likelihood
    def _neg_log_post(self, theta: np.ndarray, D: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        d, n = D.shape[0], len(y)
        w = np.exp(theta[:d])
        s, noise = np.exp(theta[d]), np.exp(theta[d + 1])
        r2 = np.tensordot(w, D, axes=1)
        k, dk = kernel_value(r2, self.kind, self.nu)
        K = s * k
        K[np.diag_indices(n)] += noise + 1e-9
        try:
            L = cholesky(K, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            return 1e10, np.zeros_like(theta)
        alpha = cho_solve((L, True), y, check_finite=False)
        nll = 0.5 * float(y @ alpha) + float(np.log(np.diag(L)).sum()) + 0.5 * n * np.log(2 * np.pi)
        Kinv = cho_solve((L, True), np.eye(n), check_finite=False)
        W = np.outer(alpha, alpha) - Kinv  # d nll / dK = -0.5 W
        M = W * (s * dk)
        g = np.empty_like(theta)
        g[:d] = -0.5 * w * np.tensordot(D, M, axes=([1, 2], [0, 1]))
        g[d] = -0.5 * float((W * (s * k)).sum())
        g[d + 1] = -0.5 * noise * float(np.trace(W))
        # weak priors: keep inverse squared lengthscales away from 0 and infinity (a
        # log-gamma-like barrier), signal variance ~ Gamma(2, 1), noise ~ Exponential(30)
        a, w0 = _PRIOR_A, _PRIOR_W0
        nll += float((a * w0 / w + a * w / w0).sum())
        g[:d] += -a * w0 / w + a * w / w0
        nll += -(np.log(s) - s)
        g[d] += -(1.0 - s)
        nll += 30.0 * noise
        g[d + 1] += 30.0 * noise
        return nll, g

    def fit(self, X: np.ndarray, y: np.ndarray, rng: np.random.Generator | None = None, *, refit: bool = True) -> GP:
        """Fit hyperparameters on ``(X, y)`` (``y`` standardised) unless ``refit`` is false."""
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        d = X.shape[1]
        if refit or self.theta is None or len(self.theta) != d + 2:
            D = self._sqdist_parts(X, X)
            bounds = self._bounds(d)
            warm = self.theta is not None and len(self.theta) == d + 2
            starts = [self.theta] if warm else [self.default_theta(d)]
            if rng is not None:
                for _ in range(self.n_restarts):
                    t = self.default_theta(d)
                    t[:d] += rng.normal(0.0, 1.5, d)
                    starts.append(t)
            best: tuple[float, np.ndarray] | None = None
            for t0 in starts:
                t0 = np.clip(t0, [b[0] for b in bounds], [b[1] for b in bounds])
                res = minimize(
                    self._neg_log_post, t0, args=(D, y), jac=True, method="L-BFGS-B",
                    bounds=bounds, options={"maxiter": 100},
                )
                if best is None or res.fun < best[0]:
                    best = (float(res.fun), res.x)
            assert best is not None
            self.theta = best[1]
        self.condition(X, y)
        return self

    def condition(self, X: np.ndarray, y: np.ndarray) -> None:
        """Condition on ``(X, y)`` with the current hyperparameters (no refit).

        When the hyperparameters are those of the last conditioning and its inputs are a
        prefix of ``X`` (a searcher's observations only grow, and pending points come after
        them), the factor is extended by the new rows (a block Cholesky step, O(n^2 k) for k
        new rows) instead of being rebuilt (O(n^3) and the n x n kernel matrix); the
        targets may change freely (only ``alpha`` depends on them)."""
        assert self.theta is not None
        X = np.asarray(X, dtype=float)
        d, n = X.shape[1], len(X)
        f = self._fit
        m = 0
        if f is not None and f.jitter == 0.0 and np.array_equal(f.theta, self.theta) and f.X.shape[1] == d:
            m = min(len(f.X), n)
            same = (f.X[:m] == X[:m]).all(1)
            m = m if same.all() else int(np.argmin(same))
        L = self._extend(f.L[:m, :m], X, m) if f is not None and m >= 1 and n - m <= max(8, n // 4) else None
        jitter = 0.0
        if L is None:
            K = self._K(X, X)
            K[np.diag_indices(n)] += np.exp(self.theta[d + 1]) + 1e-9
            for _ in range(6):
                try:
                    L = cholesky(K + jitter * np.eye(n), lower=True, check_finite=False)
                    break
                except np.linalg.LinAlgError:
                    jitter = max(1e-8, jitter * 10)
            else:  # pragma: no cover - pathological
                raise np.linalg.LinAlgError("GP: covariance is not positive definite")
        alpha = cho_solve((L, True), y, check_finite=False)
        self._fit = _Fit(self.theta.copy(), L, alpha, X.copy(), jitter=jitter)

    def _extend(self, L11: np.ndarray, X: np.ndarray, m: int) -> np.ndarray | None:
        """The Cholesky factor of ``K(X, X) + noise`` from ``L11``, that of its first ``m``
        rows; ``None`` where the new block is not positive definite (the caller rebuilds)."""
        n, d = X.shape
        if m == n:
            return L11.copy()
        K12 = self._K(X[:m], X[m:])
        K22 = self._K(X[m:], X[m:])
        K22[np.diag_indices(n - m)] += np.exp(self.theta[d + 1]) + 1e-9
        L21 = solve_triangular(L11, K12, lower=True, check_finite=False).T
        try:
            L22 = cholesky(K22 - L21 @ L21.T, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            return None
        L = np.zeros((n, n))
        L[:m, :m], L[m:, :m], L[m:, m:] = L11, L21, L22
        return L

    def _K(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        assert self.theta is not None
        d = A.shape[1]
        r2 = np.tensordot(np.exp(self.theta[:d]), self._sqdist_parts(A, B), axes=1)
        return np.exp(self.theta[d]) * kernel_only(r2, self.kind, self.nu)

    # ------------------------------------------------------------------ prediction
    @property
    def lengthscales(self) -> np.ndarray:
        assert self.theta is not None
        return np.exp(-0.5 * self.theta[:-2])

    def predict(self, Xs: np.ndarray, *, grad: bool = False, mean_only: bool = False) -> tuple[np.ndarray, ...]:
        """Posterior mean and standard deviation at ``Xs``; with ``grad`` also
        ``dmu/dx`` and ``dsd/dx`` (shape ``(m, d)``, zero on categorical inputs); with
        ``mean_only`` (and no ``grad``) the mean alone, in a 1-tuple (no triangular solve)."""
        f = self._fit
        assert f is not None
        Xs = np.atleast_2d(np.asarray(Xs, dtype=float))
        d = Xs.shape[1]
        w = np.exp(f.theta[:d])
        s = np.exp(f.theta[d])
        if not grad:
            # many candidates: one triangular solve for all of them
            Ks = kernel_only(self._r2(Xs, f.X, w), self.kind, self.nu)
            Ks *= s
            mu = Ks @ f.alpha
            if mean_only:
                return (mu,)
            V = solve_triangular(f.L, Ks.T, lower=True, check_finite=False)  # (n, m)
            return mu, np.sqrt(np.maximum(s - (V * V).sum(0), 1e-12))
        # a few rows, many calls (gradient descent): products with a cached L^-1 instead of solves
        if f.Linv is None:
            f.Linv = solve_triangular(f.L, np.eye(len(f.X)), lower=True, check_finite=False)
        diff = Xs[:, None, :] - f.X[None, :, :]  # (m, n, d)
        D2 = diff * diff
        if self.is_cat.any():
            D2[:, :, self.is_cat] = np.abs(diff[:, :, self.is_cat]) > _CAT_EPS
        kk, dk = kernel_value(D2 @ w, self.kind, self.nu)
        Ks = s * kk  # (m, n)
        mu = Ks @ f.alpha
        V = f.Linv @ Ks.T  # (n, m)
        sd = np.sqrt(np.maximum(s - (V * V).sum(0), 1e-12))
        # dk(x, X_j)/dx_i = s * dk/dr2 * 2 w_i (x_i - X_ji)
        G = (s * dk)[:, :, None] * 2.0 * w[None, None, :] * diff
        G[:, :, self.is_cat] = 0.0
        dmu = np.einsum("mnd,n->md", G, f.alpha)
        Kinv_ks = f.Linv.T @ V  # (n, m)
        dvar = -2.0 * np.einsum("mnd,nm->md", G, Kinv_ks)
        dsd = dvar / (2.0 * sd[:, None])
        return mu, sd, dmu, dsd

    def local(self, X0: np.ndarray, vary: np.ndarray, *, with_sd: bool = True) -> Callable[..., tuple[np.ndarray, ...]]:
        """The posterior along the numeric dims ``vary`` (a boolean mask) of the rows of ``X0``,
        the other dims held at ``X0``'s values: a function of ``Z`` (shape ``(rows, n_vary)``)
        returning ``mu, dmu`` (``with_sd=False``) or ``mu, sd, dmu, dsd``, the gradients on
        the ``vary`` dims only. What does not move (the fixed dims' share of the distances,
        ``K^-1``) is computed once, so each call of a gradient optimiser costs a few small
        array operations: the same values as :meth:`predict` with ``grad=True``."""
        f = self._fit
        assert f is not None
        X0 = np.atleast_2d(np.asarray(X0, dtype=float))
        d = X0.shape[1]
        w = np.exp(f.theta[:d])
        s = float(np.exp(f.theta[d]))
        fixed = ~np.asarray(vary, dtype=bool)
        r2_fixed = np.zeros((len(X0), len(f.X)))
        if fixed.any():
            r2_fixed = self._r2(X0[:, fixed], f.X[:, fixed], w[fixed], self.is_cat[fixed])
        Xv, wv = f.X[:, vary], w[vary]
        alpha = f.alpha
        if with_sd and f.Linv is None:
            f.Linv = solve_triangular(f.L, np.eye(len(f.X)), lower=True, check_finite=False)
        Linv = f.Linv

        def fn(Z: np.ndarray) -> tuple[np.ndarray, ...]:
            diff = Z[:, None, :] - Xv[None, :, :]  # (b, n, n_vary)
            kk, dk = kernel_value(r2_fixed + (diff * diff) @ wv, self.kind, self.nu)
            ks = s * kk  # (b, n)
            sdk = (2.0 * s) * dk
            mu = ks @ alpha
            dmu = np.einsum("bn,bni->bi", sdk * alpha, diff) * wv
            if not with_sd:
                return mu, dmu
            V = ks @ Linv.T  # rows: L^-1 k
            sd = np.sqrt(np.maximum(s - (V * V).sum(1), 1e-12))
            kinv_k = V @ Linv  # rows: K^-1 k
            dvar = -2.0 * np.einsum("bn,bni->bi", sdk * kinv_k, diff) * wv
            return mu, sd, dmu, dvar / (2.0 * sd[:, None])

        return fn
