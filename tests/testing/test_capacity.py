"""The capacity guard that conftest runs before each Ray test (``rafiki_ray.testing._capacity``),
on the session's real Ray: a CPU held past the timeout restarts Ray; free CPUs leave it be."""

from __future__ import annotations

import ray

from rafiki_ray.testing._capacity import held_resources, restore_capacity
from tests.conftest import RAY_INIT


@ray.remote(num_cpus=1)
class _Holder:
    def ping(self) -> int:
        return 1


def test_free_cpus_leave_ray_as_it_is(ray_session):
    node = ray.get_runtime_context().get_node_id()
    assert held_resources(timeout_s=5.0) == {}
    assert restore_capacity(RAY_INIT, timeout_s=5.0) == {}
    assert ray.get_runtime_context().get_node_id() == node


def test_a_cpu_held_past_the_timeout_restarts_ray(ray_session):
    # an actor of ours stands in for the bundle Ray leaks: the guard only sees a held CPU
    holder = _Holder.remote()
    assert ray.get(holder.ping.remote()) == 1
    node = ray.get_runtime_context().get_node_id()
    assert held_resources(timeout_s=0.5) == {"CPU": 1.0}
    assert restore_capacity(RAY_INIT, timeout_s=0.5) == {"CPU": 1.0}
    assert ray.get_runtime_context().get_node_id() != node  # a new instance
    assert ray.cluster_resources()["CPU"] == 2
    assert held_resources(timeout_s=5.0) == {}
