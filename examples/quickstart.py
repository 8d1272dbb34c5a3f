"""Quickstart: tune a scikit-learn classifier on the bundled digits data with Ray Tune, from an
NNI search space (``examples/search_space.json``).

The space is a nested NNI choice: an SVM (log-uniform ``C`` and ``gamma``) or a random forest
(``n_estimators`` from a ``quniform``, ``max_depth`` from a ``randint``), plus whether to scale
the pixels. ``from_nni`` turns it into a rafiki_ray ``SearchSpace``; ``to_tune()`` gives Tune's
``param_space``, searched here by Tune's default random search (BasicVariantGenerator).

    python examples/quickstart.py                  # 12 trials, under a minute on 2 cores
    python examples/quickstart.py --num-samples 4  # quicker
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # keep Tune's console output short

import ray
from ray import tune
from ray.tune.search import BasicVariantGenerator

from rafiki_ray.spaces import from_nni

HERE = Path(__file__).resolve().parent


def train_digits(config: dict[str, Any]) -> None:
    """One trial: 3-fold cross-validated accuracy of the configured classifier."""
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    X, y = load_digits(return_X_y=True)
    model = config["model"]  # NNI nested choice: {"_name": ..., **its own parameters}
    if model["_name"] == "svm":
        clf: Any = SVC(C=model["C"], gamma=model["gamma"])
    else:
        clf = RandomForestClassifier(
            n_estimators=int(model["n_estimators"]),  # quniform draws floats: 20.0, 40.0, ...
            max_depth=model["max_depth"],
            random_state=0,
            n_jobs=1,
        )
    if config["scale"]:
        clf = make_pipeline(StandardScaler(), clf)
    scores = cross_val_score(clf, X, y, cv=3)
    tune.report({"accuracy": float(scores.mean())})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-samples", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--space", default=str(HERE / "search_space.json"))
    parser.add_argument("--storage", default=None, help="Tune storage_path (default: a temp dir)")
    args = parser.parse_args(argv)

    space = from_nni(Path(args.space).read_text())  # a dict or, as T9k stores it, a JSON string
    print(f"Search space from {args.space}:\n  {space!r}\n")

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        start = time.time()
        tuner = tune.Tuner(
            train_digits,
            param_space=space.to_tune(),
            tune_config=tune.TuneConfig(
                metric="accuracy",
                mode="max",
                num_samples=args.num_samples,
                # Tune's default search, seeded; its own max_concurrent (Tune ignores
                # TuneConfig.max_concurrent_trials when given a generator instance).
                search_alg=BasicVariantGenerator(random_state=args.seed, max_concurrent=2),
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name="quickstart",
                storage_path=args.storage or tempfile.mkdtemp(prefix="rafiki_ray_quickstart_"),
                verbose=0,
            ),
        )
        results = tuner.fit()
        elapsed = time.time() - start
    finally:
        ray.shutdown()

    best = results.get_best_result()
    print(f"Best configuration (accuracy {best.metrics['accuracy']:.4f}):")
    print(f"  {best.config}\n")

    import pandas as pd

    df = results.get_dataframe()
    columns = ["accuracy"] + sorted(c for c in df.columns if c.startswith("config/"))
    table = df[columns].rename(columns=lambda c: c.removeprefix("config/"))
    table = table.sort_values("accuracy", ascending=False).reset_index(drop=True)
    with pd.option_context("display.width", 140, "display.max_columns", 20, "display.precision", 4):
        print(table.to_string())
    print(f"\n{len(df)} trials in {elapsed:.1f} s; results in {results.experiment_path}")


if __name__ == "__main__":
    main()
