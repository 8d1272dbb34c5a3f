"""Every behaviour of Ray Tune that rafiki_ray relies on beyond the scheduler interface, one
test each against real Tune (rafiki_ray/_tune_seam.py). A failure here names the Tune behaviour
that changed; fix the seam function, not the schedulers."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from ray import tune
from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from rafiki_ray import _tune_seam as seam


def test_default_metric_is_tunes():
    from ray.tune.result import DEFAULT_METRIC

    assert seam.DEFAULT_METRIC == DEFAULT_METRIC, "Tune renamed its placeholder metric"


def test_same_run_compares_run_prefixes():
    assert seam.same_run("abcde_00007", {"abcde_00000"})
    assert seam.same_run("abcde_00000", ["abcde_00000"])
    assert not seam.same_run("zzzzz_00000", {"abcde_00000"})
    assert not seam.same_run("nounderscore", {"abcde_00000"})


class _Class(tune.Trainable):
    def step(self):
        return {"x": 1}


def _function(config):
    tune.report({"x": 1})


def test_function_trainables_are_function_trainable_subclasses(ray_session):
    tune.register_trainable("seam_fn", _function)
    tune.register_trainable("seam_cls", _Class)
    assert seam.is_function_trainable(Trial("seam_fn")) is True
    assert seam.is_function_trainable(Trial("seam_cls")) is False
    assert seam.is_function_trainable(Trial("__fake", stub=True)) is None


def test_concurrency_slots_of_a_concurrency_limiter():
    """free_slot / take_slot on a real ConcurrencyLimiter inside Tune's SearchGenerator."""
    from ray.tune.search import ConcurrencyLimiter, Searcher, SearchGenerator

    class _Const(Searcher):
        def suggest(self, trial_id):
            return {"x": 1}

        def on_trial_complete(self, trial_id, result=None, error=False):
            pass

    limiter = ConcurrencyLimiter(_Const(metric="x", mode="max"), max_concurrent=2)
    ctrl = type("Ctrl", (), {"search_alg": SearchGenerator(limiter)})()
    assert limiter.suggest("t1") == {"x": 1} and limiter.suggest("t2") == {"x": 1}
    assert limiter.suggest("t3") is None  # full
    assert seam.concurrency_slots(ctrl) == ({"t1", "t2"}, 2)
    assert seam.free_slot(ctrl, "t1") and not seam.free_slot(ctrl, "t1")
    assert limiter.suggest("t3") == {"x": 1}, "a freed slot is not offered to a new trial"
    assert not seam.take_slot(ctrl, "t1")  # full again
    assert seam.take_slot(ctrl, "t1", force=True)
    assert seam.concurrency_slots(ctrl) == ({"t1", "t2", "t3"}, 2)
    limiter.on_trial_complete("t1")
    limiter.on_trial_complete("t2")
    assert limiter.suggest("t4") == {"x": 1}, "Tune's count of unfinished trials drifted"
    no_limit = type("Ctrl", (), {"search_alg": SearchGenerator(_Const(metric="x", mode="max"))})()
    assert seam.concurrency_slots(no_limit) is None
    assert seam.take_slot(no_limit, "t9") and not seam.free_slot(no_limit, "t9")


def test_a_limiter_whose_searcher_limits_itself_leaves_the_slots_to_the_searcher():
    """Tune's ConcurrencyLimiter does nothing (``_limit_concurrency`` False: neither suggest
    nor on_trial_complete touch ``live_trials``) when its searcher's set_max_concurrency
    returns True, as every rafiki_ray searcher's does; a slot taken in it would never be
    given back (a Polyaxon Hyperband spec with concurrency 2 hung with both slots held by
    finished trials). The seam passes the slots to the rafiki_ray searcher instead."""
    from ray.tune.search import ConcurrencyLimiter, SearchGenerator

    from rafiki_ray.searchers import TPESearch

    tpe = TPESearch(space={"x": tune.uniform(0, 1)}, metric="y", mode="max", seed=0)
    limiter = ConcurrencyLimiter(tpe, max_concurrent=2)
    assert limiter._limit_concurrency is False, "Tune's limiter now limits such searchers"
    ctrl = type("Ctrl", (), {"search_alg": SearchGenerator(limiter)})()
    assert limiter.suggest("t1") is not None
    limiter.on_trial_complete("t1", {"y": 0.5})
    assert limiter.suggest("t2") is not None and limiter.suggest("t3") is not None
    assert limiter.suggest("t4") is None  # t2, t3 pending: the searcher's own limit
    assert limiter.live_trials == set(), "Tune's inert limiter now counts live trials"
    assert seam.concurrency_slots(ctrl) == ({"t2", "t3"}, 2)
    assert seam.free_slot(ctrl, "t2") and not seam.free_slot(ctrl, "t2")
    assert limiter.suggest("t4") is not None, "a freed slot is not offered to a new trial"
    assert seam.concurrency_slots(ctrl) == ({"t3", "t4"}, 2)
    assert not seam.take_slot(ctrl, "t2") and seam.take_slot(ctrl, "t2", force=True)
    limiter.on_trial_complete("t2", {"y": 0.7})
    assert tpe.n_observations == 2  # the searcher heard t1 and t2 (t2's slot was retaken)
    assert seam.concurrency_slots(ctrl) == ({"t3", "t4"}, 2)
    assert limiter.suggest("t5") is None  # full again
    unlimited = TPESearch(space={"x": tune.uniform(0, 1)}, metric="y", mode="max", seed=0)
    ctrl = type("Ctrl", (), {"search_alg": SearchGenerator(unlimited)})()
    assert seam.concurrency_slots(ctrl) is None and seam.take_slot(ctrl, "t1")


# ----------------------------------------------------------------------------- one real run
def _probe_trainable(config):
    start, loaded = 0, ""
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d, open(os.path.join(d, "s.json")) as f:
            saved = json.load(f)
        start, loaded = saved["it"], saved["who"]
    for it in range(start + 1, config["limit"] + 1):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "s.json"), "w") as f:
                json.dump({"who": config["who"], "it": it}, f)
            tune.report({"loaded": loaded, "it": it},
                        checkpoint=tune.Checkpoint.from_directory(d))


class _Probe(FIFOScheduler):
    """Exercises each seam function at the right moment of a real run (one slot):
    a (5 iterations) is re-paused before its first start and has its slot freed and taken
    back; b restarts from a's latest checkpoint at its iteration 2; c is paused at
    iteration 3 and its checkpoint forgotten, so it restarts from scratch."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, Any] = {"its": {}}
        self.by_who: dict[str, Trial] = {}

    def on_trial_add(self, tune_controller, trial):
        super().on_trial_add(tune_controller, trial)
        self.by_who[trial.config["who"]] = trial
        if "dir" not in self.seen:
            path = seam.experiment_dir(trial)
            self.seen["dir"] = path
            os.makedirs(path, exist_ok=True)  # Tune creates it lazily, as _state.save_state
            with open(os.path.join(path, "seam_probe.json"), "w") as f:
                json.dump({"ok": 1}, f)

    def choose_trial_to_run(self, tune_controller):
        tc = tune_controller._tune_controller
        for t in tune_controller.get_trials():
            if (t.config["who"] == "a" and t.status == Trial.PENDING
                    and "repause" not in self.seen and t not in tc._staged_trials):
                self.seen["repause"] = (seam.repause(tune_controller, t), t.status)
            if (t.status == Trial.PAUSED and t not in tc._trial_to_actor
                    and "unmark" not in self.seen and t.config["who"] == "b"):
                # mark it the way Tune's _maybe_add_actors step 3 leaves a trial
                tc._staged_trials.add(t)
                tc._actor_cache.increase_max(t.placement_group_factory)
                self.seen["unmark"] = (seam.unmark_staged(tune_controller, t),
                                       t in tc._staged_trials)
            if t.config["who"] == "c" and t.status == Trial.PAUSED and "forget" not in self.seen:
                self.seen["forget"] = seam.latest_checkpoint(t) is not None
                seam.forget_checkpoint(t)
                self.seen["forgotten"] = seam.latest_checkpoint(t)
        return super().choose_trial_to_run(tune_controller)

    def on_trial_result(self, tune_controller, trial, result):
        who, it = trial.config["who"], result["training_iteration"]
        self.seen["its"].setdefault(who, []).append(it)
        if who == "a" and it == 2 and "trial_dir" not in self.seen:
            local = seam.trial_driver_dir(trial)
            with open(os.path.join(local, "seam_trial_probe.txt"), "w") as f:
                f.write("x")
            self.seen["trial_dir"] = (local, os.path.basename(local))
        if who == "a" and it == 1:
            tid = trial.trial_id
            before = seam.concurrency_slots(tune_controller)
            freed = seam.free_slot(tune_controller, tid)
            during = seam.concurrency_slots(tune_controller)
            taken = seam.take_slot(tune_controller, tid)
            self.seen["slots"] = (before, freed, during, taken,
                                  seam.concurrency_slots(tune_controller), tid)
        if who == "b" and it == 2 and "restart" not in self.seen:
            source = seam.latest_checkpoint(self.by_who["a"])
            self.seen["source"] = source
            seam.restart_from_checkpoint(tune_controller, trial, *source)
            self.seen["restart"] = trial.status
            return TrialScheduler.NOOP
        if who == "c" and it == 3 and "paused_c" not in self.seen:
            self.seen["paused_c"] = True
            return TrialScheduler.PAUSE
        return TrialScheduler.CONTINUE


class _SavingProbe(tune.Callback):
    """At the end of the controller step that processed a result reported with a checkpoint,
    Tune's save of it is in flight (its outcome is handled in a later step)."""

    def __init__(self, seen: dict[str, Any]) -> None:
        self.seen = seen

    def on_step_end(self, iteration, trials, **info):
        for t in trials:
            if t.config["who"] != "a" or "saving" in self.seen:
                continue
            if t.is_saving:
                reported = t.last_result.get("training_iteration")
                registered = seam.latest_checkpoint(t)
                found = seam.saving_checkpoint(t)
                with found[0].as_directory() as d, open(os.path.join(d, "s.json")) as f:
                    saved = json.load(f)["it"]
                self.seen["saving"] = (reported, registered and registered[1]["it"],
                                       found[1]["training_iteration"], saved)
            elif t.status == Trial.RUNNING:
                self.seen.setdefault("not_saving", seam.saving_checkpoint(t))


_PROBE_TRIALS: dict[str, Trial] = {}


@pytest.fixture(scope="module")
def probe_run(ray_session, tmp_path_factory):
    storage = str(tmp_path_factory.mktemp("seam"))
    probe = _Probe()
    grid = tune.Tuner(
        _probe_trainable,
        param_space={"who": tune.grid_search(["a", "b", "c"]),
                     "limit": tune.sample_from(lambda spec: {"a": 5, "b": 8, "c": 5}[
                         spec.config["who"]])},
        tune_config=tune.TuneConfig(metric="it", mode="max", scheduler=probe,
                                    max_concurrent_trials=1, reuse_actors=False),
        run_config=tune.RunConfig(storage_path=storage, name="seam", verbose=0,
                                  callbacks=[_SavingProbe(probe.seen)]),
    ).fit()
    assert grid.num_errors == 0, [r.error for r in grid if r.error]
    _PROBE_TRIALS.update(probe.by_who)
    return probe.seen, {r.config["who"]: r for r in grid}, os.path.join(storage, "seam")


def test_trial_ids_are_run_prefix_and_counter(probe_run):
    """same_run: the trials of one run are '<run id>_<counter>' with one shared run id."""
    ids = [r.metrics["trial_id"] for r in probe_run[1].values()]
    assert all(re.fullmatch(r"[0-9a-f]+_\d{5}", i) for i in ids), ids
    assert all(seam.same_run(i, {ids[0]}) for i in ids)
    assert len({i.rsplit("_", 1)[0] for i in ids}) == 1


def test_experiment_dir_is_uploaded_with_the_snapshot(probe_run):
    """experiment_dir: files written there reach the experiment folder on storage."""
    seen, _, exp = probe_run
    assert seen["dir"] and os.path.isdir(seen["dir"])
    assert os.path.exists(os.path.join(exp, "seam_probe.json")), sorted(os.listdir(exp))


def test_repause_sets_a_pending_trial_paused_and_it_is_handed_back(probe_run):
    seen, results, _ = probe_run
    assert seen["repause"] == (True, Trial.PAUSED)
    assert results["a"].metrics["training_iteration"] == 5  # handed back, it ran


def test_concurrency_slots_of_max_concurrent_trials(probe_run):
    """BasicVariantGenerator's live-trial set is what max_concurrent_trials counts."""
    before, freed, during, taken, after, tid = probe_run[0]["slots"]
    assert before == ({tid}, 1) and freed and during == (set(), 1)
    assert taken and after == ({tid}, 1)


def test_restart_from_another_trials_checkpoint(probe_run):
    """latest_checkpoint + restart_from_checkpoint: b pauses at once and resumes from a's
    latest checkpoint, with a's counters (Ray's PBT exploit)."""
    seen, results, _ = probe_run
    checkpoint, metrics = seen["source"]
    assert checkpoint is not None and metrics["training_iteration"] == 5
    assert seen["restart"] == Trial.PAUSED
    assert seen["its"]["b"] == [1, 2, 6, 7, 8], seen["its"]
    assert results["b"].metrics["loaded"] == "a"


def test_saving_checkpoint_waits_for_the_save_of_a_reported_checkpoint(probe_run):
    """saving_checkpoint: a checkpoint reported with a result is registered by a save task
    after the hooks; while it runs, the seam waits for it and returns that checkpoint (the
    one reported with the latest result, not the registered one before it)."""
    seen = probe_run[0]
    reported, registered, saving, saved = seen["saving"]
    assert saving == saved == reported, seen["saving"]
    assert registered is None or registered < reported, seen["saving"]
    assert seen["not_saving"] is None


def test_a_paused_trial_marked_staged_is_unmarked(probe_run):
    """unmark_staged (see tests/schedulers/test_tune_staging.py for the hang it prevents)."""
    assert probe_run[0]["unmark"] == (True, False)


def test_forget_checkpoint_restarts_from_scratch(probe_run):
    seen, results, _ = probe_run
    assert seen["forget"] is True and seen["forgotten"] is None
    assert seen["its"]["c"] == [1, 2, 3, 1, 2, 3, 4, 5], seen["its"]
    assert results["c"].metrics["loaded"] == ""


# ----------------------------------------------------------------------------- retries
def _failing_trainable(config):
    ckpt = tune.get_checkpoint()
    start = 0
    if ckpt is not None:
        with ckpt.as_directory() as d, open(os.path.join(d, "s.json")) as f:
            start = json.load(f)["it"]
    for it in range(start + 1, 4):
        if it == 2 and (config["who"] == "always" or start == 0):
            raise RuntimeError(f"{config['who']} fails at 2")
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "s.json"), "w") as f:
                json.dump({"it": it}, f)
            tune.report({"it": it, "start": start}, checkpoint=tune.Checkpoint.from_directory(d))


class _ErrorProbe(FIFOScheduler):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, str, str, bool | None]] = []

    def on_trial_add(self, tune_controller, trial):
        super().on_trial_add(tune_controller, trial)
        self.events.append(("add", trial.config["who"], trial.status, None))

    def on_trial_error(self, tune_controller, trial):
        self.events.append(("error", trial.config["who"], trial.status, seam.retrying(trial)))


def test_retrying_tells_a_retry_from_a_final_error(ray_session, storage):
    """retrying: with FailureConfig(max_failures=1) Tune announces a retry by on_trial_error
    on an ERROR trial followed by on_trial_add (PENDING); the final error comes on a
    RUNNING trial and nothing follows. "once" fails once and goes on from its checkpoint,
    "always" fails twice and ends in ERROR."""
    probe = _ErrorProbe()
    grid = tune.Tuner(
        _failing_trainable,
        param_space={"who": tune.grid_search(["once", "always"])},
        tune_config=tune.TuneConfig(scheduler=probe, max_concurrent_trials=1),
        run_config=tune.RunConfig(storage_path=storage, name="retry", verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=1)),
    ).fit()
    by_who = {r.config["who"]: r for r in grid}
    assert by_who["once"].error is None and by_who["once"].metrics["it"] == 3
    assert by_who["once"].metrics["start"] == 1  # from its checkpoint
    assert by_who["always"].error is not None
    events = [e for e in probe.events if e[0] == "error" or e[2] == Trial.PENDING]
    for who in ("once", "always"):
        mine = [e for e in events if e[1] == who]
        assert mine[:3] == [("add", who, Trial.PENDING, None), ("error", who, Trial.ERROR, True),
                            ("add", who, Trial.PENDING, None)], probe.events
    assert [e for e in events if e[1] == "once"][3:] == []
    assert [e for e in events if e[1] == "always"][3:] == [
        ("error", "always", Trial.RUNNING, False)], probe.events


def test_trial_driver_dir_is_uploaded_and_files_download_back(probe_run):
    """trial_driver_dir: a file written in the trial's driver folder reaches its folder on
    storage; download_trial_file fetches it back when the driver's copy is missing."""
    seen, _, exp = probe_run
    local, name = seen["trial_dir"]
    assert os.path.exists(os.path.join(exp, name, "seam_trial_probe.txt")), os.listdir(exp)
    t = _PROBE_TRIALS["a"]  # the Trial the probe scheduler saw
    os.remove(os.path.join(local, "seam_trial_probe.txt"))
    assert seam.download_trial_file(t, "seam_trial_probe.txt")
    assert os.path.exists(os.path.join(local, "seam_trial_probe.txt"))
    assert not seam.download_trial_file(t, "seam_trial_probe.txt")  # present: left alone
    assert not seam.download_trial_file(t, "no_such_file")


# ----------------------------------------------------------------------------- trial logs
class _PauseAndUpload(FIFOScheduler):
    """Pauses trial "p" at iteration 2 and resumes it once "q" ended (one slot), uploading its
    logs with :func:`seam.upload_trial_logs` first; records the storage copies then."""

    def __init__(self) -> None:
        super().__init__()
        self.paused, self.uploaded, self.same = False, None, None

    def on_trial_result(self, tune_controller, trial, result):
        if trial.config["who"] == "p" and result["training_iteration"] == 2 and not self.paused:
            self.paused = True
            return TrialScheduler.PAUSE
        return TrialScheduler.CONTINUE

    def choose_trial_to_run(self, tune_controller):
        for t in tune_controller.get_trials():
            if t.status == Trial.PENDING:
                return t
        for t in tune_controller.get_trials():
            if t.status == Trial.PAUSED:
                remote = t.storage.trial_fs_path
                os.makedirs(remote, exist_ok=True)
                with open(os.path.join(remote, "result.json"), "w") as f:
                    f.write("")  # as if Tune had not uploaded since the trial started
                self.uploaded = seam.upload_trial_logs(t)
                self.same = all(
                    Path(t.local_path, n).read_text() == Path(remote, n).read_text()
                    for n in seam.TRIAL_LOG_FILES)
                return t
        return None


def test_upload_trial_logs_keeps_every_row_of_a_resumed_trial(ray_session, storage):
    """upload_trial_logs: the storage copies of progress.csv / result.json become the driver's,
    so Tune's restore of them when the paused trial starts again (LoggerCallback.
    _restore_from_remote) brings back every row; the trial's result.json and
    metrics_dataframe hold iterations 1-4 although the storage copy had been emptied."""
    sched = _PauseAndUpload()
    grid = tune.Tuner(
        _probe_trainable,
        param_space={"who": tune.grid_search(["p", "q"]), "limit": 4},
        tune_config=tune.TuneConfig(scheduler=sched, max_concurrent_trials=1,
                                    reuse_actors=False),
        run_config=tune.RunConfig(storage_path=storage, name="logs", verbose=0),
    ).fit()
    assert grid.num_errors == 0, [r.error for r in grid if r.error]
    assert sched.paused and sched.uploaded == list(seam.TRIAL_LOG_FILES) and sched.same
    p = next(r for r in grid if r.config["who"] == "p")
    with open(os.path.join(p.path, "result.json")) as f:
        reported = [json.loads(line)["it"] for line in f if line.strip()]
    assert reported == list(p.metrics_dataframe["it"]) == [1, 2, 3, 4]
