"""The actor behind :class:`rafiki_ray.sharing.ParamStore`: metadata and object refs only.

The actor never sees the arrays. Ray 2.56 removed ``ray.put(..., _owner=actor)``, so ownership
is moved this way: the publisher ``ray.put``s its set and sends the ``ObjectRef`` wrapped in a
list (so Ray does not resolve it); the actor submits a zero-CPU task pinned to the
publisher's node that returns the set, which makes the actor the owner of the returned object
(Ray: the caller owns a task's returns). That costs one copy inside the publisher node's object
store; the publisher waits for it, then drops its own object. The data never passes through the
actor process. Dropping the last ref here (eviction, ``drop_trial``, ``clear``) lets Ray free the
object-store memory.

A set becomes visible only when the store's copy is complete: ``add`` keeps the record *pending*
(no slot points at it, readers still get the previous set) and the publisher ``commit``s it after
the copy task finished. So a reader's ``ray.get`` never waits for a copy in flight (before this, a
PBT exploit that looked up a member in the middle of its next publish waited up to a second at
1 GB for that copy).

Retention (Rafiki's cache, ``rafiki/redis/param_cache.py``, with its caveats fixed): a record is
kept while some slot points at it, namely the most recent set of each trial, the best set of each
trial, and the top-``keep_top_k`` sets by score. The best is replaced only by a *strictly* better
score in the store's ``mode``; ``None`` and NaN scores never rank. Under ``max_bytes`` the store
evicts, worst score first then oldest, every record that is neither in the top-k nor the most
recent of its trial, until the total fits.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["ParamStoreActor"]

_COPY_TASK: Any = None


def _dead_nodes() -> set[str]:
    """Ids of the nodes Ray reports dead (``ray.nodes()``, public API)."""
    import ray

    return {n["NodeID"] for n in ray.nodes() if not n.get("Alive", True)}


def _own_copy(boxed: list[Any]) -> tuple[Any, bool]:
    """Task body: materialise the publisher's set; the return is owned by the caller (actor)."""
    import ray

    return ray.get(boxed[0]), True


def _copy_task(node_id: str | None) -> Any:
    global _COPY_TASK
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    if _COPY_TASK is None:
        _COPY_TASK = ray.remote(_own_copy)
    options: dict[str, Any] = {"num_cpus": 0, "num_returns": 2, "max_retries": 0}
    if node_id:
        # not soft: Ray 2.60 ran a soft-pinned 0-CPU task on another node about half the
        # time, a cross-node copy (and a set that outlived, or died with, the wrong node)
        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id, soft=False)
    return _COPY_TASK.options(**options)


class ParamStoreActor:
    """Plain class; :mod:`rafiki_ray.sharing.param_store` wraps it with ``ray.remote``."""

    def __init__(self, mode: str, max_bytes: int | None, keep_top_k: int) -> None:
        self._mode = mode
        self._max_bytes = max_bytes
        self._keep_top_k = keep_top_k
        self._seq = 0
        self._records: dict[int, dict[str, Any]] = {}  # record id -> meta
        self._refs: dict[int, Any] = {}  # record id -> ObjectRef (owned by this actor)
        self._recent: dict[str, int] = {}  # trial id -> record id
        self._best: dict[str, int] = {}  # trial id -> record id (may have been evicted)
        self._best_score: dict[str, float] = {}  # trial id -> best score ever published
        self._global_recent: int | None = None
        self._global_best: int | None = None
        self._global_best_score: float | None = None
        self._messages: dict[str, Any] = {}
        # record id -> (record, ref, done ref): copies in flight, invisible until commit
        self._pending: dict[int, tuple[dict[str, Any], Any, Any]] = {}
        self._published = 0
        self._evicted = 0
        self._evicted_bytes = 0
        self._released = 0
        self._lost = 0  # records dropped because their objects died with a node
        self._warned_over_cap = False

    # ------------------------------------------------------------------ helpers
    def _better(self, a: float | None, b: float | None) -> bool:
        """True when score ``a`` is strictly better than ``b`` (``None`` = nothing yet)."""
        if a is None:
            return False
        if b is None:
            return True
        return a > b if self._mode == "max" else a < b

    def _rank_key(self, rid: int) -> tuple[int, float, int]:
        """Sort key, best first: ranked scores first, then by score, newest first on ties."""
        score = self._records[rid]["score"]
        if score is None:
            return (1, 0.0, -rid)
        return (0, -score if self._mode == "max" else score, -rid)

    def _top_k(self) -> set[int]:
        ranked = [rid for rid in self._records if self._records[rid]["score"] is not None]
        ranked.sort(key=self._rank_key)
        return set(ranked[: self._keep_top_k])

    def _protected(self) -> set[int]:
        return self._top_k() | set(self._recent.values())

    def _referenced(self) -> set[int]:
        live = self._protected() | set(self._best.values())
        if self._global_best is not None:
            live.add(self._global_best)
        if self._global_recent is not None:
            live.add(self._global_recent)
        return live

    def _drop(self, rid: int, *, evicted: bool) -> None:
        meta = self._records.pop(rid)
        self._refs.pop(rid, None)  # the last ref held here: Ray may now free the object
        self._released += 1
        if evicted:
            self._evicted += 1
            self._evicted_bytes += meta["nbytes"]
            logger.debug("evicted record %d of trial %s", rid, meta["trial_id"])
        for slots in (self._best, self._recent):
            for tid in [t for t, r in slots.items() if r == rid]:
                del slots[tid]
        if self._global_best == rid:
            self._global_best = None
        if self._global_recent == rid:
            self._global_recent = None

    def _gc(self) -> None:
        """Release records no slot refers to, then evict down to ``max_bytes``."""
        live = self._referenced()
        for rid in [r for r in self._records if r not in live]:
            self._drop(rid, evicted=False)
        if self._max_bytes is None:
            return
        total = sum(m["nbytes"] for m in self._records.values())
        if total <= self._max_bytes:
            return
        protected = self._protected()
        victims = [r for r in self._records if r not in protected]
        victims.sort(key=self._rank_key, reverse=True)  # worst first, oldest first on ties
        for rid in victims:
            if total <= self._max_bytes:
                break
            total -= self._records[rid]["nbytes"]
            self._drop(rid, evicted=True)
        if total > self._max_bytes:
            # once per actor: a tiny cap on purpose ("keep only what is protected") is valid
            log = logger.debug if self._warned_over_cap else logger.warning
            self._warned_over_cap = True
            log(
                "ParamStore holds %d bytes over max_bytes=%d: the rest is protected "
                "(top-%d by score and the most recent set of each trial)",
                total,
                self._max_bytes,
                self._keep_top_k,
            )

    @staticmethod
    def _public(meta: dict[str, Any]) -> dict[str, Any]:
        return dict(meta)

    # ------------------------------------------------------------------ publish / fetch
    def add(self, boxed_ref: list[Any], meta: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
        """Start the store's copy of a published set; ``boxed_ref`` is ``[ObjectRef]`` owned by
        the publisher.

        Returns ``{"record_id": ...}`` and ``[done_ref]``: the publisher waits on ``done_ref``
        (it raises if the copy failed), then calls :meth:`commit` (or :meth:`discard`). Until
        then the record is pending and no reader sees it.
        """
        tid = meta["trial_id"]
        # a publisher publishes one set at a time: an older pending set of the same trial whose
        # copy has ended was never committed (its publisher died in between)
        stale = [rid for rid, (rec, _, done) in self._pending.items() if rec["trial_id"] == tid]
        if stale:
            import ray

            ended, _ = ray.wait([self._pending[r][2] for r in stale], num_returns=len(stale),
                                timeout=0)
            ended_set = set(ended)
            for rid in stale:
                if self._pending[rid][2] in ended_set:
                    del self._pending[rid]
        owned, done = _copy_task(meta.get("node_id")).remote(boxed_ref)
        self._seq += 1
        rid = self._seq
        score = meta.get("score")
        if score is not None and math.isnan(score):
            score = None
        record = {
            "record_id": rid,
            "trial_id": tid,
            "step": meta.get("step"),
            "score": score,
            "nbytes": int(meta["nbytes"]),
            "n_arrays": int(meta.get("n_arrays", 0)),
            "time": time.time(),
            "node_id": meta.get("node_id"),
        }
        self._pending[rid] = (record, owned, done)
        return {"record_id": rid}, [done]

    def commit(self, record_id: int) -> dict[str, Any]:
        """Make a pending set visible (its copy is complete); returns its metadata.

        ``retained`` is False when the set was released at once (the cap evicted it) or was no
        longer pending (dropped by ``clear``/``drop_trial`` meanwhile).
        """
        entry = self._pending.pop(record_id, None)
        if entry is None:
            return {"record_id": record_id, "retained": False}
        record, owned, _ = entry
        record["time"] = time.time()
        rid = record["record_id"]
        self._records[rid] = record
        self._refs[rid] = owned
        self._published += 1
        tid = record["trial_id"]
        score = record["score"]
        self._recent[tid] = rid
        self._global_recent = rid
        if self._better(score, self._best_score.get(tid)):
            self._best_score[tid] = score
            self._best[tid] = rid
        if self._better(score, self._global_best_score):
            self._global_best_score = score
            self._global_best = rid
        self._gc()
        out = self._public(record)
        out["retained"] = rid in self._records
        return out

    def discard(self, record_id: int) -> None:
        """Forget a set whose copy failed (called by the publisher)."""
        self._pending.pop(record_id, None)
        if record_id in self._records:  # (committed already: a publisher retrying by hand)
            self._drop(record_id, evicted=False)
            self._published -= 1

    def _slot(self, policy: str, trial_id: str | None) -> int | None:
        if policy == "LOCAL_RECENT":
            return self._recent.get(trial_id)  # type: ignore[arg-type]
        if policy == "LOCAL_BEST":
            return self._best.get(trial_id)  # type: ignore[arg-type]
        if policy == "GLOBAL_RECENT":
            return self._global_recent
        if policy == "GLOBAL_BEST":
            return self._global_best
        raise ValueError(f"policy: unknown share policy, got {policy!r}")

    def lookup(self, policy: str, trial_id: str | None) -> tuple[list[Any], dict[str, Any]] | None:
        """``([ref], meta)`` for a policy, or ``None`` when that slot is empty."""
        rid = self._slot(policy, trial_id)
        if rid is None or rid not in self._records:
            return None
        return [self._refs[rid]], self._public(self._records[rid])

    def lookup_trial(self, trial_id: str, which: str) -> tuple[list[Any], dict[str, Any]] | None:
        return self.lookup("LOCAL_RECENT" if which == "recent" else "LOCAL_BEST", trial_id)

    def take_with_set(self, key: str, source_field: str, which: str
                      ) -> tuple[bool, Any, tuple[list[Any], dict[str, Any]] | None]:
        """``take(key)`` and, when the message is a dict naming a trial under
        ``source_field``, that trial's set (as :meth:`lookup_trial`) in the same round trip."""
        found, value = self.take(key)
        if not found or not isinstance(value, dict) or value.get(source_field) is None:
            return found, value, None
        return found, value, self.lookup_trial(str(value[source_field]), which)

    # ------------------------------------------------------------------ lost objects
    def forget_lost(self, record_ids: list[int]) -> int:
        """Drop records whose objects are lost (a reader's ``ray.get`` raised
        ``ObjectLostError``: the node holding them died), and every other record held on a
        node Ray reports dead; then refill the slots from what is left, so readers get the
        next valid set (the best remaining for ``*_BEST``, the newest for ``*_RECENT``).
        Returns how many records were dropped."""
        dead = {int(r) for r in record_ids if int(r) in self._records}
        dead_nodes = _dead_nodes()
        dead |= {r for r, m in self._records.items() if m.get("node_id") in dead_nodes}
        for rid in [r for r, (m, _, _) in self._pending.items() if m.get("node_id") in dead_nodes]:
            del self._pending[rid]
        for rid in dead:
            self._drop(rid, evicted=False)
            self._lost += 1
        if dead:
            logger.warning(
                "ParamStore: dropped %d parameter sets whose objects were lost with their node",
                len(dead),
            )
            self._refill()
        return len(dead)

    def _refill(self) -> None:
        """Point every empty slot at the best (or newest) record still held."""
        by_trial: dict[str, list[int]] = {}
        for rid, meta in self._records.items():
            by_trial.setdefault(meta["trial_id"], []).append(rid)
        for tid, rids in by_trial.items():
            if tid not in self._recent:
                self._recent[tid] = max(rids)
            if tid not in self._best:
                ranked = sorted((r for r in rids if self._records[r]["score"] is not None),
                                key=self._rank_key)
                if ranked:
                    self._best[tid] = ranked[0]
                    self._best_score[tid] = self._records[ranked[0]]["score"]
                else:
                    self._best_score.pop(tid, None)
        for tid in [t for t in self._best_score if t not in by_trial]:
            del self._best_score[tid]
        if self._global_recent is None and self._records:
            self._global_recent = max(self._records)
        if self._global_best is None:
            ranked = sorted((r for r in self._records if self._records[r]["score"] is not None),
                            key=self._rank_key)
            self._global_best = ranked[0] if ranked else None
            self._global_best_score = self._records[ranked[0]]["score"] if ranked else None

    # ------------------------------------------------------------------ housekeeping
    def drop_trial(self, trial_id: str) -> int:
        """Forget one trial's slots; returns how many records were released."""
        before = self._released
        self._recent.pop(trial_id, None)
        self._best.pop(trial_id, None)
        self._best_score.pop(trial_id, None)
        for rid in [r for r, m in self._records.items() if m["trial_id"] == trial_id]:
            self._drop(rid, evicted=False)
        for rid in [r for r, (m, _, _) in self._pending.items() if m["trial_id"] == trial_id]:
            del self._pending[rid]
        self._gc()
        return self._released - before

    def retire_trial(self, trial_id: str) -> int:
        """The trial ended: its own slots (most recent, best) stop protecting its sets, which
        stay only while the top-k or a global slot holds them; returns how many were released.
        (A later ``forget_lost`` refill may point its slots at a set still held.)"""
        before = self._released
        self._recent.pop(trial_id, None)
        self._best.pop(trial_id, None)
        self._best_score.pop(trial_id, None)
        self._gc()
        return self._released - before

    def clear(self) -> int:
        n = len(self._records)
        for rid in list(self._records):
            self._drop(rid, evicted=False)
        self._pending.clear()
        self._best_score.clear()
        self._global_best_score = None
        self._messages.clear()
        self._published = self._evicted = self._evicted_bytes = self._released = 0
        return n

    def stats(self) -> dict[str, Any]:
        records = sorted(self._records.values(), key=lambda m: m["record_id"])
        per_trial: dict[str, dict[str, Any]] = {}
        for meta in records:
            entry = per_trial.setdefault(
                meta["trial_id"], {"count": 0, "bytes": 0, "records": []}
            )
            entry["count"] += 1
            entry["bytes"] += meta["nbytes"]
            entry["records"].append(self._public(meta))
        for tid, entry in per_trial.items():
            entry["recent"] = self._recent.get(tid)
            entry["best"] = self._best.get(tid)
            entry["best_score"] = self._best_score.get(tid)
        import ray

        ctx = ray.get_runtime_context()
        return {
            "actor": {"node_id": ctx.get_node_id(), "worker_id": ctx.get_worker_id()},
            "mode": self._mode,
            "max_bytes": self._max_bytes,
            "keep_top_k": self._keep_top_k,
            "count": len(records),
            "bytes": sum(m["nbytes"] for m in records),
            "over_cap": self._max_bytes is not None
            and sum(m["nbytes"] for m in records) > self._max_bytes,
            "published": self._published,
            "evicted": self._evicted,
            "evicted_bytes": self._evicted_bytes,
            "released": self._released,
            "lost": self._lost,
            "pending": len(self._pending),
            "global_recent": self._global_recent,
            "global_best": self._global_best,
            "global_best_score": self._global_best_score,
            "messages": sorted(self._messages),
            "trials": per_trial,
        }

    def settings(self) -> dict[str, Any]:
        """Settings of this actor (``get`` copies them into the handle)."""
        return {"mode": self._mode, "max_bytes": self._max_bytes, "keep_top_k": self._keep_top_k}

    # ------------------------------------------------------------------ messages
    def post(self, key: str, value: Any) -> None:
        self._messages[key] = value

    def take(self, key: str) -> tuple[bool, Any]:
        if key in self._messages:
            return True, self._messages.pop(key)
        return False, None

    def peek(self, key: str) -> tuple[bool, Any]:
        if key in self._messages:
            return True, self._messages[key]
        return False, None

    def ping(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()
