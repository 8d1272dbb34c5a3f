"""Is a proposal distinguishable from the points already tried? (TPE's small-budget guard.)

With a budget of a few dozen trials, a proposal whose every active numeric coordinate lies
within a tiny distance of an observed or pending point (and whose categories are the same)
tells the model almost nothing new: on a 16-trial digits run TPESearch spent 3 trials on
alpha 1.15e-6, 1.18e-6 and 1.47e-6 with all else equal and identical scores.

Distance is the largest coordinate difference in the unit cube of
:class:`~rafiki_ray.spaces.Encoder` (category indices differ by at least 1, so a different
category is never "near"; a coordinate active in one point and not the other is different).
The threshold shrinks as points accumulate, ``scale * (n + 1) ** (-1 / d)`` for ``n`` known
points and ``d`` numeric dimensions (the spacing of ``n`` evenly spread points, times
``scale``): early proposals must keep a fraction of the typical spacing between points, later
ones may refine the incumbent more and more finely.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

__all__ = ["is_near", "near_threshold", "pick_new"]


def near_threshold(scale: float, n_known: int, n_numeric: int) -> float:
    """The distance below which a proposal counts as a repeat of a known point."""
    return float(scale) * float(n_known + 1) ** (-1.0 / max(1, n_numeric))


def is_near(
    x: np.ndarray, active: np.ndarray, X: np.ndarray, A: np.ndarray, threshold: float
) -> bool:
    """Whether ``(x, active)`` lies within ``threshold`` (max-norm over active coordinates)
    of a row of ``(X, A)`` with the same active coordinates."""
    if len(X) == 0 or threshold <= 0:
        return False
    same = np.all(A == active, axis=1)
    if not same.any():
        return False
    diff = np.abs(X[same] - x) * active  # inactive coordinates do not count
    return bool((diff.max(axis=1, initial=0.0) < threshold).any())


def pick_new(
    encoder: Any,
    candidates: Iterable[np.ndarray],
    seen_keys: set[bytes],
    pending: list[dict[str, Any]],
    obs_x: np.ndarray,
    obs_active: np.ndarray,
    scale: float | None,
    key: Callable[[np.ndarray], bytes],
) -> dict[str, Any] | None:
    """The first candidate (best first) that neither repeats (``key`` of its encoding in
    ``seen_keys`` or among ``pending``) nor lies near a known point (``obs_x`` /
    ``obs_active``: arrays of the observed points, or ``pending``); else the first one that
    is new but near; ``None`` when all repeat."""
    encoded = [encoder.encode(c) for c in pending]
    pending_keys = {key(x) for x, _ in encoded}
    d = len(encoder.dims)
    known_x = np.asarray(obs_x, dtype=float).reshape(-1, d)
    known_a = np.asarray(obs_active, dtype=bool).reshape(-1, d)
    if encoded:
        known_x = np.vstack([known_x, np.array([x for x, _ in encoded], dtype=float)])
        known_a = np.vstack([known_a, np.array([a for _, a in encoded], dtype=bool)])
    n_numeric = sum(d.kind != "cat" for d in encoder.dims)
    thr = 0.0 if scale is None else near_threshold(scale, len(known_x), n_numeric)
    near_only = None
    for cand in candidates:
        config = encoder.decode(cand)
        x, active = encoder.encode(config)
        k = key(x)
        if k in seen_keys or k in pending_keys:
            continue
        if not is_near(x, active, known_x, known_a, thr):
            return config
        if near_only is None:
            near_only = config
    return near_only
