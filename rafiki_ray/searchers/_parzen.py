"""Multivariate Parzen estimator over the shared encoding (TPE's ``l(x)`` and ``g(x)``).

A mixture with one product-kernel component per observation plus one prior component
(Bergstra et al. 2011; multivariate kernels as Falkner et al. 2018, BOHB; defaults after
Watanabe 2023, "Tree-structured Parzen estimator: understanding its algorithm components"):

* numeric dims (``real``/``int``, in [0, 1]): a Gaussian truncated to [0, 1], bandwidth
  ``scale * n ** (-1 / (d + 4))`` (Scott's rule), at least ``min_bandwidth`` and, for
  integers, half a step;
* ``cat`` dims: an Aitchison-Aitken style kernel ``(1 - lam) * onehot + lam * prior``;
* conditional dims: an observation in which a dim is inactive contributes the prior for it
  (so components from other branches neither help nor hurt), and a candidate is scored only
  on the dims its own choices activate.

The prior is uniform on [0, 1] for numeric dims (the encoding already folds log and normal
priors in) and the parameter's own category weights for ``cat`` dims.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.special import ndtr, ndtri

from rafiki_ray.spaces._encoding import Dim

__all__ = ["ParzenEstimator", "active_mask"]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_BLOCK = 16384  # elements of one m x n work array in log_pdf (128 KiB)


def active_mask(dims: Sequence[Dim], X: np.ndarray) -> np.ndarray:
    """Active mask of each row of ``X`` from its conditional choices (vectorised: parents
    always come before their children in the encoding)."""
    X = np.atleast_2d(X)
    A = np.ones(X.shape, dtype=bool)
    for j, d in enumerate(dims):
        if d.parent is not None:
            p = d.parent
            choice = np.clip(np.rint(X[:, p]), 0, dims[p].n - 1)
            A[:, j] = A[:, p] & (choice == d.parent_option)
    return A


def cat_prior(d: Dim) -> np.ndarray:
    if d.prior is not None:
        return np.asarray(d.prior, dtype=float)
    return np.full(d.n, 1.0 / d.n)


class ParzenEstimator:
    """Mixture of per-observation product kernels plus the prior.

    Args:
        dims: the encoder's dims.
        X, A: observations (``n x d`` vectors and active masks).
        weights: one non-negative weight per observation (``None``: equal).
        prior_weight: weight of the prior component, relative to one observation.
        scale: bandwidth scale of numeric kernels (times Scott's factor).
        min_bandwidth: smallest numeric bandwidth.
    """

    def __init__(
        self,
        dims: Sequence[Dim],
        X: np.ndarray,
        A: np.ndarray,
        *,
        weights: np.ndarray | None = None,
        prior_weight: float = 1.0,
        scale: float = 0.2,
        min_bandwidth: float = 0.01,
    ) -> None:
        self.dims = list(dims)
        d = len(self.dims)
        self.X = np.asarray(X, dtype=float).reshape(-1, d)
        self.A = np.asarray(A, dtype=bool).reshape(-1, d)
        n = self.X.shape[0]
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
        w = np.append(w, prior_weight)  # the last component is the prior
        self.log_w = np.log(w / w.sum())
        self.numeric = np.array([dm.kind != "cat" for dm in self.dims], dtype=bool)
        self.cat_idx = [j for j, dm in enumerate(self.dims) if dm.kind == "cat"]
        self.priors = {j: cat_prior(self.dims[j]) for j in self.cat_idx}
        # Scott's rule in the unit cube, counted over the mixture's components
        sigma = scale * (n + 1) ** (-1.0 / (d + 4)) if d else scale
        bw = np.full(d, max(sigma, min_bandwidth))
        for j, dm in enumerate(self.dims):
            if dm.kind == "int" and dm.n > 0:
                bw[j] = max(bw[j], 0.5 / dm.n)
        self.bw = bw
        # cached per-component terms of the numeric kernels (truncated-normal constants)
        self._num = np.flatnonzero(self.numeric)
        self._mu = self.X[:, self._num]
        self._sd = bw[self._num][None, :]
        norm = ndtr((1.0 - self._mu) / self._sd) - ndtr((0.0 - self._mu) / self._sd)
        self._log_const = _LOG_SQRT_2PI + np.log(self._sd) + np.log(np.maximum(norm, 1e-300))
        self._A_num = self.A[:, self._num]
        self._all_active = self._A_num.all(axis=0)  # per numeric dim
        self._X_cat = {j: np.rint(self.X[:, j]).astype(int) for j in self.cat_idx}
        self.lam = min(0.5, max(sigma, 1.0 / (n + 1)))  # categorical mixing with the prior

    @property
    def n_components(self) -> int:
        return self.X.shape[0] + 1

    # -- sampling ------------------------------------------------------------------------
    def sample(
        self,
        rng: np.random.Generator,
        size: int,
        *,
        component: int | None = None,
        bw_factor: float | np.ndarray = 1.0,
    ) -> np.ndarray:
        """Draw ``size`` vectors: pick a component, sample each dim from its kernel, or from
        the prior where the component is the prior or its observation leaves the dim
        inactive. Inactive dims of the result hold the encoder's neutral value.

        ``component``: draw every vector from this observation's kernel (a local search
        around it); ``bw_factor`` scales the numeric bandwidths of the draw (a number, or one
        factor per vector with shape ``(size, 1)``)."""
        d = len(self.dims)
        n = self.X.shape[0]
        if component is None:
            comp = rng.choice(self.n_components, size=size, p=np.exp(self.log_w))
        else:
            comp = np.full(size, int(component))
        is_obs = comp < n
        src = np.where(is_obs, comp, 0)
        use_kernel = np.zeros((size, d), dtype=bool)
        if n:
            use_kernel = self.A[src] & is_obs[:, None]
        out = np.empty((size, d))
        # numeric dims: truncated normal around the observation, or uniform
        num = np.flatnonzero(self.numeric)
        if num.size:
            mu = self.X[src][:, num] if n else np.full((size, num.size), 0.5)
            sd = self.bw[num][None, :] * bw_factor
            lo, hi = ndtr((0.0 - mu) / sd), ndtr((1.0 - mu) / sd)
            u = rng.random((size, num.size))
            p = np.clip(lo + u * (hi - lo), 1e-12, 1 - 1e-12)
            tn = np.clip(mu + sd * ndtri(p), 0.0, 1.0)
            out[:, num] = np.where(use_kernel[:, num], tn, rng.random((size, num.size)))
        for j in self.cat_idx:
            prior = self.priors[j]
            fresh = rng.choice(len(prior), size=size, p=prior).astype(float)
            keep = use_kernel[:, j] & (rng.random(size) >= self.lam)
            obs_val = self.X[src, j] if n else fresh
            out[:, j] = np.where(keep, obs_val, fresh)
        active = active_mask(self.dims, out)
        neutral = np.where(self.numeric, 0.5, 0.0)
        return np.where(active, out, neutral[None, :])

    # -- density -------------------------------------------------------------------------
    def log_pdf(self, C: np.ndarray, CA: np.ndarray) -> np.ndarray:
        """Log density of candidates ``C`` (``m x d``) over the dims each activates (``CA``)."""
        C = np.atleast_2d(C)
        CA = np.atleast_2d(CA)
        # in blocks of candidates whose m x n work arrays stay in the CPU cache (every row is
        # computed on its own: the same numbers as in one block)
        rows = max(1, _BLOCK // (self.X.shape[0] + 1))
        if C.shape[0] > rows:
            return np.concatenate([self._log_pdf(C[i : i + rows], CA[i : i + rows])
                                   for i in range(0, C.shape[0], rows)])
        return self._log_pdf(C, CA)

    def _log_pdf(self, C: np.ndarray, CA: np.ndarray) -> np.ndarray:
        m = C.shape[0]
        n = self.X.shape[0]
        # S[c, k]: log kernel of component k (the last is the prior) summed over the dims
        # candidate c activates; the prior's numeric log density is 0 in the unit cube
        S = np.zeros((m, n + 1))
        num = self._num
        if num.size and n:
            # one numeric dim at a time, in place: no m x n x d temporaries and, where every
            # dim is active, no mask
            out, z = S[:, :n], np.empty((m, n))
            CA_num = CA[:, num]
            for k, j in enumerate(num):
                np.subtract(C[:, j][:, None], self._mu[None, :, k], out=z)
                np.divide(z, self._sd[0, k], out=z)
                lk = np.multiply(-0.5, z)
                np.multiply(lk, z, out=lk)
                np.subtract(lk, self._log_const[None, :, k], out=lk)
                if not (self._all_active[k] and CA_num[:, k].all()):
                    lk = np.where(self._A_num[None, :, k] & CA_num[:, k][:, None], lk, 0.0)
                out += lk
        for j in self.cat_idx:
            prior = self.priors[j]
            c = np.clip(np.rint(C[:, j]), 0, len(prior) - 1).astype(int)
            on = CA[:, j]
            log_prior = np.log(np.maximum(prior[c], 1e-300)) * on  # (m,)
            S[:, n] += log_prior
            if n:
                same = c[:, None] == self._X_cat[j][None, :]
                p = self.lam * prior[c][:, None] + (1.0 - self.lam) * same
                lk_cat = np.where(
                    self.A[None, :, j], np.log(np.maximum(p, 1e-300)), log_prior[:, None]
                )
                S[:, :n] += lk_cat * on[:, None]
        S += self.log_w[None, :]
        top = S.max(axis=1, keepdims=True)
        np.subtract(S, top, out=S)  # log-sum-exp in place (m x n: no more temporaries)
        np.exp(S, out=S)
        return top[:, 0] + np.log(S.sum(axis=1))
