from __future__ import annotations

import numpy as np
import pytest

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


def test_bayesmark_score_normalises_to_best_seen_and_random_median() -> None:
    from benchmarks.search_quality import bayesmark_scores

    # one problem, one repeat: opt = 0.0 (best loss any method saw), clip = median of the
    # random method's losses = 2.0; best of A = 0.0 -> 100, best of B = 1.0 -> 50,
    # random's best 1.0 -> 50; C never beats the clip (best 3.0 -> clipped to 1 -> 0)
    results = {
        ("A", "p", 0): [4.0, 0.0],
        ("B", "p", 0): [1.0, float("nan")],
        ("C", "p", 0): [3.0, float("inf")],
        ("random", "p", 0): [1.0, 2.0, 3.0],
    }
    scores = bayesmark_scores(results)
    assert scores == {"A": 100.0, "B": 50.0, "C": 0.0, "random": 50.0}
    # problems and repeats are averaged
    results[("A", "p", 1)], results[("random", "p", 1)] = [1.0], [0.0, 4.0]  # A: 0.5
    both = {k: v for k, v in results.items() if k[0] in ("A", "random")}
    assert bayesmark_scores(both)["A"] == 75.0  # 100 * (1 - (0 + 0.5) / 2)
    with pytest.raises(ValueError, match="every loss of every method"):
        bayesmark_scores({("A", "q", 0): [float("nan")]})


def test_quick_report_has_every_part_and_leaves_results_alone(tmp_path, capsys) -> None:
    """``search_quality.py --quick --no-write``: the smoke run a user makes first (seconds)."""
    import benchmarks.search_quality as sq

    before = sq.RESULTS.read_text()
    saved = tmp_path / "quick.md"
    assert sq.main(["--quick", "--no-write", "--methods", "GPSearch,TPESearch,random",
                    "--par-methods", "TPESearch", "--save-text", str(saved)]) == 0
    out = capsys.readouterr().out
    assert sq.RESULTS.read_text() == before
    assert saved.read_text().strip() in out
    for heading in ("### Synthetic", "### Parallel", "### bayesmark-style"):
        assert heading in out, heading
    for method in ("GPSearch", "TPESearch", "random"):
        assert f"| {method} |" in out, method
    # the synthetic table ends with the timing columns: a number for each method at both sizes
    synthetic = out.split("### Synthetic", 1)[1].split("###", 1)[0]
    rows = [r for r in synthetic.splitlines() if r.startswith("| ") and "---" not in r]
    assert rows[0].endswith("| ms per suggestion at 20 obs | ms per suggestion at 50 obs |")
    assert len(rows) == 4 and all(float(c) >= 0 for r in rows[1:] for c in r.split("|")[-3:-1])
