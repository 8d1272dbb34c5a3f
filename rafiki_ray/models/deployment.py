"""``deploy``: the best k trials of a ``tune_model`` run as one ensembling predictor.

Rafiki's inference job loaded the best trials' parameters into model instances and combined
their answers per query. :class:`Predictor` does the same: the (weighted) mean of the answers
when they are probability vectors (classification) or floats (regression), a (weighted)
majority vote when they are labels (ints, strings, bools; a tie goes to the better-ranked
trial), in batches of ``batch_size`` queries. It pickles as the model class plus plain knobs,
parameters and weights, so it can be shipped to a Ray Serve replica
(:func:`rafiki_ray.models.serve`).

Which trials join the ensemble: averaging the best k trials blindly can score *below* the best
trial alone (measured: SkSvm on digits, top-3 mean 0.9859 against 0.9940 for the best trial on
held-out data, the weaker members outvoting it). So when validation data is at hand,
:func:`deploy` runs greedy ensemble selection with replacement (Caruana et al., "Ensemble
Selection from Libraries of Models", ICML 2004) among the best k trials: it starts from the
best trial alone and adds, round by round, the member whose extra vote most improves the
ensemble's validation score, keeping the round with the best score (ties: fewer additions).
A larger ensemble displaces the best so far only when its gain is significant (a paired test
over the validation queries), since gains of one or two queries do not carry over to new data.
The chosen ensemble therefore never scores below the best trial on the validation data, and is
that trial alone unless an ensemble clearly helps; a trial picked several times gets that many
votes (its weight).
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from rafiki_ray._errors import invalid, invalid_type

logger = logging.getLogger(__name__)

__all__ = ["ENSEMBLES", "SELECTIONS", "Predictor", "deploy", "select_ensemble"]

ENSEMBLES = ("auto", "mean", "vote")
SELECTIONS = ("auto", "greedy", "top")


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _is_vector(x: Any) -> bool:
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(_is_number(v) for v in x)


class Predictor:
    """An ensemble of trained model instances (best first).

    Args:
        model_class: the model class.
        members: ``[(knobs, params), ...]`` best first.
        weights: one weight > 0 per member (``None``: equal weights); the mean is weighted,
            and so is the vote.
        ensemble: ``"auto"`` (mean for probability vectors and floats, vote for labels),
            ``"mean"`` or ``"vote"``.
        batch_size: queries per ``model.predict`` call.
        info: free metadata (trial ids, scores) shown by :meth:`describe`.
    """

    def __init__(self, model_class: type, members: Sequence[tuple[dict[str, Any], dict[str, Any]]],
                 *, weights: Sequence[float] | None = None, ensemble: str = "auto",
                 batch_size: int = 256, info: dict[str, Any] | None = None) -> None:
        if ensemble not in ENSEMBLES:
            raise invalid("ensemble", f"must be one of {list(ENSEMBLES)}", ensemble)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise invalid("batch_size", "must be an int >= 1", batch_size)
        if not members:
            raise invalid("members", "needs at least one trained trial", [])
        self.model_class = model_class
        self.members = [(dict(k), dict(p)) for k, p in members]
        self.weights = _check_weights(weights, len(self.members))
        self.ensemble = ensemble
        self.batch_size = batch_size
        self.info = dict(info or {})
        self.models = []
        for knobs, params in self.members:
            model = model_class(**knobs)
            model.load_parameters(dict(params))
            self.models.append(model)

    def __len__(self) -> int:
        return len(self.models)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.model_class, self.members, self.ensemble, self.batch_size,
                           self.info, self.weights))

    def describe(self) -> dict[str, Any]:
        """JSON-able summary: model class, ensemble rule, members' knobs, weights and
        metadata."""
        return {"model_class": self.model_class.__name__, "ensemble": self.ensemble,
                "members": len(self.models), "knobs": [k for k, _ in self.members],
                "weights": list(self.weights), **self.info}

    def member_answers(self, queries: Sequence[Any]) -> list[list[Any]]:
        """Each member's own answers to ``queries`` (a list), in batches."""
        queries = list(queries)
        out: list[list[Any]] = [[] for _ in self.models]
        for start in range(0, len(queries), self.batch_size):
            batch = queries[start:start + self.batch_size]
            for i, m in enumerate(self.models):
                out[i].extend(self._member_predict(m, i, batch))
        return out

    def reweighted(self, weights: Sequence[float], info: dict[str, Any] | None = None
                   ) -> Predictor:
        """A predictor of the members with weight > 0 (their loaded models are reused)."""
        w = [float(x) for x in weights]
        if len(w) != len(self.members) or any(not math.isfinite(x) or x < 0 for x in w) \
                or not any(x > 0 for x in w):
            raise invalid("weights", f"must be {len(self.members)} numbers >= 0, not all 0",
                          weights)
        keep = [i for i, x in enumerate(w) if x > 0]
        new = object.__new__(Predictor)
        new.model_class, new.ensemble, new.batch_size = (self.model_class, self.ensemble,
                                                         self.batch_size)
        new.members = [self.members[i] for i in keep]
        new.models = [self.models[i] for i in keep]
        new.weights = [w[i] for i in keep]
        new.info = dict(self.info if info is None else info)
        return new

    def predict(self, queries: Any) -> list[Any]:
        """One combined answer per query."""
        if isinstance(queries, (str, bytes, dict)) or not isinstance(queries, Sequence):
            raise invalid_type("queries", "must be a list", type(queries).__name__)
        queries = list(queries)
        out: list[Any] = []
        for start in range(0, len(queries), self.batch_size):
            batch = queries[start:start + self.batch_size]
            answers = [self._member_predict(m, i, batch) for i, m in enumerate(self.models)]
            out.extend(_combine([a[j] for a in answers], self.weights, self.ensemble)
                       for j in range(len(batch)))
        return out

    @staticmethod
    def _member_predict(model: Any, i: int, batch: list[Any]) -> list[Any]:
        answers = model.predict(batch)
        if not isinstance(answers, list) or len(answers) != len(batch):
            raise RuntimeError(f"member {i}: predict must return one answer per query, got "
                               f"{type(answers).__name__} of length "
                               f"{len(answers) if hasattr(answers, '__len__') else '?'}")
        return answers

    def close(self) -> None:
        for m in self.models:
            m.destroy()
        self.models = []


def _rebuild(model_class: type, members: list[Any], ensemble: str, batch_size: int,
             info: dict[str, Any], weights: list[float] | None = None) -> Predictor:
    return Predictor(model_class, members, weights=weights, ensemble=ensemble,
                     batch_size=batch_size, info=info)


def _check_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    if weights is None:
        return [1.0] * n
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence) \
            or len(weights) != n:
        raise invalid("weights", f"must be a list of {n} numbers > 0", weights)
    if any(not _is_number(w) or not math.isfinite(w) or w <= 0 for w in weights):
        raise invalid("weights", "must be finite numbers > 0", list(weights))
    return [float(w) for w in weights]


def _combine(answers: list[Any], weights: Sequence[float], rule: str) -> Any:
    """One query's answers (one per member, best first) combined by ``rule``."""
    if rule == "auto":
        first = answers[0]
        if _is_vector(first) or (_is_number(first) and not isinstance(first, numbers.Integral)):
            rule = "mean"
        else:
            rule = "vote"
    if rule == "mean":
        try:
            arr = np.asarray(answers, dtype=float)
        except (TypeError, ValueError) as exc:
            raise invalid("ensemble", f"'mean' needs numeric answers of one shape ({exc})",
                          answers[:2]) from None
        mean = np.average(arr, axis=0, weights=np.asarray(weights, dtype=float))
        return mean.tolist() if mean.ndim else float(mean)
    keys = [json.dumps(a, sort_keys=True) for a in answers]
    votes: dict[str, float] = {}
    for key, w in zip(keys, weights):
        votes[key] = votes.get(key, 0.0) + w
    top = max(votes.values())
    for key, a in zip(keys, answers):  # best-ranked member wins a tie
        if votes[key] == top:
            return a
    return answers[0]  # pragma: no cover - the loop always returns


def _default_scorer(answers: list[Any], y: np.ndarray) -> np.ndarray:
    """Per query: 1.0 / 0.0 for a right / wrong class (argmax of probability vectors against
    integer labels, or labels compared), minus the squared error for floats."""
    first = answers[0]
    if _is_vector(first):
        if y.dtype.kind not in "iub":
            raise invalid("scorer", "is needed: probability answers but labels are not class "
                          "indices", str(y.dtype))
        return (np.asarray(answers, dtype=float).argmax(1) == y).astype(float)
    if _is_number(first) and not isinstance(first, numbers.Integral):
        return -((np.asarray(answers, dtype=float) - y.astype(float)) ** 2)
    return np.array([float(a == t) for a, t in zip(answers, y.tolist())])


def _significant(new: np.ndarray, old: np.ndarray, z: float) -> bool:
    """Whether ``new`` beats ``old`` per query by ``z`` standard errors (a paired test)."""
    d = new - old
    gain = float(d.mean())
    if gain <= 0:
        return False
    if len(d) < 2:
        return z <= 0
    se = float(d.std(ddof=1)) / math.sqrt(len(d))
    return gain >= z * se


def select_ensemble(answers: Sequence[Sequence[Any]], y: Any, *, ensemble: str = "auto",
                    scorer: Any = None, rounds: int = 20, z: float = 2.0
                    ) -> tuple[list[int], dict[str, Any]]:
    """Greedy ensemble selection with replacement (Caruana et al. 2004), with a
    significance gate.

    The ensembles tried, in order: the best candidate alone; the best 2, 3, ... candidates
    with equal votes (the paper's sorted initialisation); then, from the best of those, each
    round adds (with replacement) the candidate whose extra vote gives the best mean
    validation score. An ensemble displaces the best so far only when its per-query gain is
    significant: at least ``z`` standard errors above zero (a paired z-test over the
    validation queries). Greedy selection on a few
    hundred queries otherwise chases gains of one or two queries that do not carry over:
    on digits, ensembles 1 to 4 validation images better than the best SkSvm trial were
    0 to 8 images worse on the held-out set (6 runs); with ``z=2`` they stay the single best.

    Args:
        answers: per candidate (best trial first), its answers to the validation queries.
        y: the validation targets.
        ensemble: the combining rule (as :class:`Predictor`).
        scorer: ``scorer(combined_answers, y) -> per-query scores`` (a sequence of floats,
            higher is better; their mean is the score). Default: 1/0 for a right/wrong class
            (probability vectors and labels), minus the squared error for floats.
        rounds: how many additions to try.
        z: the significance a round needs to displace the best so far (0: any gain).

    Returns:
        ``(counts, info)``: the votes of each candidate (the best candidate at least one) and
        ``{"val_score", "best_single_val_score", "val_scores"}`` (mean scores: the chosen
        ensemble's, the best candidate's alone, and each ensemble's in the order tried). Always
        ``val_score >= best_single_val_score``.
    """
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
        raise invalid("rounds", "must be an int >= 0", rounds)
    if isinstance(z, bool) or not isinstance(z, (int, float)) or not z >= 0:
        raise invalid("z", "must be a number >= 0", z)
    m = len(answers)
    if m == 0:
        raise invalid("answers", "needs at least one candidate", 0)
    y = np.asarray(y)
    score_fn = scorer or _default_scorer
    n = len(y)
    if any(len(a) != n for a in answers):
        raise invalid("answers", f"each candidate needs {n} answers (one per target)",
                      [len(a) for a in answers])

    def score(counts: list[int]) -> np.ndarray:
        idx = [i for i, c in enumerate(counts) if c > 0]
        w = [float(counts[i]) for i in idx]
        combined = [_combine([answers[i][j] for i in idx], w, ensemble) for j in range(n)]
        out = np.asarray(score_fn(combined, y), dtype=float).reshape(-1)
        if out.shape != (n,):
            raise invalid("scorer", f"must return one score per query ({n})", out.shape)
        return out

    counts = [1] + [0] * (m - 1)
    best_scores = score(counts)
    best_single = float(best_scores.mean())
    best_counts, history = list(counts), [best_single]
    # sorted initialisation (Caruana et al. section 2.1): the best 2, 3, ... trials with
    # equal votes; greedy steps from the single best alone can stall where one member's
    # votes dominate (near one-hot probabilities, as decision trees give)
    for p in range(2, m + 1):
        c = [1] * p + [0] * (m - p)
        scores = score(c)
        history.append(float(scores.mean()))
        if _significant(scores, best_scores, float(z)):
            best_scores, best_counts = scores, c
    counts = list(best_counts)
    for _ in range(rounds if m > 1 else 0):
        tries = []
        for i in range(m):
            c = list(counts)
            c[i] += 1
            tries.append(score(c))
        i = int(np.argmax([t.mean() for t in tries]))  # first of equals: better-ranked
        counts[i] += 1
        history.append(float(tries[i].mean()))
        if _significant(tries[i], best_scores, float(z)):
            best_scores, best_counts = tries[i], list(counts)
    return best_counts, {"val_score": float(best_scores.mean()),
                         "best_single_val_score": best_single, "val_scores": history}


def deploy(result: Any, k: int = 3, *, val: Any = None, select: str = "auto",
           scorer: Any = None, rounds: int = 20, z: float = 2.0, model_class: type | None = None,
           ensemble: str = "auto", batch_size: int = 256) -> Predictor:
    """A :class:`Predictor` ensembling at most ``k`` of the best trials of ``result``.

    Args:
        result: a :class:`~rafiki_ray.models.TuneModelResult` or an experiment directory (its
            ``rafiki_best/index.json``; ``model_class`` is imported from there unless given).
        k: the candidates are the best ``k`` trials by validation score (at most as many as
            ``tune_model`` kept, its own ``k``); the ensemble has at most ``k`` members.
        val: validation data ``(X, y)`` or a dataset path for choosing the members. Default:
            the data the trials were scored on, when known (a ``TuneModelResult`` carries it;
            an experiment directory records it only when it was a path).
        select: ``"greedy"``: greedy ensemble selection with replacement on ``val``
            (:func:`select_ensemble`): it starts from the best trial alone and takes a
            larger ensemble (a member added more than once gets that many votes) only when
            it scores significantly better on ``val``, so it is never worse than the best
            trial there, and is that trial alone when no ensemble clearly helps. ``"top"``:
            the best ``k`` trials with equal weights (Rafiki's rule). ``"auto"``:
            ``"greedy"`` when validation data is known, else ``"top"``.
        scorer: per-query scores for ``"greedy"`` (see :func:`select_ensemble`).
        rounds, z: greedy selection's additions tried and significance threshold.
        ensemble, batch_size: as :class:`Predictor`.

    ``predictor.describe()`` gives the members' trial ids, scores and weights and, after a
    greedy selection, the validation scores of the ensemble and of the best trial alone.
    """
    from rafiki_ray.models.model import import_model_class, load_parameters

    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise invalid("k", "must be an int >= 1", k)
    if select not in SELECTIONS:
        raise invalid("select", f"must be one of {list(SELECTIONS)}", select)
    known_val = None
    if isinstance(result, (str, os.PathLike)):
        best_dir = os.fspath(result)
        if not os.path.exists(os.path.join(best_dir, "index.json")):
            best_dir = os.path.join(best_dir, "rafiki_best")
        index_path = os.path.join(best_dir, "index.json")
        if not os.path.exists(index_path):
            raise invalid("result", "has no rafiki_best/index.json (not a tune_model "
                          "experiment directory?)", os.fspath(result))
        with open(index_path) as f:
            index = json.load(f)
        entries = [(e["trial_id"], e["score"], e["knobs"], os.path.join(best_dir, e["params"]))
                   for e in index["best"]]
        known_val = index.get("val")
        if model_class is None:
            if not index.get("model_class"):
                raise invalid("model_class", "is needed: the index does not name it", None)
            model_class = import_model_class(index["model_class"])
    elif hasattr(result, "best") and hasattr(result, "experiment_path"):
        entries = [(b.trial_id, b.score, b.knobs, b.params_path) for b in result.best]
        model_class = model_class or result.model_class
        known_val = getattr(result, "val", None)
    else:
        raise invalid_type("result", "must be a TuneModelResult or an experiment directory",
                           type(result).__name__)
    if not entries:
        raise invalid("result", "has no trained trial with a finite score to deploy", 0)
    if model_class is None:
        raise invalid("model_class", "is needed", None)
    entries = entries[:k]
    if len(entries) < k:
        logger.warning("deploy: only %d trials kept, asked for %d", len(entries), k)
    if val is None:
        val = known_val
    if select == "auto":
        select = "greedy" if val is not None and len(entries) > 1 else "top"
    if select == "greedy" and val is None:
        raise invalid("val", "is needed for select='greedy' (the run's validation data is "
                      "not known here)", None)
    members = [(knobs, load_parameters(path)) for _, _, knobs, path in entries]
    info: dict[str, Any] = {
        "trial_ids": [e[0] for e in entries],
        "scores": [e[1] if math.isfinite(e[1]) else None for e in entries],
        "selection": select}
    predictor = Predictor(model_class, members, ensemble=ensemble, batch_size=batch_size,
                          info=info)
    if select == "top":
        return predictor
    from rafiki_ray.models.datasets import load_dataset

    ds = load_dataset(val, path="val")
    if ds.y is None:
        raise invalid("val", "needs targets to choose ensemble members", None)
    answers = predictor.member_answers(ds.X.tolist())
    counts, sel = select_ensemble(answers, ds.y, ensemble=ensemble, scorer=scorer,
                                  rounds=rounds, z=z)
    keep = [i for i, c in enumerate(counts) if c > 0]
    info = {**info, "trial_ids": [info["trial_ids"][i] for i in keep],
            "scores": [info["scores"][i] for i in keep],
            "candidates": info["trial_ids"], **sel}
    logger.info("deploy: greedy selection kept %d of %d trials (weights %s), validation "
                "score %.4g (best trial alone %.4g)", len(keep), len(counts),
                [counts[i] for i in keep], sel["val_score"], sel["best_single_val_score"])
    return predictor.reweighted(counts, info=info)
