"""run_fit on Ray: a SuccessiveHalving group on digits, on the chunk clock."""

from __future__ import annotations

import os

import pytest

from tests.runs._digits import base_config, digits_data, digits_spec


@pytest.mark.slow  # ~1-2 min on the shared 2-core machine
def test_successive_halving_group_on_digits(ray_session, tmp_path):
    from rafiki_ray.control import Control
    from rafiki_ray.experiment_data import load_experiment
    from rafiki_ray.runs import Range, SuccessiveHalving, run_fit

    tr, ev = digits_data(300, 100)
    group = SuccessiveHalving(base_config(lr=Range(0.005, 0.3, log=True)), num_runs=4,
                              min_epochs=1, max_epochs=2, reduction_factor=2,
                              metric="top1_accuracy", direction="max", seed=0)
    run_fit(digits_spec(), group, tr, ev, storage_path=str(tmp_path), name="sha",
            num_chunks=2, cpus_per_run=0.5, verbose=0)
    exp = os.path.join(str(tmp_path), "sha")
    data = load_experiment(exp)
    assert data.scheduler_state["class"] == "SuccessiveHalving"
    chunks = {t.run_id: t.series("top1_accuracy", "chunks_done") for t in data.trials.values()}
    assert len(chunks) == 4
    finals = sorted(max(x) for x, _ in chunks.values())
    assert finals == [2, 2, 4, 4]  # rung at epoch 1 (2 chunks): the best half goes on
    at_rung = {r: y[x.index(2)] for r, (x, y) in chunks.items()}
    kept = {r for r, (x, _) in chunks.items() if max(x) == 4}
    assert min(at_rung[r] for r in kept) >= max(at_rung[r] for r in at_rung if r not in kept)
    runs = Control(exp).runs()
    assert all(r["status"] == "completed" for r in runs.values())
    assert {r["config"]["train"]["epochs"] for r in runs.values()} == {2}  # max_epochs


def test_prepare_adds_the_progress_display(tmp_path):
    from rafiki_ray.progress import ProgressCallback
    from rafiki_ray.runs import GridSearch, List
    from rafiki_ray.runs.fit import prepare

    tr, ev = digits_data(40, 20)
    group = GridSearch(base_config(lr=List([0.01, 0.1])))
    _, kwargs, _ = prepare(digits_spec(), group, tr, ev, storage_path=str(tmp_path),
                           name="p", num_chunks=2, metric="loss", mode="min", progress=True,
                           tensorboard=False)
    (shown,) = [c for c in kwargs["run_config"].callbacks if isinstance(c, ProgressCallback)]
    assert shown.metric == "loss" and shown.mode == "min"
    mine = ProgressCallback(metric="loss", mode="min", prefix="runs: ")
    _, kwargs, _ = prepare(digits_spec(), group, tr, ev, storage_path=str(tmp_path),
                           name="q", num_chunks=2, progress=mine, tensorboard=False)
    assert mine in kwargs["run_config"].callbacks
    _, kwargs, _ = prepare(digits_spec(), group, tr, ev, storage_path=str(tmp_path),
                           name="r", num_chunks=2, tensorboard=False)
    assert not any(isinstance(c, ProgressCallback) for c in kwargs["run_config"].callbacks)
