"""Constants shared by the knob language and the space model."""

from __future__ import annotations

#: Rafiki's model policies (a PolicyKnob names one of these).
POLICIES = ("SHARE_PARAMS", "EARLY_STOP", "SKIP_TRAIN", "QUICK_EVAL", "DOWNSCALE")
