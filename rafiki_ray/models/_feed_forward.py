"""The knobs of Rafiki's ``TfFeedForward`` that both feed-forward examples share
(``examples/models/TfFeedForward.py`` and ``PyFeedForward.py``); in the package because model
files are loaded by path and pickled by value, so Ray workers cannot import their siblings."""

from __future__ import annotations

from typing import Any

from rafiki_ray.knobs import CategoricalKnob, FixedKnob, FloatKnob, IntegerKnob


def feed_forward_knobs() -> dict[str, Any]:
    """Fresh knobs, in Rafiki's order: ``max_epochs`` (10), ``hidden_layer_count``,
    ``hidden_layer_units``, log-scaled ``learning_rate`` and ``batch_size``; callers add
    ``max_image_size`` and their policies after them."""
    return {
        "max_epochs": FixedKnob(10),
        "hidden_layer_count": IntegerKnob(1, 2),
        "hidden_layer_units": IntegerKnob(2, 128),
        "learning_rate": FloatKnob(1e-5, 1e-1, is_exp=True),
        "batch_size": CategoricalKnob([16, 32, 64, 128]),
    }
