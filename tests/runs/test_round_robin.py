"""Runs take turns chunk by chunk (RoundRobin) when there are more runs than slots."""

from __future__ import annotations

import json

import pytest
from ray import tune

from tests.runs._digits import base_config, digits_data, digits_spec


class _Order(tune.Callback):
    """Appends ``[run_id, chunks_done, loss, top1, iterations_since_restore]`` of every
    result, in the order Tune saw them."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_trial_result(self, iteration, trials, trial, result, **info):
        with open(self.path, "a") as f:
            f.write(json.dumps([result["run_id"], result["chunks_done"], result["loss"],
                                result["top1_accuracy"],
                                result["iterations_since_restore"]]) + "\n")


def _run(tmp_path, name: str, round_robin: bool) -> list[list]:
    from rafiki_ray.runs import run_fit

    tr, ev = digits_data(200, 100)
    configs = [base_config(lr=lr, hidden=h, epochs=1) for lr in (0.02, 0.1) for h in (8, 16, 24)]
    log = str(tmp_path / f"{name}.jsonl")
    run_fit(digits_spec(), configs, tr, ev, storage_path=str(tmp_path), name=name,
            num_chunks=4, cpus_per_run=1.0, metric="top1_accuracy", mode="max",
            round_robin=round_robin, tensorboard=False, callbacks=[_Order(log)], verbose=0)
    with open(log) as f:
        return [json.loads(line) for line in f]


def _turns_taken(log: list[list], total: int, slots: int) -> list[list]:
    """Results where a run trained a second chunk in a row although more runs than slots were
    unfinished (someone was waiting); empty when runs took turns."""
    done: set[str] = set()
    runs = {r for r, *_ in log}
    bad = []
    for row in log:
        run, chunk, *_, since_restore = row
        if since_restore > 1 and len(runs - done) > slots:
            bad.append(row)
        if chunk == total:
            done.add(run)
    return bad


@pytest.mark.slow  # ~2 min on the shared 2-core machine (two runs of 6 x 4 chunks)
def test_six_runs_on_two_slots_take_turns_and_train_exactly(ray_session, tmp_path):
    rr = _run(tmp_path, "rr", round_robin=True)
    runs = {r for r, *_ in rr}
    assert len(runs) == 6
    # while more runs than slots are unfinished, a run yields its slot after every chunk
    # (a trial that starts late, e.g. a slow worker start, only delays its own first chunk)
    assert _turns_taken(rr, 4, 2) == [], rr
    # each run reports each chunk once (a pause resumes at the chunk boundary, no repeats)
    for run in runs:
        assert [c for r, c, *_ in rr if r == run] == [1, 2, 3, 4]
    # and trains exactly as without turns (the checkpoint resume is exact)
    plain = _run(tmp_path, "plain", round_robin=False)
    assert len(_turns_taken(plain, 4, 2)) >= 6  # without turns a run keeps its slot

    def series(log):
        return {run: [(c, loss, acc) for r, c, loss, acc, _ in log if r == run]
                for run in runs}

    assert series(rr) == series(plain)


def test_round_robin_rejects_bad_arguments():
    from rafiki_ray.schedulers import RoundRobin

    with pytest.raises(TypeError, match="RoundRobin.inner"):
        RoundRobin(inner="asha")
    with pytest.raises(TypeError, match="RoundRobin.waiting"):
        RoundRobin(waiting=3)


@pytest.mark.slow  # ~1 min on the shared 2-core machine
def test_round_robin_composes_with_successive_halving(ray_session, tmp_path):
    from rafiki_ray.runs import Range, SuccessiveHalving, run_fit

    tr, ev = digits_data(200, 100)
    group = SuccessiveHalving(base_config(lr=Range(0.005, 0.3, log=True)), num_runs=4,
                              min_epochs=1, max_epochs=2, reduction_factor=2,
                              metric="top1_accuracy", direction="max", seed=0)
    log = str(tmp_path / "sha.jsonl")
    run_fit(digits_spec(), group, tr, ev, storage_path=str(tmp_path), name="sha",
            num_chunks=4, cpus_per_run=1.0, tensorboard=False, callbacks=[_Order(log)],
            verbose=0)
    with open(log) as f:
        rows = [json.loads(line) for line in f]
    chunks: dict[str, list[int]] = {}
    for r, c, *_ in rows:
        chunks.setdefault(r, []).append(c)
    # the rung (epoch 1: 4 chunks) halves 4 runs to 2, each chunk reported once
    assert sorted(chunks.values()) == [[1, 2, 3, 4]] * 2 + [list(range(1, 9))] * 2, rows
    # 4 runs on 2 slots take turns before the rung: runs resume mid-rung (without turns the
    # only resumes are the promotions, at chunk 5)
    assert sum(1 for row in rows if 1 < row[1] <= 4 and row[4] == 1) >= 4, rows
