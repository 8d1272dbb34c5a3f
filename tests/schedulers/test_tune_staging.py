"""A paused trial that Tune still marks as staged is resumed all the same.

Tune's ``_maybe_add_actors`` (its step 3, which gives a cached actor to a PENDING trial) adds
the trial to ``_staged_trials`` after the trial has started, and the mark stays until that
trial's next actor start. When the scheduler later hands the paused trial back, Tune's step 1
takes it for staged and only tries a cached actor; with none cached (``reuse_actors=False``
here) the trial never starts and the experiment hangs until its time budget runs out. The
schedulers drop such a stale mark before handing a trial over (``_hand_over``).

The tests mark every paused trial the way step 3 leaves it, with real Tune and real training.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from ray.tune.experiment import Trial

from rafiki_ray.schedulers import ASHA, SuccessiveHalving


class _MarkPausedStaged:
    """Marks each PAUSED trial without an actor as staged in Tune, as Tune's step 3 does."""

    handed_back: ClassVar[list[str]] = []

    def choose_trial_to_run(self, tune_controller: Any) -> Trial | None:
        tc = tune_controller._tune_controller
        marked = set()
        for t in tc.get_trials():
            if t.status == Trial.PAUSED and t not in tc._trial_to_actor:
                if t not in tc._staged_trials:
                    tc._staged_trials.add(t)
                    tc._actor_cache.increase_max(t.placement_group_factory)
                marked.add(t)
        chosen = super().choose_trial_to_run(tune_controller)  # type: ignore[misc]
        if chosen is not None and chosen in marked:
            type(self).handed_back.append(chosen.trial_id)
        return chosen


class _MarkedSH(_MarkPausedStaged, SuccessiveHalving):
    handed_back: ClassVar[list[str]] = []


class _MarkedASHA(_MarkPausedStaged, ASHA):
    handed_back: ClassVar[list[str]] = []


@pytest.mark.parametrize("make", [
    lambda: _MarkedSH(min_resource=1, max_resource=3, reduction_factor=3, num_trials=3,
                      time_attr="epoch"),
    lambda: _MarkedASHA(max_t=3, grace_period=1, reduction_factor=3, time_attr="epoch"),
], ids=["SuccessiveHalving", "ASHA"])
def test_a_paused_trial_marked_staged_by_tune_resumes(ray_session, storage, make):
    from ray import tune

    from rafiki_ray.testing.schedulers import torch_trainable

    sched = make()
    type(sched).handed_back.clear()
    grid = tune.Tuner(
        torch_trainable,
        # the best learning rate first: it is paused when the third trial fills the rung, so
        # its promotion is a resume rather than a trial continuing in place
        param_space={"lr": tune.grid_search([0.5, 0.05, 0.01]), "horizon": 3},
        tune_config=tune.TuneConfig(metric="loss", mode="min", scheduler=sched,
                                    max_concurrent_trials=2, reuse_actors=False,
                                    time_budget_s=45),
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    ).fit()
    assert type(sched).handed_back, "no marked paused trial was handed back: nothing tested"
    assert grid.num_errors == 0
    # without the fix the resumed trial never starts: every trial ends at epoch 1
    assert max(r.metrics["epoch"] for r in grid) == 3
    for r in grid:
        epochs = list(r.metrics_dataframe["epoch"])
        assert epochs == list(range(1, len(epochs) + 1)), epochs
