"""Faults on a two-node cluster (issue 17): the worker node is killed in the middle of an
ASHA + TPESearch experiment whose trials publish to a ParamStore on the head (Tune's ASHA, and
rafiki_ray's, stopping and pausing).

Trials on the dead node are retried (``FailureConfig(max_failures=...)``) from their last
checkpoint on the head, the experiment finishes, every trial stops at an ASHA rung or at
``max_t``, and the ParamStore keeps working: a set whose object died with the node is
dropped and readers get the next valid set, never an ``ObjectLostError`` nor a hang.

As in ``test_multinode.py`` the cluster runs in a subprocess (it cannot share the test
session's Ray) that shuts it down in a ``finally``; on a timeout its process group is killed.
"""

from __future__ import annotations

import json
import os
import textwrap

import pytest

from tests.sharing.test_multinode import run_cluster_script

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: GCS health checks (Ray's defaults: a node missing 5 checks 3 s apart is dead). On 2 cores
#: loaded by other jobs (load average 37-40 seen) the head's raylet missed them and was
#: declared dead, killing the store; the killed worker node is still found dead within ~40 s.
HEALTH = {"health_check_failure_threshold": 12, "health_check_period_ms": 3000}
#: seconds from a node's death until Ray declares it dead under ``HEALTH``
DETECT_S = HEALTH["health_check_failure_threshold"] * HEALTH["health_check_period_ms"] / 1000
#: bound on the reads once Ray has declared the node dead (each one a round trip to the store)
READ_S = 30


def _assert_reads_end_once_the_node_is_declared_dead(res: dict) -> None:
    """A read of a set held on the killed node waits until Ray declares the node dead (until
    then the object's only copy is there, and Ray cannot tell a dead node from a slow one),
    then the store drops the set and returns the next one. So the reads end at most
    ``DETECT_S`` (plus a margin for a loaded machine) after the kill: no hang. (Timed from
    the reads' start instead, this failed at 30.7 s > 30 when the experiment ended 6 s after
    the kill: the reads then rightly waited about 30 s for Ray's verdict.) When Ray had
    declared the node dead before the reads began, they have nothing to wait for and take
    under ``READ_S`` however late they begin (the PBT script's reads, after a driver crash
    and restore, began 63 s after the kill and took 0.01 s: "end < DETECT_S + 20" failed)."""
    assert res["read_end_after_kill"] is not None
    if res["dead_before_reads"]:  # Ray's verdict was in: nothing left to wait for
        assert res["fetch_s"] < READ_S, (res["fetch_s"], res["read_end_after_kill"])
    else:  # they wait for the verdict, no longer
        assert res["read_end_after_kill"] < DETECT_S + 20, (
            res["read_end_after_kill"], res["fetch_s"])

SCRIPT = textwrap.dedent(
    """
    import json, os, tempfile, threading, time
    import numpy as np
    import ray
    from ray import tune
    from ray.cluster_utils import Cluster

    MAX_T, N_TRIALS = 8, 6
    HEALTH = __HEALTH__
    N = 64 * 1024  # 512 KiB per set: in the object store, not inlined
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "resources": {"node_a": 1}, "include_dashboard": False,
                        "_system_config": HEALTH},
    )
    sessions = []
    try:
        # the driver attaches to the head's raylet (the only one yet): it survives the kill
        ray.init(address=cluster.address, namespace="faults", log_to_driver=False)
        victim = cluster.add_node(num_cpus=1, resources={"node_b": 1})
        sessions = sorted({n.get_session_dir_path() for n in cluster.list_all_nodes()})
        print("SESSIONS " + json.dumps(sessions), flush=True)
        cluster.wait_for_nodes()
        from ray.tune.schedulers import AsyncHyperBandScheduler
        from rafiki_ray.schedulers import ASHA
        from rafiki_ray.searchers import TPESearch
        from rafiki_ray.sharing import ParamStore

        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        node_a = ray.get_runtime_context().get_node_id()
        node_b = victim.node_id
        assert node_a == cluster.head_node.node_id != node_b
        store = ParamStore.create("fault_store", mode="max")  # on the caller's node: the head
        store_node = ray.get(store.actor.ping.remote())
        assert store_node == node_a, f"the store was placed on {store_node}, not the head"

        @ray.remote(num_cpus=0)
        def publish_on_b(store):
            return store.publish({"w": np.full(N, 7.0)}, trial_id="pinned_b", score=1e9)

        on_b = NodeAffinitySchedulingStrategy(node_b, soft=False)
        ray.get(publish_on_b.options(scheduling_strategy=on_b).remote(store))
        # the global best lives on the node to be killed
        marks = tempfile.mkdtemp()

        def train(config):
            ckpt = tune.get_checkpoint()
            state = {"it": 0, "starts": []}
            if ckpt is not None:
                with ckpt.as_directory() as d:
                    with open(os.path.join(d, "state.json")) as f:
                        state = json.load(f)
            state["starts"].append(state["it"])
            st = ParamStore.get("fault_store")
            node = ray.get_runtime_context().get_node_id()
            for it in range(state["it"] + 1, MAX_T + 1):
                time.sleep(0.3)
                score = -((config["x"] - 0.3) ** 2) + 0.05 * it
                st.publish({"w": np.full(N, score)}, score=score, step=it)
                state["it"] = it
                open(os.path.join(marks, f"{node}_{it}"), "w").close()
                with tempfile.TemporaryDirectory() as d:
                    with open(os.path.join(d, "state.json"), "w") as f:
                        json.dump(state, f)
                    tune.report(
                        {"score": score, "it": it, "starts": list(state["starts"]), "node": node},
                        checkpoint=tune.Checkpoint.from_directory(d),
                    )

        killed = {}

        def killer():
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                done = [f for f in os.listdir(marks) if f.startswith(node_b)]
                if any(int(f.rsplit("_", 1)[1]) >= 3 for f in done):  # past rung 2: runs to 4
                    cluster.remove_node(victim, allow_graceful=False)
                    killed["at"] = time.time()
                    return
                time.sleep(0.1)

        t = threading.Thread(target=killer, daemon=True)
        t.start()
        results = tune.Tuner(
            train,
            param_space={"x": tune.uniform(0, 1)},
            tune_config=tune.TuneConfig(
                metric="score", mode="max", num_samples=N_TRIALS,
                search_alg=TPESearch(seed=0, n_startup_trials=3),
                scheduler={
                    "rafiki_asha_stop": lambda: ASHA(max_t=MAX_T, grace_period=1,
                                                     reduction_factor=2, promotion="stop", seed=0),
                    "rafiki_asha_pause": lambda: ASHA(max_t=MAX_T, grace_period=1,
                                                      reduction_factor=2, seed=0),
                    "tune_asha": lambda: AsyncHyperBandScheduler(max_t=MAX_T, grace_period=1,
                                                                 reduction_factor=2),
                }["__SCHEDULER__"](),
            ),
            run_config=tune.RunConfig(
                storage_path=tempfile.mkdtemp(), verbose=0,
                failure_config=tune.FailureConfig(max_failures=3),
            ),
        ).fit()
        t.join(timeout=5)
        dead_before_reads = any(n["NodeID"] == node_b and not n["Alive"] for n in ray.nodes())
        t0 = time.monotonic()
        best = store.fetch("GLOBAL_BEST")  # was pinned_b's set, lost with node B
        pinned = store.fetch_trial("pinned_b")
        fetch_s = time.monotonic() - t0
        read_end_after_kill = time.time() - killed["at"] if "at" in killed else None
        trials = []
        for r in results:
            df = r.metrics_dataframe
            trials.append({
                "its": [int(v) for v in df["it"]], "starts": r.metrics["starts"],
                "nodes": [str(v) for v in df["node"]],
                "last_node": str(df["node"].iloc[-1]), "error": r.error is not None,
                "recent": None if (got := store.fetch_trial(r.metrics["trial_id"])) is None
                else float(got["w"][0]),
                "score": float(r.metrics["score"]),
            })
        stats = store.stats()
        store.shutdown()
        print("RESULT " + json.dumps({
            "killed": "at" in killed, "node_b": node_b, "trials": trials,
            "errors": results.num_errors,
            "best": None if best is None else float(best["w"][0]),
            "pinned": pinned, "fetch_s": fetch_s, "read_end_after_kill": read_end_after_kill,
            "dead_before_reads": dead_before_reads,
            "lost": stats["lost"], "store_trials": sorted(stats["trials"]),
        }), flush=True)
    finally:
        ray.shutdown()
        cluster.shutdown()
    """
)


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("scheduler", ["tune_asha", "rafiki_asha_stop", "rafiki_asha_pause"])
def test_worker_node_killed_mid_experiment_asha_tpe_paramstore(tmp_path, scheduler):
    res = run_cluster_script(
        tmp_path, SCRIPT.replace("__SCHEDULER__", scheduler).replace("__HEALTH__", repr(HEALTH)),
        timeout=540)
    assert res["killed"], "the worker node was never killed"
    trials = res["trials"]
    # the experiment finished: every trial, none in error
    assert res["errors"] == 0 and len(trials) == 6 and not any(t["error"] for t in trials)
    # trials that ran on the dead node were retried on the head from their last checkpoint,
    # not from 0 (a pausing ASHA also restarts trials from checkpoints, on either node)
    retried = [t for t in trials if res["node_b"] in t["nodes"] and t["last_node"] != res["node_b"]]
    assert retried, json.dumps(res)
    for t in retried:
        assert len(t["starts"]) > 1 and t["starts"][-1] > 0, t
        assert t["its"] == sorted(t["its"]), t  # the history continues, never restarts at 1
        last_on_b = max(i for i, n in enumerate(t["nodes"]) if n == res["node_b"])
        assert t["its"][last_on_b + 1] > 1, t  # the first result on the head continues B's
    # ASHA's decisions stay consistent: a trial stops at a rung (1, 2, 4) or at max_t
    assert all(t["its"][-1] in (1, 2, 4, 8) for t in trials), [t["its"] for t in trials]
    assert any(t["its"][-1] == 8 for t in trials)
    # the ParamStore on the head kept working: the lost global best was dropped, readers got
    # the next valid set (no ObjectLostError, no hang), the lost trial's slot is empty
    assert res["lost"] >= 1 and res["pinned"] is None
    on_head = [t for t in trials if t["last_node"] != res["node_b"]]
    assert res["best"] is not None and res["best"] >= max(t["score"] for t in on_head) - 1e-9
    _assert_reads_end_once_the_node_is_declared_dead(res)
    for t in trials:  # a trial's latest set: the last one it published, unless it was lost
        if t["last_node"] != res["node_b"]:
            assert t["recent"] == pytest.approx(t["score"]), t
        else:
            assert t["recent"] is None, t


PBT_SCRIPT = textwrap.dedent(
    """
    import json, os, tempfile, threading, time
    import numpy as np
    import ray
    from ray.cluster_utils import Cluster

    from tests.sharing._pbt_fault import MAX_T, NAMESPACE, STORE, N
    HEALTH = __HEALTH__

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "resources": {"node_a": 1}, "include_dashboard": False,
                        "_system_config": HEALTH},
    )
    sessions = []
    try:
        ray.init(address=cluster.address, namespace=NAMESPACE, log_to_driver=False)
        victim = cluster.add_node(num_cpus=1, resources={"node_b": 1})
        sessions = sorted({n.get_session_dir_path() for n in cluster.list_all_nodes()})
        print("SESSIONS " + json.dumps(sessions), flush=True)
        cluster.wait_for_nodes()
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
        from rafiki_ray.sharing import ParamStore
        from rafiki_ray.testing._crash import run_crash_restore

        node_a, node_b = ray.get_runtime_context().get_node_id(), victim.node_id
        assert node_a == cluster.head_node.node_id != node_b
        # the store PBT uses (its settings), detached on the head: it outlives both drivers
        store = ParamStore.create(STORE, namespace=NAMESPACE, mode="max", max_bytes=1,
                                  keep_top_k=1)

        @ray.remote(num_cpus=0)
        def publish_on_b(store):
            return store.publish({"w": np.full(N, 1e9)}, trial_id="pinned_b", score=1e9)

        on_b = NodeAffinitySchedulingStrategy(node_b, soft=False)
        ray.get(publish_on_b.options(scheduling_strategy=on_b).remote(store))
        marks, storage = tempfile.mkdtemp(), tempfile.mkdtemp()

        def parse():
            return [f.split("~") + [os.path.getmtime(os.path.join(marks, f))]
                    for f in os.listdir(marks) if f.count("~") == 3 and not f.startswith("exc")]

        killed = {}

        def killer():
            deadline = time.monotonic() + 400
            while time.monotonic() < deadline:
                trigger = [m for m in parse() if m[0] == node_b and int(m[2]) >= 3]
                if trigger:
                    cluster.remove_node(victim, allow_graceful=False)
                    killed["at"] = time.time()
                    killed["trigger"] = trigger[0][1]
                    return
                time.sleep(0.1)

        def kill_when():  # the driver dies once trials went on on the head after the kill
            return "at" in killed and sum(
                m[0] == node_a and m[4] > killed["at"] for m in parse()) >= 2

        t = threading.Thread(target=killer, daemon=True)
        t.start()
        t0 = time.monotonic()
        report = run_crash_restore(
            "tests.sharing._pbt_fault:make", storage=storage, name="pbt_fault", kill_after=6,
            factory_kwargs={"marks": marks}, introspect="tests.sharing._pbt_fault:introspect",
            timeout_s=600, address=cluster.address, kill_when=kill_when,
        )
        wall = time.monotonic() - t0
        t.join(timeout=5)
        dead_before_reads = any(n["NodeID"] == node_b and not n["Alive"] for n in ray.nodes())
        t0 = time.monotonic()
        best = store.fetch("GLOBAL_BEST")  # was pinned_b's set, lost with node B
        pinned = store.fetch_trial("pinned_b")
        recent = {}
        for tid in report["trials"]:
            got = store.fetch_trial(tid)
            recent[tid] = None if got is None else float(got["w"][0])
        fetch_s = time.monotonic() - t0
        read_end_after_kill = time.time() - killed["at"] if "at" in killed else None
        stats = store.stats()
        store.shutdown()
        state = report["scheduler_state_after"]
        print("RESULT " + json.dumps({
            "killed": "at" in killed, "trigger": killed.get("trigger"), "node_a": node_a,
            "node_b": node_b, "wall_s": wall, "report": {
                k: report[k] for k in ("trials", "restore_error", "introspection",
                                       "results_before_kill", "survivors")},
            "members": None if state is None else state["sub"]["members"],
            "lineage": None if state is None else state["sub"]["lineage"],
            "exc": sorted(f for f in os.listdir(marks) if f.startswith("exc")),
            "best": None if best is None else float(best["w"][0]), "pinned": pinned,
            "recent": recent, "fetch_s": fetch_s, "read_end_after_kill": read_end_after_kill,
            "dead_before_reads": dead_before_reads, "lost": stats["lost"],
        }), flush=True)
    finally:
        ray.shutdown()
        cluster.shutdown()
    """
)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_worker_node_killed_then_driver_killed_pbt_paramstore(tmp_path):
    """PBT + ParamStore on two nodes: the worker node dies mid-experiment (its trials are
    retried from their checkpoints on the head, the sets they published are lost), then the
    driver is SIGKILLed and the experiment restored (Tuner.restore) by a new driver on the
    same cluster; it finishes, PBT's state stays consistent and the store keeps working."""
    from tests.sharing._pbt_fault import MAX_T, N_TRIALS

    res = run_cluster_script(tmp_path, PBT_SCRIPT.replace("__HEALTH__", repr(HEALTH)),
                             timeout=840, cwd=ROOT)
    rep = res["report"]
    assert res["killed"], "the worker node was never killed"
    assert rep["restore_error"] is None and not rep["survivors"], rep
    trials = rep["trials"]
    assert len(trials) == N_TRIALS, trials
    # the experiment finished: every member ran to MAX_T, none in error, and no trial ever
    # raised in its own code (ObjectLostError from a lost source set included)
    assert all(t["status"] == "TERMINATED" and t["error"] is None for t in trials.values())
    assert all(t["last"]["it"] == MAX_T for t in trials.values()), trials
    assert res["exc"] == []
    rows = rep["introspection"]
    # the trial on B that triggered the kill was retried on the head from its checkpoint
    mine = rows[res["trigger"]]
    on_b = [i for i, r in enumerate(mine) if r[1] == res["node_b"]]
    assert on_b and on_b[-1] + 1 < len(mine), mine
    after = mine[on_b[-1] + 1]
    assert after[1] == res["node_a"] and after[2] > 0 and after[0] > 1, mine
    # no trial restarted from scratch once it had checkpointed a few iterations (the node
    # kill and the driver kill both resume from checkpoints)
    for tid, seq in rows.items():
        its = [r[0] for r in seq]
        reached = [i for i, it in enumerate(its) if it >= 3]
        assert not reached or 1 not in its[reached[0]:], (tid, seq)
    # PBT's state after the restore: every member known and finished at MAX_T, exploits
    # recorded between members of the population
    members, lineage = res["members"], res["lineage"]
    assert sorted(members) == sorted(trials), (sorted(members), sorted(trials))
    assert all(m["finished"] and m["time"] == MAX_T for m in members.values()), members
    exploits = [r for r in lineage if r["event"] == "exploit"]
    assert exploits, lineage
    assert all(r["source"] in members and r["source"] != r["trial_id"] for r in exploits)
    # the ParamStore on the head kept working: the lost best set was dropped, readers got the
    # next valid set, every member's latest set (published on the head) is readable
    assert res["lost"] >= 1 and res["pinned"] is None
    finals = {tid: t["last"]["score"] for tid, t in trials.items()}
    assert res["best"] is not None and res["best"] < 1e9
    assert res["best"] >= max(finals.values()) - 1e-9
    for tid, score in finals.items():
        assert res["recent"][tid] == pytest.approx(score), (tid, res["recent"], finals)
    _assert_reads_end_once_the_node_is_declared_dead(res)
