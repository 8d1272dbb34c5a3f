"""Median simple regret against the number of evaluations, sequential and in batches.

Where ``search_quality.py`` reports the regret after the last evaluation, this prints the
whole curve for one method on one synthetic problem, so that a batch run can be compared with
a sequential one at the same number of evaluations or of model updates:

    python benchmarks/regret_curve.py --method GPSearch --problem hartmann6 --seeds 20
    python benchmarks/regret_curve.py --method GPSearch-tr0.6 --batches 8 --seeds 20
    python benchmarks/regret_curve.py --method TPESearch --batches 1,8,-8 --seeds 100

Same drivers as ``search_quality.py`` (``run_one``); deterministic per seed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._methods import available_methods  # noqa: E402
from benchmarks._problems import synthetic_problems  # noqa: E402
from benchmarks.search_quality import run  # noqa: E402


def curve(method: str, problem: str, seeds: int, budget: int, batch: int) -> np.ndarray:
    """Regret of the best loss so far, shape ``(seeds, budget)``; ``batch < 0``: ``-batch``
    asynchronous workers (``search_quality.run``), losses in completion order."""
    prob = {p.name: p for p in synthetic_problems()}[problem]
    rows = []
    for seed in range(seeds):
        losses = run(method, prob, seed, budget, batch)
        rows.append(np.maximum(np.minimum.accumulate(losses) - prob.optimum, 0.0))
    return np.array(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--method", default="GPSearch")
    ap.add_argument("--problem", default="hartmann6", choices=[p.name for p in synthetic_problems()])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--budget", type=int, default=48)
    ap.add_argument(
        "--batches", default="1,8",
        help="comma-separated batch sizes (1 = sequential, -8 = 8 asynchronous workers)",
    )
    ap.add_argument("--at", default="8,16,24,32,40,48", help="evaluation counts to print")
    args = ap.parse_args(argv)
    if args.method not in available_methods():
        raise ValueError(f"--method: must be one of {sorted(available_methods())}, got {args.method!r}")
    at = [int(x) for x in args.at.split(",") if 0 < int(x) <= args.budget]
    batches = [int(x) for x in args.batches.split(",")]
    print(f"{args.method} on {args.problem}: median regret over {args.seeds} seeds after n evaluations\n")
    print("| batch | " + " | ".join(f"n={n}" for n in at) + " |")
    print("|---|" + "---|" * len(at))
    for b in batches:
        med = np.median(curve(args.method, args.problem, args.seeds, args.budget, b), axis=0)
        print(f"| {b} | " + " | ".join(f"{med[n - 1]:.3g}" for n in at) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
