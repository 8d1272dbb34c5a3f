"""Small real models for the Tune tests: their score is a knob (deterministic), their
parameters say who made them and what they received, so sharing can be checked exactly."""

from __future__ import annotations

import time
import uuid
from typing import Any

import numpy as np

from rafiki_ray.knobs import FixedKnob, FloatKnob, PolicyKnob
from rafiki_ray.models import BaseModel


class SharingProbe(BaseModel):
    """Score = ``x``; parameters: this trial's ``origin`` and the ``received`` origin."""

    @staticmethod
    def get_knob_config() -> dict[str, Any]:
        return {"x": FloatKnob(0.0, 1.0), "share": PolicyKnob("SHARE_PARAMS"),
                "early": PolicyKnob("EARLY_STOP")}

    def __init__(self, **knobs: Any) -> None:
        super().__init__(**knobs)
        self.origin = uuid.uuid4().hex
        self.received = ""
        self.w = np.zeros(4)

    def train(self, dataset: Any, shared_params: dict[str, Any] | None = None,
              **train_args: Any) -> None:
        if shared_params is not None and self.knobs["share"]:
            self.received = str(shared_params["origin"])
            self.w = np.array(shared_params["w"])
        self.w = self.w + self.knobs["x"]

    def evaluate(self, dataset: Any) -> float:
        return float(self.knobs["x"])

    def predict(self, queries: list[Any]) -> list[Any]:
        return [float(self.knobs["x"])] * len(queries)

    def dump_parameters(self) -> dict[str, Any]:
        return {"origin": self.origin, "received": self.received, "w": self.w}

    def load_parameters(self, params: dict[str, Any]) -> None:
        self.origin, self.w = str(params["origin"]), np.array(params["w"])


class FixedProbe(BaseModel):
    """Only Fixed and Policy knobs: Rafiki's FIXED advisor."""

    @staticmethod
    def get_knob_config() -> dict[str, Any]:
        return {"depth": FixedKnob(3), "name": FixedKnob("tree"),
                "early": PolicyKnob("EARLY_STOP")}

    def train(self, dataset: Any, shared_params: dict[str, Any] | None = None,
              **train_args: Any) -> None:
        if not isinstance(self.knobs["early"], bool):
            raise TypeError(f"policy knob is not a bool: {self.knobs['early']!r}")

    def evaluate(self, dataset: Any) -> float:
        return 0.5

    def predict(self, queries: list[Any]) -> list[Any]:
        return [0] * len(queries)

    def dump_parameters(self) -> dict[str, Any]:
        return {"depth": self.knobs["depth"]}

    def load_parameters(self, params: dict[str, Any]) -> None:
        pass


class SlowProbe(BaseModel):
    """Trains for ``seconds`` (sleeping), scores ``x``."""

    @staticmethod
    def get_knob_config() -> dict[str, Any]:
        return {"x": FloatKnob(0.0, 1.0), "seconds": FixedKnob(1.0)}

    def train(self, dataset: Any, shared_params: dict[str, Any] | None = None,
              **train_args: Any) -> None:
        time.sleep(float(self.knobs["seconds"]))

    def evaluate(self, dataset: Any) -> float:
        return float(self.knobs["x"])

    def predict(self, queries: list[Any]) -> list[Any]:
        return [float(self.knobs["x"])] * len(queries)

    def dump_parameters(self) -> dict[str, Any]:
        return {"x": float(self.knobs["x"])}

    def load_parameters(self, params: dict[str, Any]) -> None:
        self.knobs["x"] = float(params["x"])


def slow_probe(seconds: float) -> type:
    """A SlowProbe subclass whose training takes ``seconds``."""
    return type(f"SlowProbe{int(seconds * 10)}", (SlowProbe,), {
        "get_knob_config": staticmethod(lambda: {"x": FloatKnob(0.0, 1.0),
                                                 "seconds": FixedKnob(float(seconds))}),
        "__module__": __name__,
    })


class EpochProbe(BaseModel):
    """Trains ``epochs`` epochs of ``seconds`` each, calling ``checkpoint(epoch=...)`` after
    each; scores ``epochs_done / 1000``; parameters: the epochs done."""

    @staticmethod
    def get_knob_config() -> dict[str, Any]:
        return {"x": FloatKnob(0.0, 1.0), "epochs": FixedKnob(400), "seconds": FixedKnob(0.5)}

    def __init__(self, **knobs: Any) -> None:
        super().__init__(**knobs)
        self.done = 0

    def train(self, dataset: Any, shared_params: dict[str, Any] | None = None,
              **train_args: Any) -> None:
        for epoch in range(int(self.knobs["epochs"])):
            time.sleep(float(self.knobs["seconds"]))
            self.done = epoch + 1
            self.checkpoint(epoch=self.done)

    def evaluate(self, dataset: Any) -> float:
        return self.done / 1000

    def predict(self, queries: list[Any]) -> list[Any]:
        return [float(self.done)] * len(queries)

    def dump_parameters(self) -> dict[str, Any]:
        return {"done": self.done}

    def load_parameters(self, params: dict[str, Any]) -> None:
        self.done = int(params["done"])
