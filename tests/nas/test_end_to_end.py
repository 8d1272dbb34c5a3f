"""End to end with Tune on digits (slow): an ENAS search on shared weights, the final training
of its best architecture from scratch, against the best of random architectures trained from
scratch with the same CPU time."""

from __future__ import annotations

import pytest

from benchmarks.nas import run_search, run_standalone

SETTINGS = {
    "n_search": 16, "n_train": 1, "n_eval": 3, "n_final_eval": 4, "n_data": 600,
    "over": {"search_channels": 4, "channels": 8, "trial_epochs": 1, "epochs": 2,
             "quick_eval_size": 200},
}


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_enas_beats_random_architectures_at_equal_compute(ray_session):
    enas = run_search("ENAS", 0, quick=True, **SETTINGS)
    assert enas["n_trials"] == 16 + 4 + 1
    rand = run_standalone(0, quick=True, cpu_budget_s=enas["cpu_s"], **SETTINGS)
    assert rand["cpu_s"] >= enas["cpu_s"]  # random got at least as much compute
    assert enas["final_acc"] > rand["final_acc"], (enas, rand)
