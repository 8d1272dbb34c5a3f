"""Rafiki on Ray: tune a PyTorch and a scikit-learn model on digits, deploy the top 3, serve.

The two model classes live in ``examples/models/`` (``PyFeedForward``: PyTorch, all five
Rafiki policies; ``SkSvm``: Rafiki's original scikit-learn SVM). For each, ``tune_model``
picks Rafiki's advisor from its knobs (PyFeedForward has SHARE_PARAMS: GP Bayesian
optimisation with GLOBAL_BEST parameter sharing; SkSvm: GP Bayesian optimisation), runs the
trials under a small budget, and ``deploy`` ensembles the best 3 trials. The better model is
then served over HTTP with Ray Serve and asked about a few test images.

    python examples/rafiki_digits.py            # 8 trials per model, a few minutes on 2 cores
    python examples/rafiki_digits.py --quick    # 3 trials per model
    python examples/rafiki_digits.py --no-serve # skip the HTTP part (no ray[serve] needed)
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
import urllib.request
from pathlib import Path

os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # keep Tune's console output short
os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread per trial on a small machine

import numpy as np
import ray

from rafiki_ray.models import deploy, load_model_class, tune_model

HERE = Path(__file__).resolve().parent


def digits() -> tuple[tuple, tuple, tuple]:
    """Train / validation / test splits of scikit-learn's bundled digits (8x8 images)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    order = np.random.default_rng(0).permutation(len(d.target))
    X, y = d.images[order], d.target[order]
    return (X[:900], y[:900]), (X[900:1300], y[900:1300]), (X[1300:], y[1300:])


def accuracy(predictor, X: np.ndarray, y: np.ndarray) -> float:
    return float((np.asarray(predictor.predict(X.tolist())).argmax(1) == y).mean())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=8, help="trials per model")
    ap.add_argument("--quick", action="store_true", help="3 trials per model")
    ap.add_argument("--storage", default=None, help="Tune storage path (default: a temp dir)")
    ap.add_argument("--no-serve", action="store_true", help="skip serving over HTTP")
    args = ap.parse_args()
    trials = 3 if args.quick else args.trials
    storage = args.storage or tempfile.mkdtemp(prefix="rafiki_digits_")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    train, val, (Xt, yt) = digits()

    deployed = {}
    for name in ("PyFeedForward", "SkSvm"):
        model_class = load_model_class(HERE / "models" / f"{name}.py", name)
        result = tune_model(model_class, train, val,
                            {"MODEL_TRIAL_COUNT": trials, "TIME_HOURS": 0.25}, seed=0,
                            storage_path=storage, name=name, max_concurrent_trials=2,
                            progress=False)
        print(f"{name}: advisor {result.advisor.name} ({result.advisor.reason})")
        print(f"{name}: {len(result.table)} trials, best validation accuracy "
              f"{result.best_score:.4f} with {result.best_knobs}")
        single, top3 = deploy(result, k=1), deploy(result, k=3)
        print(f"{name}: test accuracy of the best trial {accuracy(single, Xt, yt):.4f}, "
              f"of the top-3 ensemble {accuracy(top3, Xt, yt):.4f}")
        deployed[name] = (result.best_score, top3)

    name, (_, predictor) = max(deployed.items(), key=lambda kv: kv[1][0])
    queries = Xt[:5]
    if args.no_serve:
        answers = predictor.predict(queries.tolist())
        where = "in process"
    else:
        from rafiki_ray.models import serve, shutdown_serve

        url = serve(predictor, port=free_port(), name="digits")
        request = urllib.request.Request(
            url, data=json.dumps({"queries": queries.tolist()}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            answers = json.loads(response.read())["predictions"]
        shutdown_serve()
        where = f"over HTTP at {url}"
    labels = [int(np.argmax(a)) for a in answers]
    print(f"{name} top-3 ensemble, {where}: predicted {labels}, true {yt[:5].tolist()}")
    ray.shutdown()


if __name__ == "__main__":
    main()
