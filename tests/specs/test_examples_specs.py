"""examples/specs/: the T9k AutoTuneExperiment, the NNI config and the Polyaxon file that tune
the same PyTorch digits model each run as a user runs them, ``rafiki-ray run FILE`` in its own
process with its own embedded Ray, and end DONE with every trial's result (slow)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "specs"


def _cli(args: list[str], tmp_path: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["HOME"] = str(tmp_path)
    env.pop("RAY_ADDRESS", None)
    env.setdefault("RAY_worker_niceness", "0")
    return subprocess.run([sys.executable, "-m", "rafiki_ray.cli", *args], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)


@pytest.mark.parametrize("name", ["t9k", "nni", "polyaxon"])
def test_examples_validate(name: str, tmp_path: Path):
    proc = _cli(["validate", str(EXAMPLES / f"{name}.yaml")], tmp_path, timeout=120)
    assert proc.returncode == 0 and "valid" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize(("name", "trials", "metric"),
                         [("t9k", 4, "default"), ("nni", 4, "default"),
                          ("polyaxon", 4, "accuracy")])
def test_example_specs_run(name: str, trials: int, metric: str, tmp_path: Path):
    storage = tmp_path / "results"
    proc = _cli(["run", str(EXAMPLES / f"{name}.yaml"), "--storage", str(storage),
                 "--num-cpus", "2"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "phase: DONE" in proc.stdout
    # the progress display's final line
    assert re.search(r"^trials \d+(/\d+)? done, 0 running \| best ", proc.stderr, re.MULTILINE), \
        proc.stderr[-2000:]
    exp_dir = proc.stdout.split("directory: ", 1)[1].splitlines()[0]
    rows = json.loads(_cli(["results", exp_dir, "--format", "json"], tmp_path, 120).stdout)
    finished = [r for r in rows if r["state"] == "TERMINATED"]
    assert finished and len(rows) <= trials
    assert max(r[metric] for r in finished) > 0.8  # the MLP learns the digits
