"""Factory for the two-node PBT + ParamStore fault test (tests/sharing/test_node_failure.py),
run by the crash harness (rafiki_ray.testing._crash) in the driver processes it kills and
restores. Members report through PBTSession (weights published to the ParamStore on the head)
and checkpoint every iteration; each iteration leaves a mark file
``<node>~<trial>~<iteration>~<start>`` so that the test knows where each step ran."""

from __future__ import annotations

import json
import os
import tempfile
import time

import numpy as np

STORE, NAMESPACE = "pbt_fault_store", "pbt_faults"
MAX_T, N_TRIALS = 8, 3
N = 64 * 1024  # 512 KiB per set: in the object store, not inlined


def train(config):
    import ray
    from ray import tune

    from rafiki_ray.schedulers.pbt import PBTSession

    marks = config["marks"]
    sess = PBTSession(config, store=STORE, namespace=NAMESPACE)
    tid = sess.trial_id
    node = ray.get_runtime_context().get_node_id()
    state = {"it": 0, "v": 0.0, "starts": []}
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d, open(os.path.join(d, "s.json")) as f:
            state = json.load(f)
    try:
        ex = sess.start()
        if ex is not None and ex.source_params is not None:
            state["v"] = float(ex.source_params["w"][0])
        state["starts"].append(state["it"])
        while state["it"] < MAX_T:
            time.sleep(0.1)
            state["it"] += 1
            state["v"] += float(sess.config["lr"])
            score = state["v"]
            with tempfile.TemporaryDirectory() as d:
                with open(os.path.join(d, "s.json"), "w") as f:
                    json.dump(state, f)
                ex = sess.report(
                    {"score": score, "it": state["it"], "node": node,
                     "start": state["starts"][-1]},
                    params={"w": np.full(N, score)}, score=score,
                    checkpoint=tune.Checkpoint.from_directory(d),
                )
            open(os.path.join(marks, f"{node}~{tid}~{state['it']}~{state['starts'][-1]}"),
                 "w").close()
            if ex is not None and ex.source_params is not None:
                state["v"] = float(ex.source_params["w"][0])
    except Exception as exc:  # a reader must never see ObjectLostError (nor anything else)
        open(os.path.join(marks, f"exc~{type(exc).__name__}~{tid}"), "w").close()
        raise


def make(marks: str):
    from ray import tune

    from rafiki_ray.schedulers import PBT

    sched = PBT(perturbation_interval=2, fraction=0.5, seed=0, store=STORE,
                namespace=NAMESPACE, hyperparam_mutations={"lr": tune.uniform(0.05, 0.5)})
    return train, {
        "param_space": {"lr": tune.uniform(0.05, 0.5), "marks": marks},
        "tune_config": tune.TuneConfig(metric="score", mode="max", num_samples=N_TRIALS,
                                       scheduler=sched),
        "run_config": tune.RunConfig(failure_config=tune.FailureConfig(max_failures=3)),
    }


def introspect(grid, experiment_path):
    """Every result of every trial over both drivers: (iteration, node, start, score)."""
    rows = {}
    for res in grid:
        tid = (res.metrics or {}).get("trial_id")
        out = []
        path = os.path.join(res.path, "result.json")
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    if line.strip():
                        r = json.loads(line)
                        out.append([r.get("it"), r.get("node"), r.get("start"), r.get("score")])
        rows[tid] = out
    return rows
