"""ENAS on scikit-learn's digits with Ray Tune: an ENAS controller (``ENASSearch``) samples
micro-cell architectures, trials train and evaluate them on a supergraph whose weights live in
a ParamStore (Rafiki's schedule: TRAIN / EVAL periods, FINAL_EVAL, one FINAL_TRAIN from
scratch), all on 2 CPU cores in minutes.

    python examples/nas/enas_digits.py            # ~40 search trials
    python examples/nas/enas_digits.py --quick    # a smoke run

Prints the phases run, then "final architecture: [...]" and "final accuracy: 0.xx".
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import uuid

import ray
from ray import tune

from rafiki_ray.nas import ENASSearch, RafikiSchedule, directive_trainable
from rafiki_ray.nas.micro import MicroDigits, load_digits_split
from rafiki_ray.sharing import ParamStore
from rafiki_ray.spaces import Fixed, SearchSpace, from_knobs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--trials", type=int, default=40, help="search trials before the final phase")
    ap.add_argument("--storage", default=None)
    args = ap.parse_args()
    n_search = 8 if args.quick else args.trials
    over = {"search_channels": 4, "channels": 8, "epochs": 2, "quick_eval_size": 100} \
        if args.quick else {}

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    (Xt, yt), val = load_digits_split(seed=0)
    train = (Xt[:400], yt[:400]) if args.quick else (Xt, yt)
    space = from_knobs(MicroDigits.get_knob_config())
    space = SearchSpace({**dict(space.items()), **{k: Fixed(v) for k, v in over.items()}})
    store_name = f"enas-digits-{uuid.uuid4().hex[:8]}"
    store = ParamStore.create(store_name)
    searcher = ENASSearch(
        seed=0,
        update_every=5,
        schedule=RafikiSchedule(n_train=1, n_eval=3, n_final_eval=3 if args.quick else 10,
                                final_after_trials=n_search),
    )
    tuner = tune.Tuner(
        directive_trainable(MicroDigits, train_data=train, eval_data=val, store_name=store_name),
        param_space=space.to_tune(),
        tune_config=tune.TuneConfig(search_alg=searcher, metric="score", mode="max",
                                    num_samples=-1, max_concurrent_trials=2),
        run_config=tune.RunConfig(storage_path=args.storage or tempfile.mkdtemp(),
                                  name="enas_digits", verbose=0),
    )
    df = tuner.fit().get_dataframe()
    store.shutdown()
    print("trials per phase:", dict(collections.Counter(df["phase"])))
    final = df[df["phase"] == "FINAL_TRAIN"].iloc[0]
    print("final architecture:", list(final["config/cell_arch"]))
    print(f"final accuracy: {final['score']:.4f}")


if __name__ == "__main__":
    main()
