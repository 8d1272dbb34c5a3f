"""benchmarks/overhead.py: a smoke run of the overhead benchmark through real Tune runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks._report import QUICK_MARK, read_section


def test_overhead_quick_run_reports_every_configuration(ray_session, tmp_path: Path) -> None:
    from benchmarks.overhead import SEARCHER_PATH, VANILLA, main

    page = tmp_path / "R.md"
    assert main(["--quick", "--trials", "4", "--iters", "3", "--only", "ASHA,RandomSearcher",
                 "--write", "--results", str(page)]) == 0
    section = read_section("overhead", page)
    assert section is not None and QUICK_MARK in section
    rows = {r.split("|")[1].strip(): [c.strip() for c in r.split("|")[2:-1]]
            for r in section.splitlines() if r.startswith("| ") and "---" not in r}
    assert set(rows) == {"configuration", VANILLA, "ASHA", SEARCHER_PATH}
    for name in (VANILLA, "ASHA", SEARCHER_PATH):
        trials, results, errors = (int(x) for x in rows[name][:3])
        assert trials == 4 and errors == 0
        assert 4 <= results <= 12  # at least one result per trial, at most 3
        assert float(rows[name][4]) > 0 and float(rows[name][6]) > 0  # ms per trial / result
    assert int(rows[VANILLA][1]) == int(rows[SEARCHER_PATH][1]) == 12  # FIFO: all 3 results
    # ASHA's own methods were timed inside the run; vanilla (Tune's own) is not
    assert rows[VANILLA][-1] == "-" and 0 < float(rows["ASHA"][-1]) < 1e3 * float(rows["ASHA"][4])
    assert "Within 10 % of vanilla Tune's wall time per trial" in section


def test_overhead_rejects_unknown_configurations(capsys) -> None:
    from benchmarks.overhead import main

    with pytest.raises(SystemExit):
        main(["--quick", "--only", "NoSuchSearch"])
    assert "--only: unknown configuration(s) ['NoSuchSearch']" in capsys.readouterr().err


def test_ray_pbt_reference_row_has_no_verdict_and_exploits_are_compared() -> None:
    from benchmarks.overhead import RAY_PBT, VANILLA, table

    def run(wall, cpu, exploits=None):
        return [{"trials": 10, "results": 90, "errors": 0, "wall": wall, "cpu": cpu,
                 "exploits": exploits}]

    lines = table({VANILLA: run(1.0, 0.5), "PBT": run(3.0, 1.0, 12),
                   RAY_PBT: run(2.0, 0.8, 4)}, trials=10, iters=9)
    text = "\n".join(lines)
    assert f"| {RAY_PBT} | 10 |" in text
    verdict = next(x for x in lines if x.startswith("Within"))
    assert "PBT (+200 %)" in verdict and RAY_PBT not in verdict  # the reference is not ours
    assert lines[-1] == (f"Exploits (median): PBT 12; {RAY_PBT} 4. PBT against {RAY_PBT}: "
                         "wall per trial +50 %, driver CPU per result +25 %.")


def test_searchers_are_also_compared_with_the_searcher_path_reference() -> None:
    from benchmarks.overhead import SEARCHER_PATH, VANILLA, table

    def run(wall):
        return [{"trials": 10, "results": 90, "errors": 0, "wall": wall, "cpu": 1.0}]

    lines = table({VANILLA: run(1.0), SEARCHER_PATH: run(1.5), "GPSearch": run(1.8),
                   "EvolutionSearch": run(1.5)}, trials=10, iters=9)
    verdict = next(x for x in lines if x.startswith("Within"))
    assert SEARCHER_PATH not in verdict and "GPSearch (+80 %)" in verdict  # no verdict on it
    assert lines[-1] == (f"Against the {SEARCHER_PATH}, the same Tune searcher path at no cost "
                         "of its own (+50 % against vanilla), wall per trial: GPSearch +20 %, "
                         "EvolutionSearch +0 %.")


def test_several_rounds_show_the_round_to_round_spread() -> None:
    from benchmarks.overhead import VANILLA, table

    def runs(*walls):
        return [{"trials": 10, "results": 90, "errors": 0, "wall": w, "cpu": 1.0} for w in walls]

    lines = table({VANILLA: runs(2.0, 1.0, 2.0), "ASHA": runs(2.2, 1.6, 1.8)}, trials=10, iters=9)
    # paired by round: ratios 1.1, 1.6, 0.9, median +10 % (the medians' ratio would say -10 %)
    asha = next(x for x in lines if x.startswith("| ASHA |")).split("|")
    assert asha[7].strip() == "+10 %" and asha[9].strip() == "+10 %"
    assert "(median of the ratios in each round)" in lines[0]
    assert lines[-1].startswith("Round to round: vanilla Tune's wall 2.0, 1.0, 2.0 s; each "
                                "configuration's wall over vanilla's in the same round: ASHA 0.90-1.60.")
    one = table({VANILLA: runs(2.0), "ASHA": runs(2.2)}, trials=10, iters=9)
    assert not any(x.startswith("Round to round") for x in one)


def test_time_calls_counts_nested_calls_once_and_leaves_results_alone() -> None:
    import time

    from benchmarks.overhead import time_calls

    class Component:
        def on_trial_result(self, x: int) -> int:
            return self.on_trial_complete(x) + 1  # a timed method calling another

        def on_trial_complete(self, x: int) -> int:
            time.sleep(0.1)
            return 2 * x

    c = Component()
    clock = time_calls(c, None)
    assert c.on_trial_result(3) == 7
    assert 0.1 <= clock[0] < 0.19  # once: the inner call counted twice would make 0.2
    assert clock[1] == 0
    assert c.on_trial_complete(1) == 2 and 0.2 <= clock[0] < 0.29


def test_each_round_runs_every_configuration_once_in_its_own_order(
        ray_session, monkeypatch, tmp_path: Path) -> None:
    import benchmarks.overhead as oh

    calls: list[tuple[str, int]] = []

    def fake_run_one(name: str, trials: int, iters: int, seed: int, storage: str) -> dict:
        calls.append((name, seed))  # the harness's bookkeeping only: no Tune run
        return {"name": name, "trials": trials, "results": trials * iters, "wall": 1.0,
                "cpu": 0.5, "errors": 0, "exploits": None, "own": None}

    monkeypatch.setattr(oh, "run_one", fake_run_one)
    assert oh.main(["--trials", "4", "--repeats", "6", "--no-write"]) == 0
    assert calls[0] == (oh.VANILLA, 0)  # the unrecorded warm-up
    rounds = [calls[1 + i * len(oh.CONFIGS):1 + (i + 1) * len(oh.CONFIGS)] for i in range(6)]
    assert len(calls) == 1 + 6 * len(oh.CONFIGS)
    for i, r in enumerate(rounds):
        assert sorted(n for n, _ in r) == sorted(oh.CONFIGS) and {s for _, s in r} == {i}
    assert len({tuple(n for n, _ in r) for r in rounds}) > 1  # not one fixed order


def test_searchers_with_trials_pending_ahead_are_compared_with_their_own_reference() -> None:
    from benchmarks.overhead import (
        AHEAD_SUFFIX,
        CONFIGS,
        SEARCHER_PATH,
        SEARCHER_PATH_AHEAD,
        TUNE_CONFIG,
        VANILLA,
        table,
    )

    # every searcher row has its max_concurrent_trials twin; no other row changes Tune's config
    assert {n for n in CONFIGS if n in TUNE_CONFIG} == {
        SEARCHER_PATH_AHEAD, *(n + AHEAD_SUFFIX for n in ("GPSearch", "TPESearch",
                                                          "EvolutionSearch"))}
    assert all(c == {"max_concurrent_trials": 4} for c in TUNE_CONFIG.values())

    def run(wall):
        return [{"trials": 10, "results": 90, "errors": 0, "wall": wall, "cpu": 1.0}]

    lines = table({VANILLA: run(1.0), SEARCHER_PATH: run(1.5), "TPESearch": run(1.8),
                   SEARCHER_PATH_AHEAD: run(1.0), "TPESearch" + AHEAD_SUFFIX: run(1.05)},
                  trials=10, iters=9)
    verdict = next(x for x in lines if x.startswith("Within"))
    assert f"TPESearch{AHEAD_SUFFIX}" in verdict.split(";")[0]  # within 10 %
    assert "TPESearch (+80 %)" in verdict and SEARCHER_PATH_AHEAD not in verdict
    assert lines[-1] == (f"Against the {SEARCHER_PATH_AHEAD}, the same Tune searcher path at no "
                         "cost of its own (+0 % against vanilla), wall per trial: "
                         f"TPESearch{AHEAD_SUFFIX} +5 %.")
