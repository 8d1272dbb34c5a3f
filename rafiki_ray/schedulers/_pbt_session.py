"""Trial side of :class:`rafiki_ray.schedulers.PBT`: publish weights, pick up exploits in place.

A Tune function trainable reports through a :class:`PBTSession` instead of ``tune.report``::

    def train(config):
        sess = PBTSession(config)
        model, opt = make_model(), make_opt(sess.config["lr"])
        ex = sess.start()                          # an exploit posted while we were paused
        if ex is None and tune.get_checkpoint():   # ... or our own checkpoint
            load_own_checkpoint(model)
        elif ex is not None:
            params_to_torch(ex.params, model)
        while True:
            acc = train_one_epoch(model, opt)
            ex = sess.report({"acc": acc}, params=lambda: torch_to_params(model))
            if ex is not None:                     # PBT copied a better member into us
                params_to_torch(ex.params, model)  # its weights (+ weight noise)
                set_lr(opt, sess.config["lr"])     # and its perturbed hyperparameters

``report`` (1) publishes the parameters to the :class:`~rafiki_ray.sharing.ParamStore` (one
``ray.put`` owned by the store actor), (2) calls ``tune.report``, which in a Tune function
trainable returns only after the scheduler has decided on this result, then (3) takes the
exploit instruction the scheduler may have posted for this trial and reads the source
member's weights zero-copy (``ray.get`` of the stored ref). Nothing is written to storage.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray.schedulers._pbt_explore import add_weight_noise, instruction_key

logger = logging.getLogger(__name__)

__all__ = ["PBTSession", "Exploit", "DEFAULT_STORE", "PUBLISHED_KEY", "APPLIED_KEY"]

#: Name of the ParamStore actor PBT and PBTSession use unless told otherwise.
DEFAULT_STORE = "rafiki_pbt_store"
#: Result key: the step whose parameters this report published (the scheduler copies only
#: members that have published).
PUBLISHED_KEY = "pbt_published_step"
#: Result key: the id of the last exploit instruction this trial applied.
APPLIED_KEY = "pbt_applied"


@dataclass
class Exploit:
    """What a trial received from PBT: a better member's weights and new hyperparameters."""

    params: dict[str, Any] | None
    config: dict[str, Any]
    source: str | None
    source_step: int | None
    instruction_id: int
    decision_time: float
    loaded_time: float
    info: dict[str, Any] = field(default_factory=dict)
    #: The source's parameters as stored (read-only, zero-copy), before weight noise.
    source_params: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def latency_s(self) -> float:
        """Seconds from the scheduler's decision to the weights being in this process."""
        return self.loaded_time - self.decision_time


class PBTSession:
    """Trial-side helper of :class:`~rafiki_ray.schedulers.PBT` (see the module docstring).

    Args:
        config: the trial's config (``PBTSession.config`` then follows exploits).
        store: the :class:`~rafiki_ray.sharing.ParamStore` or its name (the scheduler's
            ``store`` argument; default ``"rafiki_pbt_store"``).
        namespace: Ray namespace of the store (``None``: the trial's own).
        trial_id: defaults to the Tune trial's id.
    """

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        store: Any = None,
        namespace: str | None = None,
        trial_id: str | None = None,
    ) -> None:
        from rafiki_ray.sharing.param_store import ParamStore

        if config is not None and not isinstance(config, Mapping):
            raise invalid_type("PBTSession.config", "must be a dict", config)
        self.config: dict[str, Any] = copy.deepcopy(dict(config or {}))
        if isinstance(store, ParamStore):
            self._store = store
        else:
            name = DEFAULT_STORE if store is None else store
            if not isinstance(name, str):
                raise invalid_type("PBTSession.store", "must be a ParamStore or its name", store)
            try:
                self._store = ParamStore.get(name, namespace=namespace)
            except ValueError as exc:
                # Never create it here: an actor started inside a trial lives in the trial's
                # placement group and dies with it.
                raise invalid(
                    "PBTSession.store", "no ParamStore of this name; the PBT scheduler creates "
                    "it on the driver (use the same store= in both)", name,
                ) from exc
        if trial_id is None:
            from ray import tune

            trial_id = tune.get_context().get_trial_id()
        if not trial_id:
            raise invalid("PBTSession.trial_id", "is unknown outside a Tune trial; pass trial_id=", trial_id)
        self.trial_id: str = str(trial_id)
        self._key = instruction_key(self.trial_id)
        self._steps = 0
        self._applied: int = -1
        self.exploits: list[Exploit] = []
        self.publish_seconds: float = 0.0

    @property
    def store(self) -> Any:
        return self._store

    def start(self) -> Exploit | None:
        """Call once when the trainable starts: an exploit posted while it was paused, or None."""
        return self.poll()

    def report(
        self,
        metrics: Mapping[str, Any],
        *,
        params: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None,
        checkpoint: Any = None,
        step: int | None = None,
        score: float | None = None,
    ) -> Exploit | None:
        """Publish ``params`` (a dict or a callable making one), report, apply any exploit.

        Returns the :class:`Exploit` to load (its ``params`` are read-only arrays unless
        weight noise made a copy) and updates :attr:`config`, or ``None``. Pass ``params``
        at least at every perturbation interval: only members that published can be copied.
        """
        from ray import tune

        out = self.prepare(metrics, params=params, step=step, score=score)
        tune.report(out, checkpoint=checkpoint)
        return self.poll()

    def prepare(
        self,
        metrics: Mapping[str, Any],
        *,
        params: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None,
        step: int | None = None,
        score: float | None = None,
    ) -> dict[str, Any]:
        """First half of :meth:`report` without ``tune.report``: publish ``params`` and return
        the metrics to report (with the keys the scheduler reads). For trainables that report
        another way (a class trainable's ``step``); call :meth:`poll` after the result was
        processed."""
        if not isinstance(metrics, Mapping):
            raise invalid_type("PBTSession.report.metrics", "must be a dict", metrics)
        self._steps += 1
        step = self._steps if step is None else int(step)
        out = dict(metrics)
        if params is not None:
            t0 = time.perf_counter()
            values = params() if callable(params) else params
            self._store.publish(values, trial_id=self.trial_id, score=score, step=step)
            self.publish_seconds += time.perf_counter() - t0
            out[PUBLISHED_KEY] = step
        out[APPLIED_KEY] = self._applied
        return out

    def poll(self) -> Exploit | None:
        """Take and apply the exploit instruction posted for this trial, if any."""
        pickup = time.time()
        msg = self._store.take(self._key)
        if msg is None:
            return None
        params = raw = None
        if msg.get("source") is not None:
            import ray

            ref = self._store.fetch_trial_ref(msg["source"], "recent")
            if ref is None:
                logger.warning(
                    "PBT: member %s has no published parameters any more; %s keeps its own "
                    "weights and takes the new hyperparameters", msg["source"], self.trial_id,
                )
            else:
                params = raw = ray.get(ref)
                noise = float(msg.get("weight_noise", 0.0))
                if noise > 0:
                    params = add_weight_noise(params, noise, int(msg["noise_seed"]))
        self.config = copy.deepcopy(msg["config"])
        self._applied = int(msg["id"])
        ex = Exploit(
            params=params,
            config=copy.deepcopy(msg["config"]),
            source=msg.get("source"),
            source_step=msg.get("source_step"),
            instruction_id=int(msg["id"]),
            decision_time=float(msg["time"]),
            loaded_time=time.time(),
            info={**{k: v for k, v in msg.items() if k != "config"}, "pickup_time": pickup},
            source_params=raw,
        )
        self.exploits.append(ex)
        return ex
