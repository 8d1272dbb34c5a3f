"""Trial side of :class:`rafiki_ray.schedulers.PBT`: publish weights, pick up exploits in place.

A Tune function trainable reports through a :class:`PBTSession` instead of ``tune.report``::

    def train(config):
        sess = PBTSession(config)
        model, opt = make_model(), make_opt(sess.config["lr"])
        ex = sess.start()                          # an exploit posted while we were paused
        if ex is None and tune.get_checkpoint():   # ... or our own checkpoint
            load_own_checkpoint(model)
        elif ex is not None:
            ex.load_into(model)
        while True:
            acc = train_one_epoch(model, opt)
            ex = sess.report({"acc": acc}, params=lambda: torch_to_params(model))
            if ex is not None:                     # PBT copied a better member into us
                ex.load_into(model)                # its weights (+ weight noise), in place
                set_lr(opt, sess.config["lr"])     # and its perturbed hyperparameters

``report`` (1) publishes the parameters to the :class:`~rafiki_ray.sharing.ParamStore` (one
``ray.put`` owned by the store actor), (2) calls ``tune.report``, which in a Tune function
trainable returns only after the scheduler has decided on this result, then (3) takes the
exploit instruction the scheduler may have posted for this trial together with the source
member's stored ref (one round trip to the store actor) and reads the weights zero-copy
(``ray.get``: read-only views into the object store). Nothing is written to storage.

Copies of the parameter bytes on the exploit path: exactly one, into the trial's own
parameters, by :meth:`Exploit.load_into` (``tensor.copy_`` from the zero-copy arrays; with
``weight_noise`` the noise is drawn into the destination and the source added in the same
pass). ``Exploit.params`` is the zero-copy set itself (or, with weight noise, a noisy copy made
on first access, for code that wants arrays). The publishing side makes two copies (``ray.put``,
then the store actor's own copy so that the set outlives the trial), before its report, and a
set becomes visible to readers only when the store's copy is complete, so an exploit never waits
for a publish in flight.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray.schedulers._pbt_explore import add_weight_noise, copy_weights, instruction_key

logger = logging.getLogger(__name__)

__all__ = ["APPLIED_KEY", "DEFAULT_STORE", "PUBLISHED_KEY", "Exploit", "PBTSession"]

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

    config: dict[str, Any]
    source: str | None
    source_step: int | None
    instruction_id: int
    decision_time: float
    loaded_time: float
    info: dict[str, Any] = field(default_factory=dict)
    #: The source's parameters as stored (read-only, zero-copy), before weight noise.
    source_params: dict[str, Any] | None = field(default=None, repr=False)
    weight_noise: float = 0.0
    noise_seed: int | None = None
    _noisy: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def latency_s(self) -> float:
        """Seconds from the scheduler's decision to the weights being readable here."""
        return self.loaded_time - self.decision_time

    @property
    def params(self) -> dict[str, Any] | None:
        """The copied weights: the zero-copy stored set, or with ``weight_noise`` a noisy copy
        (made on first access). :meth:`load_into` avoids that copy."""
        if self.source_params is None or self.weight_noise == 0:
            return self.source_params
        if self._noisy is None:
            self._noisy = add_weight_noise(self.source_params, self.weight_noise,
                                           int(self.noise_seed or 0))
        return self._noisy

    def load_into(self, target: Any, *, strict: bool = True) -> Any:
        """Write the copied weights (plus weight noise) into ``target`` in place; returns it.

        ``target`` is a ``torch.nn.Module`` (its parameters and buffers, as
        :func:`~rafiki_ray.sharing.params_to_torch`) or a dict of writable numpy arrays. One
        copy from the object store into the existing memory; the same values as loading
        :attr:`params`. ``strict`` as in ``params_to_torch``; ``ValueError`` when this exploit
        carries no weights (the source had none) or a key or shape does not match.
        """
        src = self.source_params
        if src is None:
            raise invalid("Exploit.load_into", "this exploit carries no weights (params is None)",
                          self.source)
        scale, seed = self.weight_noise, self.noise_seed
        if isinstance(target, Mapping):
            arrays = _check_array_targets(src, target, strict)
            copy_weights(src, arrays, scale, seed)
            return target
        from rafiki_ray.sharing.convert import _torch_views, params_to_torch

        if scale == 0:
            return params_to_torch(src, target, strict=strict)
        views, later = _torch_views(src, target, strict=strict)
        import torch

        with torch.no_grad():
            copy_weights(src, views, scale, seed)
            for tensor, array in later:  # GPU or bfloat16 tensors: through one host array
                tensor.copy_(torch.from_numpy(array))
        return target


def _check_array_targets(src: Mapping[str, Any], target: Mapping[str, Any], strict: bool
                         ) -> dict[str, Any]:
    import numpy as np

    arrays: dict[str, Any] = {}
    for key, value in src.items():
        if not isinstance(value, np.ndarray):
            continue
        if key not in target:
            if strict:
                raise invalid("Exploit.load_into", f"target has no array {key!r}", sorted(target)[:5])
            continue
        out = target[key]
        if not isinstance(out, np.ndarray) or not out.flags.writeable:
            raise invalid_type(f"Exploit.load_into target[{key!r}]", "must be a writable numpy array",
                               type(out))
        if out.shape != value.shape:
            raise invalid(f"Exploit.load_into target[{key!r}]",
                          f"shape does not match the copied {value.shape}", out.shape)
        arrays[key] = out
    if strict:
        extra = [k for k in target if not isinstance(src.get(k), np.ndarray)]
        if extra:
            raise invalid("Exploit.load_into", f"target key {extra[0]!r} has no copied array",
                          sorted(extra)[:5])
    return arrays


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
        #: Every exploit received (metadata only: ``params`` is None, see :meth:`poll`).
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

    def _read_source(self, source: str, ref: Any) -> dict[str, Any] | None:
        """The source's set (zero-copy). When its object died with its node, the store drops
        it and the source's next valid set is read instead (``None`` if none is left)."""
        import ray
        from ray.exceptions import ObjectLostError

        try:
            return ray.get(ref)
        except ObjectLostError:
            logger.warning("PBT: the set of member %s that %s was to copy was lost with its "
                           "node; reading its next valid set", source, self.trial_id)
            # the store's reader drops the lost record (and every record of a dead node)
            return self._store.fetch_trial(source)

    def poll(self) -> Exploit | None:
        """Take and apply the exploit instruction posted for this trial, if any.

        One round trip to the store actor returns the instruction and the source's most recent
        complete set; its arrays are read zero-copy. Load them with :meth:`Exploit.load_into`.
        """
        pickup = time.time()
        msg, ref = self._store.take_with_ref(self._key)
        if msg is None:
            return None
        taken = time.time()
        raw = None
        if msg.get("source") is not None:
            if ref is None:
                logger.warning(
                    "PBT: member %s has no published parameters any more; %s keeps its own "
                    "weights and takes the new hyperparameters", msg["source"], self.trial_id,
                )
            else:
                raw = self._read_source(msg["source"], ref)
        self.config = copy.deepcopy(msg["config"])
        self._applied = int(msg["id"])
        noise = float(msg.get("weight_noise", 0.0))
        ex = Exploit(
            config=copy.deepcopy(msg["config"]),
            source=msg.get("source"),
            source_step=msg.get("source_step"),
            instruction_id=int(msg["id"]),
            decision_time=float(msg["time"]),
            loaded_time=time.time(),
            info={**{k: v for k, v in msg.items() if k != "config"}, "pickup_time": pickup,
                  "taken_time": taken},
            source_params=raw,
            weight_noise=noise if raw is not None else 0.0,
            noise_seed=int(msg["noise_seed"]) if msg.get("noise_seed") is not None else None,
        )
        # the history keeps metadata only: an Exploit holding the zero-copy arrays pins the
        # source's set in the object store for as long as it lives (1 GB per exploit at 1 GB)
        self.exploits.append(dataclasses.replace(ex, source_params=None))
        return ex
