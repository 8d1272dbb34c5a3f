"""benchmarks/rafiki_advisors.py --quick runs and prints its table (every method, one row each)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # five tuning runs of 4 trials: ~3 min on the shared 2 cores
def test_rafiki_advisors_quick(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), HOME=str(tmp_path), RAY_AIR_NEW_OUTPUT="0")
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "rafiki_advisors.py"),
                           "--quick"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    head = lines.index("| method | SkDt |")  # one row per method, one column per model
    rows = lines[head + 2:head + 7]
    methods = [r.split("|")[1].split()[0] for r in rows]
    assert methods == ["auto", "random", "rafiki-skopt", "rafiki-random", "optuna"]
    for r in rows:  # val / test best / test ensemble accuracies in (0.5, 1]: the tree learns
        vals = [float(c) for c in r.split("|")[2].split(" / ")[:3]]
        assert all(0.5 < v <= 1.0 for v in vals), r
