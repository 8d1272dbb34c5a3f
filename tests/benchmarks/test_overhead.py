"""benchmarks/overhead.py: a smoke run of the overhead benchmark through real Tune runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks._report import QUICK_MARK, read_section


def test_overhead_quick_run_reports_every_configuration(ray_session, tmp_path: Path) -> None:
    from benchmarks.overhead import VANILLA, main

    page = tmp_path / "R.md"
    assert main(["--quick", "--trials", "4", "--iters", "3", "--only", "ASHA",
                 "--write", "--results", str(page)]) == 0
    section = read_section("overhead", page)
    assert section is not None and QUICK_MARK in section
    rows = {r.split("|")[1].strip(): [c.strip() for c in r.split("|")[2:-1]]
            for r in section.splitlines() if r.startswith("| ") and "---" not in r}
    assert set(rows) == {"configuration", VANILLA, "ASHA"}
    for name in (VANILLA, "ASHA"):
        trials, results, errors = (int(x) for x in rows[name][:3])
        assert trials == 4 and errors == 0
        assert 4 <= results <= 12  # at least one result per trial, at most 3
        assert float(rows[name][4]) > 0 and float(rows[name][6]) > 0  # ms per trial / result
    assert int(rows[VANILLA][1]) == 12  # FIFO: every trial reports all 3 results
    assert "Within 10 % of vanilla Tune's wall time per trial" in section


def test_overhead_rejects_unknown_configurations(capsys) -> None:
    from benchmarks.overhead import main

    with pytest.raises(SystemExit):
        main(["--quick", "--only", "NoSuchSearch"])
    assert "--only: unknown configuration(s) ['NoSuchSearch']" in capsys.readouterr().err
