"""benchmarks/rafiki_advisors.py's results table: one row per method, one column per model,
every figure of every (model, method) kept (rendering only; the runs are in
tests/models/test_benchmark_smoke.py)."""

from __future__ import annotations

import benchmarks.rafiki_advisors as R

MODELS = ("SkSvm", "PyFeedForward", "SkDt")
ADVISOR = {"PyFeedForward": "BAYES_OPT_WITH_PARAM_SHARING", "SkDt": "BAYES_OPT",
           "SkSvm": "BAYES_OPT"}


def _rows() -> list[dict]:
    """Two seeds of every (model, method); figures that encode model, method and seed."""
    rows = []
    for i, model in enumerate(MODELS):
        for j, method in enumerate(R.METHODS):
            advisor = {"auto": ADVISOR[model], "random": "RANDOM"}.get(method, "CUSTOM")
            for seed in range(2):
                base = 0.5 + 0.1 * i + 0.01 * j + 0.002 * seed
                rows.append({"model": model, "method": method, "seed": seed,
                             "advisor": advisor, "val": base, "test_best": base + 0.001,
                             "test_top3": base + 0.002 + 0.0001 * (model == "SkDt"),
                             "wall_s": 10.0 * (i + 1) + j + seed})
    return rows


def test_one_row_per_method_with_every_models_figures() -> None:
    lines = R.table(_rows()).splitlines()
    assert lines[0] == "| method | PyFeedForward | SkDt | SkSvm |"
    assert lines[1] == "|---|---|---|---|"
    assert len(lines) == 2 + len(R.METHODS)  # 15 (model, method) rows became 5
    cells = {ln.split(" | ")[0][2:]: ln[:-2].split(" | ")[1:] for ln in lines[2:]}
    assert [ln.split(" | ")[0][2:].split()[0] for ln in lines[2:]] == list(R.METHODS)
    # the advisor is in the row when it is the same for every model, else in each cell
    assert "random (RANDOM)" in cells and "optuna (CUSTOM)" in cells and "auto" in cells
    # auto on SkDt (model 2 of the sorted columns, i = 2 in _rows): medians over the 2 seeds
    assert cells["auto"][1] == "0.7010 / 0.7020 / 0.7031 / 30.5 (BAYES_OPT)"
    assert cells["auto"][0].endswith("(BAYES_OPT_WITH_PARAM_SHARING)")
    assert cells["optuna (CUSTOM)"][2] == "0.5410 / 0.5420 / 0.5430 / 14.5"
    assert cells["random (RANDOM)"][0] == "0.6110 / 0.6120 / 0.6130 / 21.5"


def test_a_method_missing_for_a_model_is_a_dash() -> None:
    rows = [r for r in _rows() if (r["model"], r["method"]) != ("SkDt", "optuna")]
    line = next(ln for ln in R.table(rows).splitlines() if ln.startswith("| optuna"))
    assert line.split(" | ")[2] == "-"


def test_section_is_eleven_lines_under_its_header(tmp_path) -> None:
    """What --write puts under the report header: the run's size and what a cell holds, the
    5-row table, the ensemble sentence (the 15-row table made this section 10 lines longer)."""
    from benchmarks._report import read_section, write_section

    lines = R.section(_rows(), 20, 2)
    page = tmp_path / "R.md"
    write_section(R.SECTION, "\n".join(lines), page)
    text = read_section(R.SECTION, page).strip().splitlines()
    assert len(text) == 11
    assert text[0].startswith("20 trials per run (one at a time), 2 seed(s)")
    assert f"Each cell: {R.CELL}." in text[0]
    assert text[-1] == "Deployed ensemble >= best single trial on the test split in 30 of 30 runs."
