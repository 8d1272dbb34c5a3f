"""benchmarks/nas.py: flags, and (slow) one tiny ENAS search end to end."""

from __future__ import annotations

import math

import pytest

from benchmarks.nas import main, run_search


def test_unknown_method_names_the_flag() -> None:
    with pytest.raises(ValueError, match="--methods"):
        main(["--methods", "ENAS,nope"])


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_quick_enas_search_ends_with_one_final_training(ray_session) -> None:
    r = run_search("ENAS", 0, quick=True)
    assert r["method"] == "ENAS" and 0.1 < r["final_acc"] <= 1.0
    assert r["cpu_s"] > 0 and math.isfinite(r["cpu_s"])
    # 6 search trials, 2 FINAL_EVAL, 1 FINAL_TRAIN
    assert r["n_trials"] == 9 and len(r["arch"]) == 12
