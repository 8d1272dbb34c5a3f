"""Median simple regret against the number of evaluations, sequential and in batches.

Where ``search_quality.py`` reports the regret after the last evaluation, this gives the
whole curve of each method on one synthetic problem, so that a batch run can be compared with
a sequential one at the same number of evaluations; it writes a table and a plot into
RESULTS.md (a ``--quick`` run only with ``--write``, marked as quick-mode figures):

    python benchmarks/regret_curve.py                 # full: 4 methods, hartmann6, 20 seeds
    python benchmarks/regret_curve.py --quick         # smoke test
    python benchmarks/regret_curve.py --method GPSearch-tr0.6 --batches 8 --seeds 20 --no-write

Same drivers as ``search_quality.py`` (``run``); deterministic per seed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._methods import available_methods
from benchmarks._problems import synthetic_problems
from benchmarks._report import RESULTS, Report, pyplot
from benchmarks.search_quality import run

SECTION = "regret_curve"
DEFAULT_METHODS = "GPSearch,TPESearch,EvolutionSearch,random"
FULL_COMMAND = "python benchmarks/regret_curve.py"


def curve(method: str, problem: str, seeds: int, budget: int, batch: int) -> np.ndarray:
    """Regret of the best loss so far, shape ``(seeds, budget)``; ``batch < 0``: ``-batch``
    asynchronous workers (``search_quality.run``), losses in completion order."""
    prob = {p.name: p for p in synthetic_problems()}[problem]
    rows = []
    for seed in range(seeds):
        losses = run(method, prob, seed, budget, batch)
        rows.append(np.maximum(np.minimum.accumulate(losses) - prob.optimum, 0.0))
    return np.array(rows)


def _label(batch: int) -> str:
    return "sequential" if batch == 1 else (f"batch {batch}" if batch > 0 else
                                            f"{-batch} async workers")


def plot(curves: dict[tuple[str, int], np.ndarray], problem: str, path: Path) -> str:
    """Median regret curves, one line per method and batch mode (log scale)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    colors = {}
    for (method, batch), c in curves.items():
        color = colors.setdefault(method, f"C{len(colors)}")
        style = {1: "-", 8: "--"}.get(batch, ":")
        n = np.arange(1, c.shape[1] + 1)
        ax.plot(n, np.maximum(np.median(c, axis=0), 1e-12), style, color=color,
                label=f"{method}, {_label(batch)}")
    ax.set_yscale("log")
    ax.set_xlabel("evaluations")
    ax.set_ylabel("median simple regret")
    ax.set_title(problem, fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    text = Report.save_plot(fig, path)
    plt.close(fig)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke test: 2 seeds, 16 evaluations")
    ap.add_argument("--method", default=DEFAULT_METHODS, help="comma-separated methods")
    ap.add_argument("--problem", default="hartmann6", choices=[p.name for p in synthetic_problems()])
    ap.add_argument("--seeds", type=int, default=None, help="seeds (20; 2 with --quick)")
    ap.add_argument("--budget", type=int, default=None, help="evaluations (48; 16 with --quick)")
    ap.add_argument(
        "--batches", default="1,8,-8",
        help="comma-separated batch sizes (1 = sequential, -8 = 8 asynchronous workers)",
    )
    ap.add_argument("--at", default=None, help="evaluation counts in the table")
    ap.add_argument("--results", default=str(RESULTS), help="the results page to write")
    ap.add_argument("--write", action="store_true", help="write RESULTS.md even with --quick")
    ap.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    args = ap.parse_args(argv)
    named = available_methods()
    methods = [m for m in args.method.split(",") if m]
    unknown = [m for m in methods if m not in named]
    if unknown:
        raise ValueError(f"--method: must be one of {sorted(named)}, got {unknown}")
    seeds = args.seeds or (2 if args.quick else 20)
    budget = args.budget or (16 if args.quick else 48)
    at_text = args.at or ("8,16" if args.quick else "16,32,48")
    at = [int(x) for x in at_text.split(",") if 0 < int(x) <= budget]
    batches = [int(x) for x in args.batches.split(",")]
    report = Report(SECTION, argv, quick=args.quick, full_command=FULL_COMMAND)
    curves: dict[tuple[str, int], np.ndarray] = {}
    for m in methods:
        for b in batches:
            if b < 0 and not named[m].async_ok:
                continue
            curves[(m, b)] = curve(m, args.problem, seeds, budget, b)
            report.sample_load()
    modes = [b for b in batches if any((m, b) in curves for m in methods)]
    lines = [
        (f"Median simple regret on {args.problem} over {seeds} seeds after n evaluations "
         "(batch 8: each method's default batch strategy; async: each suggestion asked with the "
         "other workers' trials pending, as Tune does; n/a: the method has no pending trials):"),
        "",
        "| method | " + " | ".join(f"{_label(b)}, n={n}" for b in modes for n in at) + " |",
        "|---|" + "---|" * (len(modes) * len(at)),
    ]
    for m in methods:
        cells = []
        for b in modes:
            med = np.median(curves[(m, b)], axis=0) if (m, b) in curves else None
            cells += ["n/a" if med is None else f"{med[n - 1]:.3g}" for n in at]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    text = "\n".join(report.header() + lines)
    print(text)
    results = Path(args.results)
    if not args.no_write and (not args.quick or args.write) and report.can_write(results):
        text += "\n\n" + plot(curves, args.problem, report.plot_path(results))
        report.write(text, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
