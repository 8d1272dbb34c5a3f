"""Problems for ``search_quality.py``: one dataclass per kind, each a space + a loss to minimise.

* :class:`Synthetic`: Branin and Hartmann6 with known optima (Dixon & Szego 1978; the
  values used by bayesmark, BoTorch and the peers in shared/reference/benchmarks.md);
* :class:`Synthetic` ``mixed``: a Branin-based integer / categorical / conditional problem
  whose optimum is known by construction;
* :class:`SklearnProblem`: a bayesmark-style problem (model x bundled data set x metric),
  loss = - mean 5-fold ``cross_val_score`` on an 80 % training split.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rafiki_ray.spaces import Categorical, Conditional, Float, Int, Option, SearchSpace

BRANIN_OPT = 0.397887357729739
HARTMANN6_OPT = -3.322368011391339

_H_A = np.array(
    [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
)
_H_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)
_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def branin(x1: float, x2: float) -> float:
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def hartmann6(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=float)
    return float(-(_H_ALPHA * np.exp(-(_H_A * (x[None, :] - _H_P) ** 2).sum(1))).sum())


@dataclass(frozen=True)
class Synthetic:
    """A cheap function with a known optimum: regret = best loss - ``optimum``."""

    name: str
    space: SearchSpace
    loss: Callable[[dict[str, Any]], float]
    optimum: float
    budget: int = 50

    def regret(self, best_loss: float) -> float:
        return max(best_loss - self.optimum, 0.0)


def _mixed_loss(cfg: dict[str, Any]) -> float:
    # Branin on a 1/100 integer grid of x2, plus a categorical offset and a conditional branch
    x1 = cfg["x1"]
    x2 = cfg["x2_centi"] / 100.0
    offset = {"a": 0.0, "b": 0.5, "c": 2.0}[cfg["shift"]]
    branch = cfg["branch"]
    extra = (branch["w"] - 0.3) ** 2 * 10 if branch["_name"] == "quad" else 1.0 + 0.0 * branch["k"]
    return branin(x1, x2) + offset + extra


def synthetic_problems(budget: int = 50) -> list[Synthetic]:
    mixed_space = SearchSpace(
        {
            "x1": Float(-5.0, 10.0),
            "x2_centi": Int(0, 1500),
            "shift": Categorical(("a", "b", "c")),
            "branch": Conditional(
                (Option("quad", SearchSpace({"w": Float(0.0, 1.0)})), Option("flat", SearchSpace({"k": Int(1, 8)})))
            ),
        }
    )
    # the mixed optimum: x2 lives on a 0.01 grid, so minimise Branin over x1 on the grid
    # rows next to Branin's three minimisers (x2 = 12.275, 2.275, 2.475)
    from scipy.optimize import minimize_scalar

    best_grid = math.inf
    for k in (1227, 1228, 227, 228, 247, 248):
        grid = np.linspace(-5.0, 10.0, 30001)
        i = int(np.argmin([branin(x, k / 100.0) for x in grid[::100]])) * 100
        r = minimize_scalar(lambda x, k=k: branin(x, k / 100.0), bounds=(grid[max(i - 100, 0)], grid[min(i + 100, 30000)]), method="bounded", options={"xatol": 1e-10})
        best_grid = min(best_grid, float(r.fun))
    return [
        Synthetic(
            "branin",
            SearchSpace({"x1": Float(-5.0, 10.0), "x2": Float(0.0, 15.0)}),
            lambda c: branin(c["x1"], c["x2"]),
            BRANIN_OPT,
            budget,
        ),
        Synthetic(
            "hartmann6",
            SearchSpace({f"x{i}": Float(0.0, 1.0) for i in range(6)}),
            lambda c: hartmann6(np.array([c[f"x{i}"] for i in range(6)])),
            HARTMANN6_OPT,
            budget,
        ),
        Synthetic("mixed", mixed_space, _mixed_loss, best_grid, budget),
    ]


# ----------------------------------------------------------------------------- bayesmark-style
MODELS = ("kNN", "SVM", "DT", "RF", "MLP-adam", "MLP-sgd", "ada", "lasso", "linear")
DATASETS = ("iris", "wine", "digits", "breast", "diabetes")


_TREE_KNOBS: dict[str, Any] = {
    "max_depth": Int(1, 15),
    "min_samples_split": Float(0.01, 0.99, log=True),
    "min_samples_leaf": Float(0.01, 0.49, log=True),
    "min_weight_fraction_leaf": Float(0.01, 0.49, log=True),
    "max_features": Float(0.01, 0.99, log=True),
    "min_impurity_decrease": Float(0.0, 0.5),
}
_TREE_ORDER = {
    "DT": tuple(_TREE_KNOBS),
    "RF": (
        "max_depth", "max_features", "min_samples_split", "min_samples_leaf",
        "min_weight_fraction_leaf", "min_impurity_decrease",
    ),
}


def _model_space(model: str, regression: bool) -> SearchSpace:
    if model == "kNN":
        return SearchSpace({"n_neighbors": Int(1, 25), "p": Int(1, 4)})
    if model == "SVM":
        return SearchSpace({"C": Float(1.0, 1e3, log=True), "gamma": Float(1e-4, 1e-3, log=True), "tol": Float(1e-5, 1e-1, log=True)})
    if model in ("DT", "RF"):
        # the same six knobs; each model keeps its own key order (it fixes the searchers' dims)
        order = _TREE_ORDER[model]
        return SearchSpace({k: _TREE_KNOBS[k] for k in order})
    if model in ("MLP-adam", "MLP-sgd"):
        s: dict[str, Any] = {
            "hidden_layer_sizes": Int(50, 200),
            "alpha": Float(1e-5, 1e1, log=True),
            "batch_size": Int(10, 250),
            "learning_rate_init": Float(1e-5, 1e-1, log=True),
            "tol": Float(1e-5, 1e-1, log=True),
            "validation_fraction": Float(0.1, 0.9, log=True),
        }
        if model == "MLP-adam":
            s.update({"beta_1": Float(0.5, 0.99), "beta_2": Float(0.9, 1.0 - 1e-6, log=True), "epsilon": Float(1e-9, 1e-6, log=True)})
        else:
            s.update({"power_t": Float(0.1, 0.9, log=True), "momentum": Float(0.001, 0.999, log=True)})
        return SearchSpace(s)
    if model == "ada":
        return SearchSpace({"n_estimators": Int(10, 100), "learning_rate": Float(1e-4, 1e1, log=True)})
    if model == "lasso":
        return SearchSpace({"C": Float(1e-2, 1e2, log=True), "intercept_scaling": Float(1e-2, 1e2, log=True)}) if not regression else SearchSpace({"alpha": Float(1e-2, 1e2, log=True), "fit_intercept": Categorical((True, False))})
    if model == "linear":
        return SearchSpace({"C": Float(1e-2, 1e2, log=True), "intercept_scaling": Float(1e-2, 1e2, log=True)}) if not regression else SearchSpace({"alpha": Float(1e-2, 1e2, log=True), "fit_intercept": Categorical((True, False))})
    raise ValueError(f"model: unknown, got {model!r}")


def _build(model: str, regression: bool, cfg: dict[str, Any]) -> Any:
    from sklearn import ensemble, linear_model, neighbors, neural_network, svm, tree

    if model == "kNN":
        return (neighbors.KNeighborsRegressor if regression else neighbors.KNeighborsClassifier)(**cfg)
    if model == "SVM":
        return svm.SVR(**cfg) if regression else svm.SVC(probability=True, random_state=0, **cfg)
    if model == "DT":
        return (tree.DecisionTreeRegressor if regression else tree.DecisionTreeClassifier)(random_state=0, **cfg)
    if model == "RF":
        return (ensemble.RandomForestRegressor if regression else ensemble.RandomForestClassifier)(
            n_estimators=10, random_state=0, **cfg
        )
    if model.startswith("MLP"):
        solver = "adam" if model == "MLP-adam" else "sgd"
        cls = neural_network.MLPRegressor if regression else neural_network.MLPClassifier
        return cls(solver=solver, early_stopping=True, max_iter=40, random_state=0, **cfg)
    if model == "ada":
        return (ensemble.AdaBoostRegressor if regression else ensemble.AdaBoostClassifier)(random_state=0, **cfg)
    # liblinear is one-vs-rest (bayesmark's setting); scikit-learn >= 1.8 refuses it on 3+ classes
    # unless wrapped (iris, wine, digits gave NaN for every configuration before)
    from sklearn.multiclass import OneVsRestClassifier

    if model == "lasso":
        if regression:
            return linear_model.Lasso(random_state=0, **cfg)
        return OneVsRestClassifier(linear_model.LogisticRegression(penalty="l1", solver="liblinear",
                                                                   random_state=0, **cfg))
    if regression:
        return linear_model.Ridge(random_state=0, **cfg)
    return OneVsRestClassifier(linear_model.LogisticRegression(solver="liblinear", random_state=0, **cfg))


def _load(dataset: str) -> tuple[np.ndarray, np.ndarray, bool]:
    from sklearn import datasets

    loader = {
        "iris": datasets.load_iris,
        "wine": datasets.load_wine,
        "digits": datasets.load_digits,
        "breast": datasets.load_breast_cancer,
        "diabetes": datasets.load_diabetes,
    }[dataset]
    X, y = loader(return_X_y=True)
    return X, y, dataset == "diabetes"


@dataclass
class SklearnProblem:
    """bayesmark-style: ``loss = - mean 5-fold cross_val_score`` on a seeded 80 % split."""

    model: str
    dataset: str
    metric: str  # "acc" | "nll" (classification), "mse" | "mae" (regression)
    split_seed: int = 0
    _data: Any = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"{self.model}-{self.dataset}-{self.metric}"

    @property
    def regression(self) -> bool:
        return self.dataset == "diabetes"

    @property
    def space(self) -> SearchSpace:
        return _model_space(self.model, self.regression)

    def loss(self, cfg: dict[str, Any]) -> float:
        from sklearn.model_selection import cross_val_score, train_test_split
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if self._data is None:
            X, y, _ = _load(self.dataset)
            Xtr, _, ytr, _ = train_test_split(X, y, test_size=0.2, random_state=self.split_seed)
            self._data = (Xtr, ytr)
        Xtr, ytr = self._data
        scoring = {"acc": "accuracy", "nll": "neg_log_loss", "mse": "neg_mean_squared_error", "mae": "neg_mean_absolute_error"}[self.metric]
        est = make_pipeline(StandardScaler(), _build(self.model, self.regression, dict(cfg)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                s = cross_val_score(est, Xtr, ytr, cv=5, scoring=scoring, error_score=np.nan)
            except ValueError:
                return float("nan")
        v = float(np.nanmean(s)) if np.isfinite(s).any() else float("nan")
        return -v


def sklearn_problems(models: tuple[str, ...], datasets: tuple[str, ...]) -> list[SklearnProblem]:
    out = []
    for m in models:
        for d in datasets:
            metrics = ("mse", "mae") if d == "diabetes" else ("acc", "nll")
            out.extend(SklearnProblem(m, d, met) for met in metrics)
    return out
