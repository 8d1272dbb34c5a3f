"""The results page: each benchmark script writes its own section, with its provenance."""

from __future__ import annotations

from pathlib import Path

from benchmarks._report import QUICK_MARK, RESULTS, Report, read_section, write_section

SECTIONS = ("search_quality", "regret_curve", "multi_fidelity", "pbt_exploit", "overhead",
            "rafiki_advisors", "nas")


def test_the_page_has_one_section_per_benchmark_and_stays_short() -> None:
    text = RESULTS.read_text()
    for name in SECTIONS:
        assert text.count(f"<!-- BEGIN {name} -->") == 1, name
        assert text.count(f"<!-- END {name} -->") == 1, name
        assert (RESULTS.parent / f"{name}.py").exists(), name
    assert len(text.splitlines()) <= 220
    # every plot the page shows is committed next to it, and small
    for line in text.splitlines():
        if line.startswith("!["):
            png = RESULTS.parent / line.split("(", 1)[1].rstrip(")")
            assert png.exists() and png.stat().st_size < 200_000, png


def test_write_section_replaces_only_its_own_section(tmp_path: Path) -> None:
    page = tmp_path / "R.md"
    page.write_text("# title\n\n<!-- BEGIN a -->\nold a\n<!-- END a -->\n\nkept\n\n"
                    "<!-- BEGIN b -->\nold b\n<!-- END b -->\n")
    write_section("a", "new a\n| x |", page)
    assert read_section("a", page) == "new a\n| x |\n"
    assert read_section("b", page) == "old b\n"
    assert "# title" in page.read_text() and "kept" in page.read_text()
    write_section("c", "appended", page)  # a page without the section gets it at the end
    assert page.read_text().rstrip().endswith("<!-- END c -->")
    assert read_section("nope", page) is None


def test_header_says_command_date_machine_and_commit() -> None:
    r = Report("demo", ["--seeds", "3"], quick=False, full_command="python benchmarks/demo.py")
    text = "\n".join(r.header())
    assert "Command: `python benchmarks/demo.py --seeds 3`" in text
    assert "UTC" in text and "commit " in text and "Machine: " in text and "cores" in text
    assert QUICK_MARK not in text
    quick = "\n".join(Report("demo", ["--quick"], quick=True,
                             full_command="python benchmarks/demo.py --seeds 60").header())
    assert QUICK_MARK in quick and "Full-size command: `python benchmarks/demo.py --seeds 60`" in quick


def test_a_quick_run_never_replaces_full_size_figures(tmp_path: Path) -> None:
    page = tmp_path / "R.md"
    write_section("demo", "full-size table", page)
    quick = Report("demo", ["--quick"], quick=True, full_command="x")
    assert not quick.write("quick table", page)
    assert read_section("demo", page) == "full-size table\n"
    full = Report("demo", [], quick=False, full_command="x")
    assert full.write(f"{QUICK_MARK} no more", page)  # a full run replaces anything
    assert quick.write("quick table", page)  # and a quick run replaces quick figures
    assert read_section("demo", page) == "quick table\n"


def test_regret_curve_writes_its_section_and_plot(tmp_path: Path) -> None:
    from benchmarks.regret_curve import main

    page = tmp_path / "R.md"
    before = RESULTS.read_text()
    assert main(["--quick", "--write", "--results", str(page), "--method", "random",
                 "--batches", "1,-4"]) == 0
    section = read_section("regret_curve", page)
    assert section is not None and QUICK_MARK in section
    assert "| method | sequential, n=8 | sequential, n=16 | 4 async workers, n=8 |" in section
    row = next(r for r in section.splitlines() if r.startswith("| random |"))
    assert all(float(c) >= 0 for c in row.split("|")[2:-1])
    assert "![regret_curve](regret_curve.png)" in section
    assert (tmp_path / "regret_curve.png").stat().st_size > 1000
    assert RESULTS.read_text() == before


def test_regret_curve_quick_run_without_write_leaves_the_page_alone(tmp_path: Path) -> None:
    from benchmarks.regret_curve import main

    page = tmp_path / "R.md"
    assert main(["--quick", "--results", str(page), "--method", "random", "--batches", "1"]) == 0
    assert not page.exists() and not (tmp_path / "regret_curve.png").exists()


def test_multi_fidelity_writes_its_section_and_speedup_plot(tmp_path: Path) -> None:
    from benchmarks.multi_fidelity import main

    page = tmp_path / "R.md"
    assert main(["--quick", "--write", "--results", str(page), "--methods", "ASHA"]) == 0
    section = read_section("multi_fidelity", page)
    assert section is not None and QUICK_MARK in section
    assert "| ASHA |" in section and "| FIFO random |" in section and "**Targets**" in section
    assert "Notes" not in section
    assert (tmp_path / "multi_fidelity.png").stat().st_size > 1000


def test_search_quality_writes_its_section(tmp_path: Path) -> None:
    from benchmarks.search_quality import main

    page = tmp_path / "R.md"
    assert main(["--quick", "--write", "--results", str(page), "--methods", "random",
                 "--skip", "parallel,timing,bayesmark"]) == 0
    section = read_section("search_quality", page)
    assert section is not None and QUICK_MARK in section and "| random |" in section


def test_bayes_opt_is_a_peer_on_every_kind_of_space() -> None:
    """bayesian-optimization's own optimizer: configurations inside the space (integers,
    categoricals and a conditional through the flattening), seeded, and timed at a given
    number of observations like the other methods."""
    import numpy as np

    from benchmarks._methods import available_methods
    from benchmarks._problems import synthetic_problems
    from benchmarks.search_quality import run_one, time_suggestion

    method = available_methods()["bayes_opt-GP"]
    assert not method.async_ok  # no notion of pending trials: not in the asynchronous part
    for problem in synthetic_problems():
        drv = method.make(problem.space, 0)
        for _ in range(4):  # the first is a random draw, the others come from its GP
            token, cfg = drv.ask()
            assert problem.space.contains(cfg), (problem.name, cfg)
            drv.tell(token, float(problem.loss(cfg)))
    mixed = {p.name: p for p in synthetic_problems()}["mixed"]
    losses = run_one("bayes_opt-GP", mixed, 1, 4, 1)
    assert np.all(np.isfinite(losses)) and losses == run_one("bayes_opt-GP", mixed, 1, 4, 1)
    assert time_suggestion("bayes_opt-GP", 6) > 0


def test_check_ray_restarts_a_ray_with_reserved_cpus_and_says_so(ray_session) -> None:
    import ray

    from tests.conftest import RAY_INIT

    report = Report("overhead", [], quick=False, full_command="x")
    assert not report.check_ray(None, "a run in a Ray the script did not start")
    assert report.header()[1].endswith("while it ran")  # nothing checked, nothing said
    assert not report.check_ray(RAY_INIT, "run 1", timeout_s=5.0)
    assert report.header()[1].endswith("; Ray's CPUs all free before every run")

    @ray.remote(num_cpus=1)
    class Holder:  # holds a CPU past the run, as the bundle Ray leaks does
        def ping(self) -> int:
            return 1

    holder = Holder.remote()
    assert ray.get(holder.ping.remote()) == 1
    assert report.check_ray(RAY_INIT, "run 2", timeout_s=0.5)
    assert ray.available_resources().get("CPU") == 2
    header = report.header()
    assert header[2].startswith("Ray restarted because CPUs stayed reserved after a run")
    assert header[2].endswith("before run 2 ({'CPU': 1.0} held)") and header[-1] == ""
