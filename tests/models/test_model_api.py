"""BaseModel contract, example models trained for real on digits, policies, check_model."""

from __future__ import annotations

import numpy as np
import pytest

from rafiki_ray.knobs import FixedKnob, FloatKnob, IntegerKnob, PolicyKnob
from rafiki_ray.models import BaseModel, check_model
from tests.models.conftest import example_model

FF_KNOBS = {"max_epochs": 10, "seed": 0, "hidden_layer_count": 1, "hidden_layer_units": 64,
                "learning_rate": 1e-2, "batch_size": 32, "max_image_size": 8, "share_params": False,
                "early_stop": False, "skip_train": False, "quick_eval": False, "downscale": False}


@pytest.mark.parametrize("name,knobs,floor", [
    ("PyFeedForward", dict(FF_KNOBS), 0.85),
    ("PyCnn", {"channels": 8, "learning_rate": 1e-2, "batch_size": 32, "max_image_size": 8}, 0.6),
    ("SkDt", {"max_depth": 12, "max_image_size": 16}, 0.7),
    ("SkSvm", {"kernel": "rbf", "gamma": "scale", "C": 10.0}, 0.9),
])
def test_example_models_pass_check_model_and_learn(digits, name, knobs, floor):
    train, val, _ = digits
    report = check_model(example_model(name), train, val, knobs=knobs)
    assert report.ok, str(report)
    assert report.score > floor
    assert len(report.predictions) == 5 and len(report.predictions[0]) == 10
    assert np.allclose(np.sum(report.predictions, axis=1), 1.0, atol=1e-4)


@pytest.mark.slow  # importing tensorflow alone takes ~15 s on the shared 2 cores
def test_tf_feed_forward_trains_on_digits(digits):
    pytest.importorskip("tensorflow")
    train, val, _ = digits
    knobs = {"hidden_layer_count": 1, "hidden_layer_units": 32, "learning_rate": 1e-2,
                 "batch_size": 64, "max_image_size": 16, "early_stop": True}
    report = check_model(example_model("TfFeedForward"), train, val, knobs=knobs)
    assert report.ok, str(report)
    assert report.score > 0.7  # 2 epochs (EARLY_STOP) of a 32-unit layer; chance is 0.1


def test_knob_configs_are_the_originals():
    dt = example_model("SkDt").get_knob_config()
    assert (dt["max_depth"].value_min, dt["max_depth"].value_max) == (1, 32)
    assert dt["splitter"].values == ["best", "random"]
    assert dt["max_image_size"].values == [16, 32]
    svm = example_model("SkSvm").get_knob_config()
    assert svm["max_iter"].value == 20 and svm["C"].is_exp
    assert (svm["C"].value_min, svm["C"].value_max) == (1e-4, 1e4)
    tf = example_model("TfFeedForward").get_knob_config()
    assert tf["max_epochs"].value == 10 and tf["learning_rate"].is_exp
    assert tf["batch_size"].values == [16, 32, 64, 128]
    assert tf["max_image_size"].values == [16, 32, 48]
    assert tf["early_stop"].policy == "EARLY_STOP"


# ---------------------------------------------------------------------------- policies
@pytest.fixture(scope="module")
def trained_ff(digits):
    train, _, _ = digits
    model = example_model("PyFeedForward")(**FF_KNOBS)
    model.train(train)
    return model


def test_early_stop_trains_fewer_epochs(digits, trained_ff):
    train, val, _ = digits
    short = example_model("PyFeedForward")(**{**FF_KNOBS, "early_stop": True})
    short.train(train)
    assert (short.epochs_run, trained_ff.epochs_run) == (2, 10)
    assert short.evaluate(val) < trained_ff.evaluate(val)


def test_skip_train_keeps_the_shared_parameters(digits, trained_ff):
    train, val, _ = digits
    params = trained_ff.dump_parameters()
    m = example_model("PyFeedForward")(**{**FF_KNOBS, "skip_train": True})
    m.train(train, shared_params=params)
    assert m.epochs_run == 0
    assert m.evaluate(val) == trained_ff.evaluate(val)
    fresh = example_model("PyFeedForward")(**{**FF_KNOBS, "skip_train": True})
    fresh.train(train)  # nothing shared: the untrained network, near chance
    assert fresh.evaluate(val) < 0.4


def test_share_params_starts_from_the_shared_weights(digits, trained_ff):
    train, val, _ = digits
    params = trained_ff.dump_parameters()
    knobs = {**FF_KNOBS, "share_params": True, "early_stop": True, "learning_rate": 1e-5}
    warm = example_model("PyFeedForward")(**knobs)
    warm.train(train, shared_params=params)
    cold = example_model("PyFeedForward")(**{**knobs, "share_params": False})
    cold.train(train, shared_params=params)  # the policy is off: the model ignores them
    assert warm.shared_loaded == 4 and cold.shared_loaded == 0
    assert warm.evaluate(val) > 0.85 > cold.evaluate(val)
    # another architecture: only the arrays whose shapes fit are taken
    other = example_model("PyFeedForward")(**{**knobs, "hidden_layer_units": 32})
    other.train(train, shared_params=params)
    assert other.shared_loaded == 1  # only the output bias (10 classes) fits


def test_quick_eval_scores_a_subset(digits, trained_ff):
    _, val, _ = digits
    m = example_model("PyFeedForward")(**{**FF_KNOBS, "quick_eval": True})
    m.load_parameters(trained_ff.dump_parameters())
    n = max(50, len(val[1]) // 4)
    probs = np.array(trained_ff.predict(val[0][:n].tolist()))
    assert m.evaluate(val) == pytest.approx(float((probs.argmax(1) == val[1][:n]).mean()))


def test_downscale_builds_a_smaller_model(digits):
    train, _, _ = digits
    sizes = []
    for down in (False, True):
        m = example_model("PyFeedForward")(**{**FF_KNOBS, "hidden_layer_count": 2,
                                              "downscale": down, "early_stop": True})
        m.train((train[0][:100], train[1][:100]))
        sizes.append(sum(v.size for k, v in m.dump_parameters().items() if k.startswith("w:")))
    assert sizes[1] < sizes[0] / 2


# ---------------------------------------------------------------------------- check_model
class _BadModel(BaseModel):
    """Breaks the contract in every way check_model looks for."""

    @staticmethod
    def get_knob_config():
        return {"x": IntegerKnob(1, 3)}

    def __init__(self, **knobs):
        super().__init__(**knobs)
        self.w = 0

    def train(self, dataset, shared_params=None, **train_args):
        self.w = 1

    def evaluate(self, dataset):
        return 1  # an int, not a float

    def predict(self, queries):
        return np.zeros((len(queries), 2))  # an array, not a list

    def dump_parameters(self):
        return {"w": [1, 2, 3]}  # a list is not a parameter type

    def load_parameters(self, params):
        pass


class _NoRoundTrip(BaseModel):
    @staticmethod
    def get_knob_config():
        return {"x": FixedKnob(1), "early": PolicyKnob("EARLY_STOP")}

    def __init__(self, **knobs):
        super().__init__(**knobs)
        self.w = np.zeros(3)

    def train(self, dataset, shared_params=None, **train_args):
        self.w = np.ones(3)

    def evaluate(self, dataset):
        return float(self.w.sum())

    def predict(self, queries):
        return [float(self.w.sum())] * len(queries)

    def dump_parameters(self):
        return {"w": self.w}

    def load_parameters(self, params):
        pass  # forgets to load


def test_check_model_explains_every_violation(digits):
    train, val, _ = digits
    report = check_model(_BadModel, train, val, raise_errors=False)
    text = str(report)
    assert "must return a float, got int 1" in text
    assert "predict(queries) must return a list, got ndarray" in text
    assert "parameters are not serialisable" in text and "'w'" in text
    with pytest.raises(ValueError, match="must return a float"):
        check_model(_BadModel, train, val)
    report = check_model(_NoRoundTrip, train, val, raise_errors=False)
    assert [p for p in report.problems if "does not round-trip" in p], report.problems
    assert report.knobs == {"x": 1, "early": False}  # policies arrive as booleans


def test_check_model_rejects_a_non_static_knob_config_and_bad_knobs(digits):
    train, val, _ = digits

    class NotStatic(_NoRoundTrip):
        def get_knob_config(self):
            return {}

    report = check_model(NotStatic, train, val, raise_errors=False)
    assert any("must be a @staticmethod" in p for p in report.problems)

    class BadKnobs(_NoRoundTrip):
        @staticmethod
        def get_knob_config():
            return {"lr": 0.1}

    report = check_model(BadKnobs, train, val, raise_errors=False)
    assert any("invalid knob config" in p and "lr" in p for p in report.problems)


def test_a_zero_bound_on_a_log_knob_is_refused():
    """Rafiki's BO replaced a zero bound of an is_exp knob by 1e-12 (a log-uniform over 27
    decades); here such a knob cannot be built, and a plain zero bound stays uniform."""
    with pytest.raises(ValueError, match="is_exp needs 0 < value_min"):
        FloatKnob(0.0, 1.0, is_exp=True)
    with pytest.raises(ValueError, match="is_exp needs 0 < value_min"):
        IntegerKnob(0, 10, is_exp=True)
    assert FloatKnob(0.0, 1.0).value_min == 0.0
