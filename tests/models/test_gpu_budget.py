"""GPU_COUNT: trials ask for fractional GPUs. No GPU is needed: Ray schedules GPUs as logical
resources (``ray.init(num_gpus=1)`` on a CPU machine), assigns ids and sets
``CUDA_VISIBLE_DEVICES`` exactly as it does on a GPU node; this checks that request and
assignment, not CUDA itself. It needs its own Ray instance, so it runs in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r'''
import json, os, sys, time
import numpy as np
import ray

ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
from rafiki_ray.knobs import FloatKnob
from rafiki_ray.models import BaseModel, tune_model

OUT, STORAGE, GPUS = sys.argv[1], sys.argv[2], float(sys.argv[3])
CONCURRENT = int(sys.argv[4]) or None


class GpuProbe(BaseModel):
    @staticmethod
    def get_knob_config():
        return {"x": FloatKnob(0.0, 1.0)}

    def train(self, dataset, shared_params=None, **train_args):
        start = time.time()
        time.sleep(3.0)
        record = {"gpu_ids": [str(g) for g in ray.get_gpu_ids()],
                  "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"), "start": start,
                  "end": time.time()}
        with open(os.path.join(OUT, f"{os.getpid()}_{start}.json"), "w") as f:
            json.dump(record, f)

    def evaluate(self, dataset):
        return float(self.knobs["x"])

    def predict(self, queries):
        return [0] * len(queries)

    def dump_parameters(self):
        return {"x": self.knobs["x"]}

    def load_parameters(self, params):
        pass


data = (np.zeros((4, 2)), np.zeros(4, dtype=int))
result = tune_model(GpuProbe, data, data, {"MODEL_TRIAL_COUNT": 4, "GPU_COUNT": GPUS},
                    max_concurrent_trials=CONCURRENT, storage_path=STORAGE, name="gpu",
                    progress=False)
print("TRIALS", len(result.result_grid), "ERRORS", result.result_grid.num_errors)
'''


def _run(tmp_path: Path, gpus: float, concurrent: int) -> list[dict]:
    tmp_path = tmp_path / f"gpus_{gpus}_concurrent_{concurrent}"
    out = tmp_path / "records"
    out.mkdir(parents=True)
    script = tmp_path / "gpu_probe.py"
    script.write_text(SCRIPT)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, str(script), str(out), str(tmp_path / "ray_results"), str(gpus),
         str(concurrent)], check=False, env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "TRIALS 4 ERRORS 0" in proc.stdout, proc.stdout[-2000:]
    return [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]


def _overlapping(records: list[dict]) -> bool:
    return any(a["start"] < b["end"] and b["start"] < a["end"]
               for i, a in enumerate(records) for b in records[i + 1:])


@pytest.mark.slow  # two Ray instances started in subprocesses, 4 trials of 3 s each
def test_gpu_count_gives_each_trial_its_share_of_the_gpus(tmp_path: Path) -> None:
    # GPU_COUNT 1 over 2 concurrent trials: half a GPU each, so two trials share GPU 0 at once
    shared = _run(tmp_path, 1, 2)
    assert len(shared) == 4
    assert all(r["gpu_ids"] == ["0"] and r["cuda"] == "0" for r in shared), shared
    assert _overlapping(shared), shared
    # GPU_COUNT 1 without a concurrency limit: one whole GPU per trial, one trial at a time
    whole = _run(tmp_path, 1, 0)
    assert len(whole) == 4
    assert all(r["gpu_ids"] == ["0"] and r["cuda"] == "0" for r in whole), whole
    assert not _overlapping(whole), whole
