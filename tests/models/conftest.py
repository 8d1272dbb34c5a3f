"""Fixtures for the Rafiki model API tests: digits splits and the example model classes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "examples" / "models"

# two cores shared by everything: one intra-op thread per process (Ray workers get the same
# through OMP_NUM_THREADS); torch's default oversubscribes and runs ~10x slower here
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.set_num_threads(1)


def example_model(name: str) -> type:
    from rafiki_ray.models import load_model_class

    return load_model_class(MODELS / f"{name}.py", name)


@pytest.fixture(scope="session")
def digits():
    """``(train, val, test)`` splits of sklearn digits as ``(images, labels)``, shuffled."""
    from sklearn.datasets import load_digits

    d = load_digits()
    order = np.random.default_rng(0).permutation(len(d.target))
    X, y = d.images[order], d.target[order]
    return (X[:900], y[:900]), (X[900:1300], y[900:1300]), (X[1300:], y[1300:])


@pytest.fixture(scope="session")
def small_digits(digits):
    """Smaller splits for Tune runs: 400 train, 200 val."""
    (Xt, yt), (Xv, yv), test = digits
    return (Xt[:400], yt[:400]), (Xv[:200], yv[:200]), test
