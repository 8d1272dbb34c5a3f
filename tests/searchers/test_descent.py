"""The batched box-constrained descent behind GPSearch's acquisition polish."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rafiki_ray.searchers._descent import descend


def _bowls(centers: np.ndarray, scales: np.ndarray) -> tuple[Callable[..., Any], list[np.ndarray]]:
    calls = []

    def fn(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        calls.append(Z.copy())
        D = Z - centers
        return (scales * D * D).sum(1), 2 * scales * D

    return fn, calls


def test_each_row_reaches_its_own_minimiser_or_the_nearest_box_face() -> None:
    centers = np.array([[0.3, 0.7], [0.9, 0.1], [1.4, 0.5], [0.5, -2.0]])
    scales = np.array([[1.0, 1.0], [50.0, 0.5], [3.0, 3.0], [1.0, 1e3]])  # badly scaled rows too
    fn, calls = _bowls(centers, scales)
    z = descend(fn, np.full((4, 2), 0.5), np.zeros(2), np.ones(2), evals=30)
    want = np.clip(centers, 0.0, 1.0)
    assert np.abs(z - want).max() < 1e-4
    assert len(calls) <= 30


def test_no_row_ends_worse_and_non_finite_values_are_rejected() -> None:
    def fn(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v = (Z * Z).sum(1)
        v[Z[:, 0] < 0.2] = np.nan  # a hole in the domain next to the minimum
        return v, 2 * Z

    z0 = np.array([[0.9, 0.9], [0.25, 0.6]])
    z = descend(fn, z0, np.zeros(2), np.ones(2), evals=40)
    v0, v = fn(z0)[0], fn(z)[0]
    assert np.isfinite(v).all() and (v <= v0).all() and (v < v0).all()


def test_a_stationary_row_stops_without_holding_up_the_others() -> None:
    centers = np.array([[0.5, 0.5], [0.2, 0.9]])
    fn, calls = _bowls(centers, np.ones((2, 2)))
    z = descend(fn, np.array([[0.5, 0.5], [0.8, 0.1]]), np.zeros(2), np.ones(2), evals=50)
    assert np.array_equal(z[0], [0.5, 0.5])  # it started at its minimum: never moved
    assert np.abs(z[1] - centers[1]).max() < 1e-5
    assert len(calls) < 50  # both rows converged before the budget


def test_per_row_boxes() -> None:
    fn, _ = _bowls(np.array([[0.5, 0.5], [0.5, 0.5]]), np.ones((2, 2)))
    lo, hi = np.array([[0.0, 0.0], [0.7, 0.0]]), np.array([[1.0, 1.0], [1.0, 0.2]])
    z = descend(fn, np.array([[0.9, 0.9], [0.9, 0.1]]), lo, hi, evals=30)
    assert np.abs(z - [[0.5, 0.5], [0.7, 0.2]]).max() < 1e-5
