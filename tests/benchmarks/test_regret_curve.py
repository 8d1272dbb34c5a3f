from __future__ import annotations

import numpy as np
import pytest

from benchmarks.regret_curve import curve, main


def test_curve_is_the_running_best_regret_per_seed() -> None:
    c = curve("random", "branin", seeds=2, budget=12, batch=4)
    assert c.shape == (2, 12)
    assert np.all(c >= 0)
    assert np.all(np.diff(c, axis=1) <= 0)  # best so far never gets worse
    assert not np.array_equal(c[0], c[1])  # seeds differ
    np.testing.assert_array_equal(c, curve("random", "branin", seeds=2, budget=12, batch=4))


def test_unknown_method_names_the_flag() -> None:
    with pytest.raises(ValueError, match="--method"):
        main(["--method", "nope"])


def test_negative_batch_is_asynchronous_workers() -> None:
    c = curve("random", "branin", seeds=2, budget=12, batch=-4)
    assert c.shape == (2, 12) and np.all(np.diff(c, axis=1) <= 0)
    np.testing.assert_array_equal(c, curve("random", "branin", seeds=2, budget=12, batch=-4))
