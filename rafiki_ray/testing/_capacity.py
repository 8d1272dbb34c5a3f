"""Ray's CPUs and GPUs back between experiments, for sessions that run many Tune experiments in
one Ray instance (a test session, a benchmark).

Ray 2.60 can leak a placement group's reserved resources: when the group is removed while its
creation is in flight (prepared on the node, not yet committed), the prepared bundle is not
always returned (ray-project/ray#64693, open; the GCS log shows "Placement group is removed
before it is created" without "Removing all prepared bundles" after it). Tune removes the
groups of the trials it had staged when an experiment ends, so now and then a trial's CPUs
stay reserved for the rest of the Ray session. Later experiments then run on fewer slots: in
one slow test run, a test whose four members train in lockstep got two slots and waited until
its timeout, and so did the next; a benchmark's timings shift by the lost slot.

``held_resources`` waits for the cluster's CPUs and GPUs to be free again and says what is
still held; ``restore_capacity`` restarts Ray when something is. Use them only where nothing
should hold resources between experiments (no actor of your own with CPUs).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

__all__ = ["held_resources", "restore_capacity"]

#: The resources a leaked bundle takes from later experiments.
KEYS = ("CPU", "GPU")


def held_resources(timeout_s: float = 10.0, poll_s: float = 0.1) -> dict[str, float]:
    """What of the cluster's CPUs and GPUs is still reserved after ``timeout_s`` seconds of
    waiting (an experiment that just ended frees its trials' resources within ~0.1 s);
    ``{}`` once everything is free. Ray must be initialised."""
    import ray

    deadline = time.monotonic() + timeout_s
    while True:
        total, free = ray.cluster_resources(), ray.available_resources()
        held = {k: total[k] - free.get(k, 0.0) for k in KEYS if total.get(k, 0.0) > 0}
        held = {k: v for k, v in held.items() if v > 1e-9}
        if not held or time.monotonic() >= deadline:
            return held
        time.sleep(poll_s)


def restore_capacity(init_kwargs: Mapping[str, Any], timeout_s: float = 10.0) -> dict[str, float]:
    """If CPUs or GPUs are still held after ``timeout_s`` (see ``held_resources``), shut Ray
    down and start it again with ``ray.init(**init_kwargs)``; return what was held (``{}``:
    nothing was, Ray left as it is). Everything living in the old Ray instance is gone after
    a restart (actors, objects, named stores)."""
    import ray

    if not ray.is_initialized():
        return {}
    held = held_resources(timeout_s)
    if held:
        ray.shutdown()
        ray.init(**dict(init_kwargs))
    return held
