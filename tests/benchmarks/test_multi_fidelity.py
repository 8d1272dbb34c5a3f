"""benchmarks/multi_fidelity.py: the reduction factor of its successive-halving methods."""

from __future__ import annotations

import pytest

import benchmarks.multi_fidelity as M
from benchmarks._simulator import DEFAULT_TABLE, LCTable


@pytest.mark.parametrize(("eta", "rungs"), [(2, "1, 2, 4, 8, 16(, 30)"),
                                            (3, "1, 3, 9, 27(, 30)"),
                                            (4, "1, 4, 16(, 30)")])
def test_rungs_text(monkeypatch, eta: int, rungs: str) -> None:
    monkeypatch.setattr(M, "ETA", eta)
    assert M._rungs(30) == rungs


def test_eta_reaches_every_successive_halving_method(monkeypatch) -> None:
    table = LCTable.load(DEFAULT_TABLE)
    monkeypatch.setattr(M, "ETA", 4)
    assert M._asha(table, 0)[0]._eta == 4
    assert M._ray_asha(table, 0)[0]._reduction_factor == 4
    assert M._hyperband(table, 0)[0]._eta == 4
    assert M._sha(table, 0)[0]._eta == 4


def test_cli_eta(monkeypatch, capsys) -> None:
    monkeypatch.setattr(M, "ETA", 3)  # main() sets the module's ETA; restored after the test
    assert M.main(["--quick", "--eta", "4", "--methods", "ASHA"]) == 0
    assert M.ETA == 4
    out = capsys.readouterr().out
    assert "| ASHA |" in out and "| FIFO random |" in out
    with pytest.raises(SystemExit):
        M.main(["--quick", "--eta", "1"])
    assert "--eta: a reduction factor must be >= 2, got 1" in capsys.readouterr().err


def _cell(**values: list[float]) -> M.Cell:
    return M.Cell(values={k: list(v) for k, v in values.items()}, cpu_s=0.002, decisions=100)


def _results() -> dict[tuple[str, int], dict[str, M.Cell]]:
    """Two seeds per setting, at W = 4 and W = 16, with figures chosen to be recognisable."""
    inf = float("inf")
    out: dict[tuple[str, int], dict[str, M.Cell]] = {}
    for w, k in ((4, 1.0), (16, 0.5)):
        out[("race", w)] = {
            "FIFO random": _cell(time=[80 * k, 80 * k], best_at_budget=[0.70, 0.70]),
            "Ray ASHAScheduler": _cell(time=[25 * k, 15 * k], best_at_budget=[0.72, 0.72]),
            "ASHA": _cell(time=[20 * k, 15 * k], best_at_budget=[0.73, 0.73]),
            "Hyperband": _cell(time=[inf, inf], best_at_budget=[0.69, 0.69]),
            "Hyperband + TPESearch": _cell(time=[30 * k, 30 * k], best_at_budget=[0.71, 0.71]),
            "MedianStopping": _cell(time=[40 * k, 40 * k], best_at_budget=[0.70, 0.70]),
            M.ORACLE: _cell(time=[5 * k, 5 * k], best_at_budget=[0.732, 0.732]),
        }
        out[("savings", w)] = {
            "FIFO random": _cell(epochs=[1000, 1000], best_final=[0.73, 0.73]),
            "Ray ASHAScheduler": _cell(epochs=[150, 170], best_final=[0.73, 0.70]),
            "ASHA": _cell(epochs=[120, 130], best_final=[0.73, 0.73]),
            "Hyperband": _cell(epochs=[300, 300], best_final=[0.73, 0.73]),
            "Hyperband + TPESearch": _cell(epochs=[300, 300], best_final=[0.73, 0.73]),
            "MedianStopping": _cell(epochs=[400 * k, 400 * k],
                                    best_final=[0.73, 0.73] if w == 4 else [0.72, 0.72]),
        }
    return out


def test_page_table_puts_every_w_in_one_table() -> None:
    """The race and savings figures of W = 4 and W = 16 are columns of ONE table: one row per
    method, each W's time (speed-up), seeds, best at budget and saved; loss, and the CPU ms of
    both W in one cell; the oracle (race only) has no savings."""
    table = LCTable.load(DEFAULT_TABLE)
    races = [M.Race(workers=4, seeds=2), M.Race(workers=16, seeds=2)]
    savings = [M.Savings(workers=4, seeds=2), M.Savings(workers=16, seeds=2)]
    lines = M.page_table(table, races, savings, _results())
    rows = [ln for ln in lines if ln.startswith("|")]
    assert sum(ln.startswith("| method |") for ln in lines) == 1  # one table
    assert len(rows) == 2 + 7  # header, separator, one row per method
    assert len({ln.count("|") for ln in rows}) == 1  # every row has every column
    header = rows[0]
    assert "W = 4: time to target s (speed-up)" in header and "W = 16:" in header
    assert header.count("saved; loss") == 2 and "CPU ms per result (W = 4 / 16)" in header
    cells = {ln.split(" | ")[0][2:]: ln.split(" | ")[1:] for ln in rows[2:]}
    # ASHA: W = 4 median 17.5 s = 80 / 17.5 = 4.57x, W = 16 8.8 s; 87.5 % of FIFO's epochs saved
    assert cells["ASHA"][:4] == ["17.5 (4.57x)", "2/2", "0.7300", "87.5 %; 0.00 / 0.00 %"]
    assert cells["ASHA"][4:8] == ["8.8 (4.57x)", "2/2", "0.7300", "87.5 %; 0.00 / 0.00 %"]
    assert cells["ASHA"][8] == "0.020 / 0.020 |"
    assert cells["Hyperband"][0] == "never (n/a)"
    assert cells["Ray ASHAScheduler"][3] == "84.0 %; 2.05 / 4.11 %"  # median / worst seed
    assert cells[M.ORACLE][3] == "-" and cells[M.ORACLE][7] == "-"
    assert "0.7247" in lines[0]  # the table's target and its budgets per W
    assert f"{races[0].budget(table):.0f} s (W = 4) / {races[1].budget(table):.0f} s (W = 16)" \
        in lines[0]


def test_targets_are_one_line_per_kind_with_every_case() -> None:
    table = LCTable.load(DEFAULT_TABLE)
    out = M.targets(_results(), table, 16)
    assert len(out) <= 4 and out[0] == "**Targets**, measured:"
    speed, versus, saving = out[1:]
    # 40 / 8.8 s = 4.57x >= 4; the oracle bound 40 / 2.5 = 16x
    assert speed.startswith("- PASS: ASHA reaches the target >= 4x sooner than FIFO at W = 16")
    assert "4.57x (median 8.8 s vs 40.0 s; the oracle bound" in speed and "16.00x" in speed
    assert versus.startswith("- PASS (2 of 2 pass): against the reference method at W = 16")
    assert "ASHA no later than Ray's ASHAScheduler 8.8 vs 10.0 (seed by seed sooner in 1, " \
           "as soon in 1 and later in 0 of 2) PASS" in versus
    assert "Hyperband + TPESearch sooner than Hyperband with random sampling 15.0 vs never " \
           "PASS" in versus
    # MedianStopping saves 60 % at W = 4 (PASS) and 80 % at W = 16 with a 1.37 % loss (MISS)
    assert saving.startswith("- MISS (1 of 2 pass): early stopping saves >= 40 %")
    assert "MedianStopping at W = 4 60.0 % / 0.00 % PASS" in saving
    assert "MedianStopping at W = 16 80.0 % / 1.37 % MISS" in saving
