from __future__ import annotations

import numpy as np

from benchmarks._problems import synthetic_problems
from benchmarks.search_quality import _job, run_async


def _branin():
    return {p.name: p for p in synthetic_problems()}["branin"]


class _Recorder:
    """A driver that records how many asks are pending at each ask (random configurations)."""

    def __init__(self, space, seed):
        self.space, self.rng = space, np.random.default_rng(seed)
        self.pending: set[int] = set()
        self.at_ask: list[int] = []
        self.n = 0

    def ask(self):
        self.at_ask.append(len(self.pending))
        self.pending.add(self.n)
        self.n += 1
        return self.n - 1, self.space.sample(self.rng)

    def tell(self, token, loss):
        self.pending.remove(token)


def test_async_asks_with_the_other_workers_pending(monkeypatch) -> None:
    import benchmarks.search_quality as sq
    from benchmarks._methods import Method

    made: list[_Recorder] = []

    def make(space, seed):
        made.append(_Recorder(space, seed))
        return made[-1]

    methods = sq.available_methods()
    methods["recorder"] = Method("recorder", make)
    monkeypatch.setattr(sq, "available_methods", lambda: methods)
    losses = run_async("recorder", _branin(), seed=3, budget=20, workers=4)
    rec = made[0]
    assert len(losses) == 20 and rec.n == 20 and not rec.pending
    # 4 start at once, then each ask comes after one completion, with the other 3 running
    assert rec.at_ask == [0, 1, 2, 3] + [3] * 16


def test_async_runs_are_deterministic_per_seed_and_differ_between_seeds() -> None:
    a = run_async("TPESearch", _branin(), seed=0, budget=16, workers=4)
    assert a == run_async("TPESearch", _branin(), seed=0, budget=16, workers=4)
    assert a != run_async("TPESearch", _branin(), seed=1, budget=16, workers=4)
    assert all(np.isfinite(a))


def test_negative_batch_in_a_job_means_asynchronous_workers() -> None:
    m, p, s, b, losses, _t = _job(("random", "branin", 2, 12, -4, "synthetic"))
    assert (m, p, s, b) == ("random", "branin", 2, -4) and len(losses) == 12
