"""Parameter sharing between trials through Ray's object store.

Rafiki (Wang et al., "Rafiki: Machine Learning as an Analytics Service System", VLDB 2018)
shared parameters between trials through Redis with four policies (``LOCAL_RECENT``,
``LOCAL_BEST``, ``GLOBAL_RECENT``, ``GLOBAL_BEST``; ``rafiki/redis/param_cache.py``).
Here a named, detached Ray actor keeps only *object references* and metadata; the arrays
live in Ray's object store on the publisher's node, owned by the actor (see ``_actor.py`` for
how ownership moves now that Ray 2.56 removed ``ray.put(_owner=)``), so they outlive the trial
that published them, are read zero-copy on the same node and are moved by Ray between nodes.
A set becomes visible when the store's copy is complete (readers never wait for a publish in
flight); meanwhile the trial's previous set stays readable, so plan object-store memory for
three sets per publishing trial (previous, the publisher's ``ray.put``, the store's copy).

Fixed caveats of the original: the best set is replaced only by a strictly better score,
``None`` (and NaN) never counts as a score (Rafiki used 0), and ``mode`` sets the direction.

Example::

    store = ParamStore.get_or_create("my_store", mode="max", max_bytes=2**30)
    store.publish(torch_to_params(model), trial_id=tid, score=acc, step=epoch)
    params = store.fetch("GLOBAL_BEST")          # dict of read-only numpy arrays, or None
"""

from __future__ import annotations

import enum
import logging
import math
import numbers
import uuid
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray.sharing._actor import ParamStoreActor

if TYPE_CHECKING:
    from ray import ObjectRef

logger = logging.getLogger(__name__)

__all__ = ["ParamStore", "SharePolicy", "check_params", "params_nbytes"]

DEFAULT_NAME = "rafiki_param_store"
#: Prefix of the namespace a store gets when its job runs in an anonymous namespace.
ANONYMOUS_PREFIX = "rafiki_ray-"


def _is_anonymous(namespace: str) -> bool:
    """Whether ``namespace`` is one ``ray.init()`` made up (``str(uuid.uuid4())``)."""
    try:
        return str(uuid.UUID(namespace, version=4)) == namespace
    except ValueError:
        return False


#: Lost sets skipped by one read before it gives up (returns None).
_MAX_LOST_RETRIES = 16


class SharePolicy(str, enum.Enum):
    """Rafiki's parameter-sharing policies (``rafiki/constants.py`` ``ParamsType``)."""

    LOCAL_RECENT = "LOCAL_RECENT"
    LOCAL_BEST = "LOCAL_BEST"
    GLOBAL_RECENT = "GLOBAL_RECENT"
    GLOBAL_BEST = "GLOBAL_BEST"

    @classmethod
    def parse(cls, value: Any, path: str = "policy") -> SharePolicy:
        """Accept a member or its name in any case (``"global_best"``)."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str) and value.upper() in cls.__members__:
            return cls[value.upper()]
        names = ", ".join(cls.__members__)
        raise invalid(path, f"must be one of {names}", value)

    def __str__(self) -> str:
        return self.value

    @property
    def is_local(self) -> bool:
        return self in (SharePolicy.LOCAL_RECENT, SharePolicy.LOCAL_BEST)


_SCALARS = (bool, int, float, str, np.bool_, np.integer, np.floating)


def check_params(params: Any, path: str = "params") -> dict[str, Any]:
    """Validate a parameter set: a mapping of str keys to numpy arrays or plain scalars.

    Returns a plain ``dict`` (arrays are not copied). Anything else (lists, tensors, object
    arrays, nested dicts) raises ``TypeError`` naming the key.
    """
    if not isinstance(params, Mapping):
        raise invalid_type(path, "must be a dict of numpy arrays and plain scalars", type(params))
    return _checked_entries(
        params, path, object_rule="object arrays are not parameters",
        value_rule="must be a numpy array or a plain scalar (convert tensors with "
                   "torch_to_params / keras_to_params)",
        plain_names=False)


def _checked_entries(params: Mapping[Any, Any], path: str, *, object_rule: str,
                     value_rule: str, plain_names: bool) -> dict[str, Any]:
    """The entry rule of :func:`check_params` and ``models.check_parameters``: ``str`` keys to
    non-object numpy arrays or plain scalars, as a new ``dict``. ``plain_names`` shows the
    offending dtype as ``str`` and type by ``__name__`` in the ``TypeError``."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if not isinstance(key, str):
            raise invalid_type(f"{path} key", "must be a str", key)
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                raise invalid_type(f"{path}[{key!r}]", object_rule,
                                   str(value.dtype) if plain_names else value.dtype)
        elif not isinstance(value, _SCALARS):
            raise invalid_type(f"{path}[{key!r}]", value_rule,
                               type(value).__name__ if plain_names else type(value))
        out[key] = value
    return out


def params_nbytes(params: Mapping[str, Any]) -> int:
    """Bytes of the arrays (plus a small count for scalars) in a checked parameter set."""
    total = 0
    for value in params.values():
        if isinstance(value, np.ndarray):
            total += int(value.nbytes)
        elif isinstance(value, str):
            total += len(value.encode())
        else:
            total += 8
    return total


def _check_score(score: Any) -> float | None:
    if score is None:
        return None
    if isinstance(score, bool) or not isinstance(score, numbers.Real):
        raise invalid_type("score", "must be a real number or None", score)
    score = float(score)
    return None if math.isnan(score) else score


def _check_step(step: Any) -> int | None:
    if step is None:
        return None
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
        raise invalid_type("step", "must be an int or None", step)
    return int(step)


def _current_trial_id() -> str | None:
    """The Tune trial id of the calling process, or ``None`` outside a Tune trial."""
    try:
        from ray import tune

        with warnings.catch_warnings():  # outside a trial Ray warns and returns None
            warnings.simplefilter("ignore")
            tid = tune.get_context().get_trial_id()
    except Exception:  # noqa: BLE001 - any failure means "not inside a trial"
        return None
    return str(tid) if tid else None


def _trial_id(trial_id: Any, path: str = "trial_id") -> str:
    if trial_id is None:
        trial_id = _current_trial_id()
        if trial_id is None:
            raise invalid(path, "is required outside a Tune trial", None)
    if not isinstance(trial_id, str) or not trial_id:
        raise invalid_type(path, "must be a non-empty str", trial_id)
    return trial_id


class ParamStore:
    """Handle to a named, detached actor that holds object refs to trials' parameter sets.

    Build one with :meth:`create`, :meth:`get` or :meth:`get_or_create`. The handle pickles
    as ``(name, namespace)`` and finds the actor again on first use, so it can travel in a
    Tune config, a closure or a scheduler (and survives a driver restart while the actor does).

    Args:
        name: actor name (one store per name and namespace).
        namespace: Ray namespace; ``None`` means the caller's namespace (recorded at creation,
            so that trial workers find the actor), or, when the job has none of its own,
            ``rafiki_ray-<the job's anonymous namespace>`` (a detached actor in an anonymous
            namespace makes Ray warn).
        mode: ``"max"`` or ``"min"``: which scores are better.
        max_bytes: memory cap on the stored parameter bytes; ``None`` for no cap.
        keep_top_k: records never evicted by the cap because they rank in the top k by score
            (the most recent set of each trial is never evicted either).

    Without a cap the store keeps, per trial, its most recent and its best set (at most two);
    older sets are released at once. Under the cap a trial's best set can be evicted; its
    ``LOCAL_BEST`` is then ``None`` until the trial publishes a strictly better score.
    """

    def __init__(self, name: str, namespace: str, *, _handle: Any = None) -> None:
        self._name = name
        self._namespace = namespace
        self._handle = _handle

    # ------------------------------------------------------------------ construction
    @staticmethod
    def _check_options(mode: Any, max_bytes: Any, keep_top_k: Any) -> None:
        if mode not in ("max", "min"):
            raise invalid("mode", "must be 'max' or 'min'", mode)
        if max_bytes is not None and (
            isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer))
            or max_bytes <= 0
        ):
            raise invalid("max_bytes", "must be None or a positive int", max_bytes)
        if isinstance(keep_top_k, bool) or not isinstance(keep_top_k, (int, np.integer)) or (
            keep_top_k < 1
        ):
            raise invalid("keep_top_k", "must be an int >= 1", keep_top_k)

    @staticmethod
    def _resolve_namespace(namespace: str | None) -> str:
        """``namespace``, else the caller's; a job without a namespace of its own runs in an
        anonymous one (a uuid4 that ``ray.init`` made up), where Ray warns about every
        detached actor: the store then lives in ``rafiki_ray-<that uuid>``, which every
        process of the job derives alike and no other job shares."""
        import ray

        if not ray.is_initialized():
            raise RuntimeError("ParamStore: Ray is not initialised; call ray.init() first")
        if namespace is not None:
            return namespace
        current = ray.get_runtime_context().namespace
        return f"{ANONYMOUS_PREFIX}{current}" if _is_anonymous(current) else current

    @classmethod
    def create(
        cls,
        name: str = DEFAULT_NAME,
        *,
        namespace: str | None = None,
        mode: str = "max",
        max_bytes: int | None = None,
        keep_top_k: int = 5,
        _get_if_exists: bool = False,
    ) -> ParamStore:
        """Start the store actor (detached, 0 CPUs); ``ValueError`` if ``name`` is taken.

        Safe to call inside a Tune trial: the actor is placed outside the trial's placement
        group, so it outlives the trial. It is placed on the caller's node: a store created
        by the driver lives on the head and survives the loss of worker nodes.
        """
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        cls._check_options(mode, max_bytes, keep_top_k)
        if not isinstance(name, str) or not name:
            raise invalid_type("name", "must be a non-empty str", name)
        ns = cls._resolve_namespace(namespace)
        actor_cls = ray.remote(ParamStoreActor)
        try:
            handle = actor_cls.options(
                name=name,
                namespace=ns,
                lifetime="detached",
                get_if_exists=_get_if_exists,
                num_cpus=0,
                max_restarts=0,
                # never inside the caller's placement group (Tune trials capture child tasks
                # in theirs): the store must not die with the trial that created it; on the
                # caller's node, so a driver's store stays on the head. Not soft: Ray 2.60
                # placed a soft-pinned 0-CPU actor on another node about half the time (the
                # two-node fault test's store then died with the killed worker node)
                scheduling_strategy=NodeAffinitySchedulingStrategy(
                    ray.get_runtime_context().get_node_id(), soft=False
                ),
            ).remote(mode, None if max_bytes is None else int(max_bytes), int(keep_top_k))
        except ValueError as exc:
            raise invalid("name", f"a ParamStore actor already exists in namespace {ns!r}",
                          name) from exc
        store = cls(name, ns, _handle=handle)
        if _get_if_exists:
            have = ray.get(handle.settings.remote())
            want = {"mode": mode, "max_bytes": max_bytes, "keep_top_k": keep_top_k}
            if have != want:
                logger.warning("ParamStore %r exists with settings %s (asked for %s); "
                               "using the existing one", name, have, want)
        else:
            ray.get(handle.ping.remote())  # surface creation errors here, not on first use
        return store

    @classmethod
    def get(cls, name: str = DEFAULT_NAME, *, namespace: str | None = None) -> ParamStore:
        """Handle to an existing store; ``ValueError`` naming it if there is none."""
        import ray

        ns = cls._resolve_namespace(namespace)
        try:
            handle = ray.get_actor(name, namespace=ns)
        except ValueError as exc:
            raise invalid("name", f"no ParamStore actor in namespace {ns!r}", name) from exc
        return cls(name, ns, _handle=handle)

    @classmethod
    def get_or_create(
        cls,
        name: str = DEFAULT_NAME,
        *,
        namespace: str | None = None,
        mode: str = "max",
        max_bytes: int | None = None,
        keep_top_k: int = 5,
    ) -> ParamStore:
        """The existing store called ``name``, or a new one with these settings."""
        return cls.create(name, namespace=namespace, mode=mode, max_bytes=max_bytes,
                          keep_top_k=keep_top_k, _get_if_exists=True)

    @property
    def name(self) -> str:
        return self._name

    @property
    def namespace(self) -> str:
        return self._namespace

    @property
    def actor(self) -> Any:
        """The Ray actor handle (looked up by name after unpickling)."""
        if self._handle is None:
            import ray

            try:
                self._handle = ray.get_actor(self._name, namespace=self._namespace)
            except ValueError as exc:
                raise invalid("name", f"no ParamStore actor in namespace {self._namespace!r} "
                              "(shut down?)", self._name) from exc
        return self._handle

    def __getstate__(self) -> dict[str, Any]:
        return {"name": self._name, "namespace": self._namespace}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._name = state["name"]
        self._namespace = state["namespace"]
        self._handle = None

    def __repr__(self) -> str:
        return f"ParamStore(name={self._name!r}, namespace={self._namespace!r})"

    def shutdown(self) -> None:
        """Kill the actor; every parameter set it owned is freed by Ray."""
        import ray

        try:
            handle = self.actor
        except ValueError:
            return
        ray.kill(handle, no_restart=True)
        self._handle = None

    # ------------------------------------------------------------------ trial side
    def publish(
        self,
        params: Mapping[str, Any],
        *,
        trial_id: str | None = None,
        score: float | None = None,
        step: int | None = None,
    ) -> dict[str, Any]:
        """Put ``params`` into the object store (owned by the store) and register it.

        Blocks until the store owns its copy (one copy inside this node's object store); the
        set becomes visible to readers only then (until then they get the previous one).
        ``trial_id`` defaults to the calling Tune trial's id. Returns the record's metadata
        (``record_id``, ``trial_id``, ``step``, ``score``, ``nbytes``, ``time``, ``retained``).
        """
        import ray

        tid = _trial_id(trial_id)
        checked = check_params(params)
        meta = {
            "trial_id": tid,
            "score": _check_score(score),
            "step": _check_step(step),
            "nbytes": params_nbytes(checked),
            "n_arrays": sum(isinstance(v, np.ndarray) for v in checked.values()),
            "node_id": ray.get_runtime_context().get_node_id(),
        }
        handle = self.actor
        ref = ray.put(checked)
        pending, (done,) = ray.get(handle.add.remote([ref], meta))
        try:
            ray.get(done)
        except Exception:
            ray.get(handle.discard.remote(pending["record_id"]))
            raise
        del ref  # the store's own copy is complete; ours can go
        # only now do readers see the set: a fetch never waits for a copy in flight
        return ray.get(handle.commit.remote(pending["record_id"]))

    def _lookup(self, policy: Any, trial_id: str | None) -> tuple[Any, dict[str, Any]] | None:
        import ray

        pol = SharePolicy.parse(policy)
        tid = _trial_id(trial_id) if pol.is_local else None
        found = ray.get(self.actor.lookup.remote(pol.value, tid))
        if found is None:
            return None
        boxed, meta = found
        return boxed[0], meta

    @staticmethod
    def _which(which: Any) -> str:
        if which not in ("recent", "best"):
            raise invalid("which", "must be 'recent' or 'best'", which)
        return which

    def _lookup_trial(self, trial_id: str, which: str) -> tuple[Any, dict[str, Any]] | None:
        import ray

        tid = _trial_id(trial_id)
        found = ray.get(self.actor.lookup_trial.remote(tid, self._which(which)))
        if found is None:
            return None
        boxed, meta = found
        return boxed[0], meta

    def fetch(self, policy: SharePolicy | str, *, trial_id: str | None = None
              ) -> dict[str, Any] | None:
        """The parameter set chosen by ``policy`` (Rafiki semantics), or ``None``.

        ``LOCAL_*`` look at the calling trial's own sets (``trial_id`` defaults to the current
        Tune trial). Arrays are read-only views into the object store (zero-copy on a node).
        """
        return self._read(lambda: self._lookup(policy, trial_id))

    def fetch_ref(self, policy: SharePolicy | str, *, trial_id: str | None = None
                  ) -> ObjectRef | None:
        """Like :meth:`fetch` but returns the ``ObjectRef`` (or ``None``) without reading it."""
        found = self._lookup(policy, trial_id)
        return None if found is None else found[0]

    def fetch_trial(self, trial_id: str, which: str = "recent") -> dict[str, Any] | None:
        """A given trial's most recent (or best) parameter set, or ``None`` (PBT exploit)."""
        return self._read(lambda: self._lookup_trial(trial_id, which))

    def _read(self, lookup: Any) -> dict[str, Any] | None:
        """``ray.get`` the set ``lookup()`` finds. A set whose object was lost with its node
        (``ObjectLostError``: the node that held it died) is dropped from the store, with every
        other set of a dead node, and the lookup repeats: the reader gets the next valid set
        (or ``None``), never the error and never a hang. A set on a node that has just died
        is read only once Ray declares the node dead (its GCS health checks: about 15 s with
        Ray's defaults); until then Ray cannot tell a dead node from a slow one."""
        import ray
        from ray.exceptions import ObjectLostError

        for _ in range(_MAX_LOST_RETRIES):
            found = lookup()
            if found is None:
                return None
            try:
                return ray.get(found[0])
            except ObjectLostError:
                record_id = found[1].get("record_id")
                logger.warning("ParamStore %s: set %s was lost with its node", self._name, record_id)
                ray.get(self.actor.forget_lost.remote([record_id]))
        return None

    def fetch_trial_ref(self, trial_id: str, which: str = "recent") -> ObjectRef | None:
        """Like :meth:`fetch_trial` but returns the ``ObjectRef`` (or ``None``)."""
        found = self._lookup_trial(trial_id, which)
        return None if found is None else found[0]

    def record(self, policy: SharePolicy | str, *, trial_id: str | None = None
               ) -> dict[str, Any] | None:
        """Metadata of the set :meth:`fetch` would return (no parameters read)."""
        found = self._lookup(policy, trial_id)
        return None if found is None else found[1]

    def trial_record(self, trial_id: str, which: str = "recent") -> dict[str, Any] | None:
        """Metadata of the set :meth:`fetch_trial` would return."""
        found = self._lookup_trial(trial_id, which)
        return None if found is None else found[1]

    # ------------------------------------------------------------------ housekeeping
    def stats(self) -> dict[str, Any]:
        """Counts, bytes, evictions and per-trial records (metadata only)."""
        import ray

        return ray.get(self.actor.stats.remote())

    def drop_trial(self, trial_id: str) -> int:
        """Release every set of one trial; returns how many were released."""
        import ray

        return ray.get(self.actor.drop_trial.remote(_trial_id(trial_id)))

    def retire_trial(self, trial_id: str) -> int:
        """The trial ended: release its sets except those the top-``keep_top_k`` or the
        global slots still hold (its ``LOCAL_*`` slots become empty); returns how many sets
        were released. :class:`~rafiki_ray.sharing.RetireEndedTrials` calls it for every
        trial Tune ends, so that a long experiment keeps a bounded number of sets."""
        import ray

        return ray.get(self.actor.retire_trial.remote(_trial_id(trial_id)))

    def clear(self) -> int:
        """Release every parameter set and message; returns how many sets were released."""
        import ray

        return ray.get(self.actor.clear.remote())

    # ------------------------------------------------------------------ messages
    @staticmethod
    def _key(key: Any) -> str:
        if not isinstance(key, str) or not key:
            raise invalid_type("key", "must be a non-empty str", key)
        return key

    def post(self, key: str, value: Any) -> None:
        """Leave small plain data under ``key`` (replaces a previous value)."""
        import ray

        ray.get(self.actor.post.remote(self._key(key), value))

    def take(self, key: str, default: Any = None) -> Any:
        """Remove and return the value under ``key``, or ``default``."""
        import ray

        found, value = ray.get(self.actor.take.remote(self._key(key)))
        return value if found else default

    def take_with_ref(self, key: str, *, source_field: str = "source", which: str = "recent"
                      ) -> tuple[Any, ObjectRef | None]:
        """Remove the message under ``key`` and, when it is a dict naming a trial under
        ``source_field``, return that trial's set ref too, in one round trip to the actor.

        Returns ``(message or None, ref or None)`` (PBT's exploit pick-up: the instruction and
        the copied member's most recent complete set).
        """
        import ray

        found, value, hit = ray.get(self.actor.take_with_set.remote(
            self._key(key), source_field, self._which(which)))
        if not found:
            return None, None
        return value, None if hit is None else hit[0][0]

    def peek(self, key: str, default: Any = None) -> Any:
        """The value under ``key`` without removing it, or ``default``."""
        import ray

        found, value = ray.get(self.actor.peek.remote(self._key(key)))
        return value if found else default
