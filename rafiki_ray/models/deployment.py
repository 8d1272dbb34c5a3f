"""``deploy``: the best k trials of a ``tune_model`` run as one ensembling predictor.

Rafiki's inference job loaded the best trials' parameters into model instances and combined
their answers per query. :class:`Predictor` does the same: the mean of the answers when they
are probability vectors (classification) or floats (regression), a majority vote when they
are labels (ints, strings, bools; a tie goes to the better-ranked trial), in batches of
``batch_size`` queries. It pickles as the model class plus plain knobs and parameters, so it
can be shipped to a Ray Serve replica (:func:`rafiki_ray.models.serve`).
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from rafiki_ray._errors import invalid, invalid_type

__all__ = ["ENSEMBLES", "Predictor", "deploy"]

ENSEMBLES = ("auto", "mean", "vote")


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _is_vector(x: Any) -> bool:
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(_is_number(v) for v in x)


class Predictor:
    """An ensemble of trained model instances (best first).

    Args:
        model_class: the model class.
        members: ``[(knobs, params), ...]`` best first.
        ensemble: ``"auto"`` (mean for probability vectors and floats, vote for labels),
            ``"mean"`` or ``"vote"``.
        batch_size: queries per ``model.predict`` call.
        info: free metadata (trial ids, scores) shown by :meth:`describe`.
    """

    def __init__(self, model_class: type, members: Sequence[tuple[dict[str, Any], dict[str, Any]]],
                 *, ensemble: str = "auto", batch_size: int = 256,
                 info: dict[str, Any] | None = None) -> None:
        if ensemble not in ENSEMBLES:
            raise invalid("ensemble", f"must be one of {list(ENSEMBLES)}", ensemble)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise invalid("batch_size", "must be an int >= 1", batch_size)
        if not members:
            raise invalid("members", "needs at least one trained trial", [])
        self.model_class = model_class
        self.members = [(dict(k), dict(p)) for k, p in members]
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
                           self.info))

    def describe(self) -> dict[str, Any]:
        """JSON-able summary: model class, ensemble rule, members' knobs and metadata."""
        return {"model_class": self.model_class.__name__, "ensemble": self.ensemble,
                "members": len(self.models), "knobs": [k for k, _ in self.members],
                **self.info}

    def predict(self, queries: Any) -> list[Any]:
        """One combined answer per query."""
        if isinstance(queries, (str, bytes, dict)) or not isinstance(queries, Sequence):
            raise invalid_type("queries", "must be a list", type(queries).__name__)
        queries = list(queries)
        out: list[Any] = []
        for start in range(0, len(queries), self.batch_size):
            batch = queries[start:start + self.batch_size]
            answers = [self._member_predict(m, i, batch) for i, m in enumerate(self.models)]
            out.extend(self._combine([a[j] for a in answers]) for j in range(len(batch)))
        return out

    @staticmethod
    def _member_predict(model: Any, i: int, batch: list[Any]) -> list[Any]:
        answers = model.predict(batch)
        if not isinstance(answers, list) or len(answers) != len(batch):
            raise RuntimeError(f"member {i}: predict must return one answer per query, got "
                               f"{type(answers).__name__} of length "
                               f"{len(answers) if hasattr(answers, '__len__') else '?'}")
        return answers

    def _combine(self, answers: list[Any]) -> Any:
        rule = self.ensemble
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
            mean = arr.mean(axis=0)
            return mean.tolist() if mean.ndim else float(mean)
        keys = [json.dumps(a, sort_keys=True) for a in answers]
        counts = Counter(keys)
        top = max(counts.values())
        for key, a in zip(keys, answers):  # best-ranked member wins a tie
            if counts[key] == top:
                return a
        return answers[0]  # pragma: no cover - the loop always returns

    def close(self) -> None:
        for m in self.models:
            m.destroy()
        self.models = []


def _rebuild(model_class: type, members: list[Any], ensemble: str, batch_size: int,
             info: dict[str, Any]) -> Predictor:
    return Predictor(model_class, members, ensemble=ensemble, batch_size=batch_size, info=info)


def deploy(result: Any, k: int = 3, *, model_class: type | None = None, ensemble: str = "auto",
           batch_size: int = 256) -> Predictor:
    """A :class:`Predictor` ensembling the best ``k`` trials of ``result``: a
    :class:`~rafiki_ray.models.TuneModelResult` or an experiment directory (its
    ``rafiki_best/index.json``; ``model_class`` is imported from there unless given)."""
    from rafiki_ray.models.model import import_model_class, load_parameters

    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise invalid("k", "must be an int >= 1", k)
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
        if model_class is None:
            if not index.get("model_class"):
                raise invalid("model_class", "is needed: the index does not name it", None)
            model_class = import_model_class(index["model_class"])
    elif hasattr(result, "best") and hasattr(result, "experiment_path"):
        entries = [(b.trial_id, b.score, b.knobs, b.params_path) for b in result.best]
        model_class = model_class or result.model_class
    else:
        raise invalid_type("result", "must be a TuneModelResult or an experiment directory",
                           type(result).__name__)
    if not entries:
        raise invalid("result", "has no trained trial with a finite score to deploy", 0)
    if model_class is None:
        raise invalid("model_class", "is needed", None)
    entries = entries[:k]
    if len(entries) < k:
        import logging

        logging.getLogger(__name__).warning("deploy: only %d trials kept, asked for %d",
                                            len(entries), k)
    members = [(knobs, load_parameters(path)) for _, _, knobs, path in entries]
    info = {"trial_ids": [e[0] for e in entries],
            "scores": [e[1] if math.isfinite(e[1]) else None for e in entries]}
    return Predictor(model_class, members, ensemble=ensemble, batch_size=batch_size, info=info)
