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
