"""ParamStore on a two-node Ray cluster started on this machine (``ray.cluster_utils.Cluster``).

The cluster cannot share the test session's Ray, so it runs in a subprocess of its own, which
shuts it down in a ``finally``; on a timeout the whole process group is killed (never
``ray stop``: other Ray instances share this machine).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    import ray
    from ray.cluster_utils import Cluster

    N = 2 * 2**20 // 8  # 2 MiB: stored in plasma, not inlined
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "resources": {"node_a": 1}, "include_dashboard": False},
    )
    sessions = []
    try:
        cluster.add_node(num_cpus=1, resources={"node_b": 1})
        sessions = sorted({n.get_session_dir_path() for n in cluster.list_all_nodes()})
        print("SESSIONS " + json.dumps(sessions), flush=True)
        ray.init(address=cluster.address, namespace="multinode", log_to_driver=False)
        cluster.wait_for_nodes()
        from rafiki_ray.sharing import ParamStore

        store = ParamStore.create("mn_store", mode="max")

        def on(node):
            return {"num_cpus": 0, "resources": {node: 0.01}}

        @ray.remote
        def publish(store, value, trial, score):
            rec = store.publish({"w": np.full(N, value), "epoch": 1}, trial_id=trial, score=score)
            return rec, ray.get_runtime_context().get_node_id()

        @ray.remote
        def fetch(store, policy, trial=None):
            got = store.fetch(policy, trial_id=trial)
            ref = store.fetch_trial_ref("from_a")
            direct = ray.get(ref)["w"][0]
            return (float(got["w"][0]), float(got["w"].sum()), int(got["epoch"]),
                    float(direct), ray.get_runtime_context().get_node_id())

        rec_a, node_a = ray.get(publish.options(**on("node_a")).remote(store, 3.0, "from_a", 1.0))
        rec_b, node_b = ray.get(publish.options(**on("node_b")).remote(store, 5.0, "from_b", 0.5))
        # the publishing tasks are finished; fetch each set on the other node
        best_on_b = ray.get(fetch.options(**on("node_b")).remote(store, "GLOBAL_BEST"))
        b_on_a = ray.get(fetch.options(**on("node_a")).remote(store, "LOCAL_RECENT", "from_b"))
        locations = ray.experimental.get_object_locations(
            [store.fetch_trial_ref("from_a"), store.fetch_trial_ref("from_b")]
        )
        stats = store.stats()
        store.shutdown()
        print("RESULT " + json.dumps({
            "node_a": node_a, "node_b": node_b,
            "rec_nodes": [rec_a["node_id"], rec_b["node_id"]],
            "best_on_b": best_on_b, "b_on_a": b_on_a,
            "where": [sorted(v["node_ids"]) for v in locations.values()],
            "count": stats["count"], "bytes": stats["bytes"],
        }))
    finally:
        ray.shutdown()
        cluster.shutdown()
    """
)


def _assert_no_process_left(session_dirs: list[str], timeout: float = 20.0) -> None:
    """No process of the cluster (its session dirs appear in their command lines) survives."""
    deadline = time.monotonic() + timeout
    while True:
        left = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().decode(errors="replace")
            except OSError:
                continue
            if any(d in cmd for d in session_dirs):
                left.append((int(pid), cmd.replace("\0", " ")[:120]))
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not left, left


def run_cluster_script(tmp_path, text: str, timeout: float, *, cwd: str | None = None) -> dict:
    """Run a cluster script in its own process group (killed whole on timeout); check that it
    left no Ray process behind (its first ``SESSIONS`` line) and succeeded; return its last
    ``RESULT`` line's JSON."""
    script = tmp_path / "cluster_script.py"
    script.write_text(text)
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env=env, cwd=cwd or str(tmp_path), start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"cluster script timed out (a hang?):\n{out[-4000:]}")
    sessions = [json.loads(line[len("SESSIONS "):]) for line in out.splitlines()
                if line.startswith("SESSIONS ")]
    assert sessions and sessions[0], out[-4000:]
    _assert_no_process_left(sessions[0])
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, out[-4000:]
    return json.loads(lines[-1][len("RESULT "):])


@pytest.mark.slow
def test_publish_on_one_node_fetch_on_the_other(tmp_path):
    res = run_cluster_script(tmp_path, SCRIPT, timeout=240)
    n = 2 * 2**20 // 8
    assert res["node_a"] != res["node_b"]
    assert res["rec_nodes"] == [res["node_a"], res["node_b"]]
    # GLOBAL_BEST (from node A) read on node B; both the fetched dict and the ref agree
    value, total, epoch, direct, where = res["best_on_b"]
    assert (value, total, epoch, direct, where) == (3.0, 3.0 * n, 1, 3.0, res["node_b"])
    value, total, epoch, direct, where = res["b_on_a"]
    assert (value, total, epoch, direct, where) == (5.0, 5.0 * n, 1, 3.0, res["node_a"])
    # the store's copy of each set was made on the publisher's node (the actor never held it)
    assert res["node_a"] in res["where"][0] and res["node_b"] in res["where"][1]
    assert res["count"] == 2 and res["bytes"] == 2 * (n * 8 + 8)
