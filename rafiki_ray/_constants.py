"""Constants shared across subpackages (the knob language, the space model, trials)."""

from __future__ import annotations

#: Rafiki's model policies (a PolicyKnob names one of these).
POLICIES = ("SHARE_PARAMS", "EARLY_STOP", "SKIP_TRAIN", "QUICK_EVAL", "DOWNSCALE")

#: Written into a Tune trial's directory when the trial was stopped at its time limit
#: (NNI ``maxTrialDuration``; the trial counts as ``EARLY_STOPPED``).
TIMEOUT_FILE = "rafiki_trial_timeout.json"
