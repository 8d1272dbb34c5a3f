"""deploy: ensembling rules, batching, pickling, loading from an experiment directory; serve:
real HTTP requests (good and malformed) against Ray Serve on localhost."""

from __future__ import annotations

import json
import pickle
import socket
import urllib.error
import urllib.request
from typing import Any, ClassVar

import numpy as np
import pytest

from rafiki_ray.knobs import CategoricalKnob, FloatKnob
from rafiki_ray.models import BaseModel, Predictor, deploy, tune_model
from tests.models.conftest import example_model


class Answer(BaseModel):
    """Answers every query with its ``answer`` knob; records the batch sizes it saw."""

    calls: ClassVar[list[int]] = []

    @staticmethod
    def get_knob_config() -> dict[str, Any]:
        return {"answer": CategoricalKnob(["a", "b"]), "x": FloatKnob(0.0, 1.0)}

    def train(self, dataset, shared_params=None, **train_args):
        pass

    def evaluate(self, dataset):
        return 0.0

    def predict(self, queries):
        Answer.calls.append(len(queries))
        if any(not isinstance(q, (int, float)) for q in queries):
            raise ValueError("queries must be numbers")
        return [self.knobs["answer"] for _ in queries]

    def dump_parameters(self):
        return {}

    def load_parameters(self, params):
        pass


class Probs(Answer):
    def predict(self, queries):
        p = float(self.knobs["x"])
        return [[p, 1.0 - p] for _ in queries]


class Regress(Answer):
    def predict(self, queries):
        return [float(self.knobs["x"]) * q for q in queries]


def _members(knobs_list):
    return [(k, {}) for k in knobs_list]


def test_majority_vote_with_ties_to_the_best_member():
    p = Predictor(Answer, _members([{"answer": "a", "x": 0}, {"answer": "b", "x": 0},
                                    {"answer": "b", "x": 0}]))
    assert p.predict([1, 2]) == ["b", "b"]
    p = Predictor(Answer, _members([{"answer": "a", "x": 0}, {"answer": "b", "x": 0}]))
    assert p.predict([1]) == ["a"]  # a tie: the better-ranked trial's answer


def test_mean_of_probabilities_and_of_regression_outputs():
    p = Predictor(Probs, _members([{"answer": "a", "x": 0.2}, {"answer": "a", "x": 0.6}]))
    assert np.allclose(p.predict([0, 1]), [[0.4, 0.6], [0.4, 0.6]])
    r = Predictor(Regress, _members([{"answer": "a", "x": 1.0}, {"answer": "a", "x": 3.0}]))
    assert r.predict([1.0, 2.0]) == [2.0, 4.0]
    v = Predictor(Regress, _members([{"answer": "a", "x": 1.0}, {"answer": "a", "x": 3.0},
                                     {"answer": "a", "x": 3.0}]), ensemble="vote")
    assert v.predict([1.0]) == [3.0]


def test_batches_and_pickling():
    Answer.calls.clear()
    p = Predictor(Answer, _members([{"answer": "a", "x": 0}]), batch_size=3)
    assert p.predict(list(range(10))) == ["a"] * 10
    assert Answer.calls == [3, 3, 3, 1]
    q = pickle.loads(pickle.dumps(p))  # model class + plain knobs and parameters
    assert q.predict([1]) == ["a"] and q.batch_size == 3
    with pytest.raises(TypeError, match="queries: must be a list"):
        p.predict("1,2")
    with pytest.raises(ValueError, match="ensemble: must be one of"):
        Predictor(Answer, _members([{"answer": "a", "x": 0}]), ensemble="median")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.slow
def test_tune_deploy_serve_on_digits(ray_session, storage, small_digits):
    """SkDt tuned on digits, the top 3 deployed (from the directory, as after a driver
    restart) and served over HTTP; good and malformed requests."""
    serve_mod = pytest.importorskip("ray.serve")
    from rafiki_ray.models import serve, shutdown_serve

    train, val, (Xt, _) = small_digits
    result = tune_model(example_model("SkDt"), train, val, {"MODEL_TRIAL_COUNT": 4}, seed=0,
                        storage_path=storage, name="serve", max_concurrent_trials=2,
                        progress=False)
    predictor = deploy(result.experiment_path, k=3)
    assert len(predictor) == 3 and predictor.describe()["trial_ids"] == [
        b.trial_id for b in result.best]
    probs = np.array(predictor.predict(Xt[:50].tolist()))
    assert probs.shape == (50, 10) and np.allclose(probs.sum(1), 1.0)
    url = serve(predictor, port=_free_port(), name="digits")
    try:
        status, body = _post(url, json.dumps({"queries": Xt[:3].tolist()}).encode())
        assert status == 200 and np.allclose(body["predictions"], probs[:3])
        assert _post(url, b"{not json")[0] == 400
        assert _post(url, json.dumps([1, 2]).encode())[0] == 400
        assert _post(url, json.dumps({"queries": "x"}).encode())[0] == 400
        status, body = _post(url, json.dumps({"queries": [[1, 2, 3]]}).encode())
        assert status == 422 and "square" in body["error"]
        with urllib.request.urlopen(url, timeout=60) as r:
            assert json.loads(r.read())["members"] == 3
    finally:
        shutdown_serve()
    del serve_mod
