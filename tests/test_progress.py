"""ProgressCallback: throttled plain lines with trials done, best score and time left; its
counters survive a restore as Tune callback state."""

from __future__ import annotations

import io
import pickle
from types import SimpleNamespace

import pytest

from rafiki_ray.progress import ProgressCallback, format_duration


def _trial(tid, status="RUNNING", result=None):
    return SimpleNamespace(trial_id=tid, status=status, last_result=result or {})


def test_lines_report_done_best_and_time_left():
    lines: list[str] = []
    cb = ProgressCallback(metric="score", mode="max", total_trials=4, time_budget_s=600,
                          interval_s=0.0, write=lines.append)
    a, b = _trial("a"), _trial("b")
    cb.on_trial_result(1, [a, b], a, {"score": 0.5})
    cb.on_trial_result(2, [a, b], b, {"score": 0.7})
    cb.on_trial_result(3, [a, b], a, {"score": float("nan")})  # ignored
    a.status = "TERMINATED"
    cb.on_trial_complete(4, [a, b], a)
    assert lines[-1].startswith("[rafiki] trials 1/4 done, 1 running | best score 0.7 (trial b)")
    assert lines[-1].endswith("left") and ("10m00s" in lines[-1] or "9m5" in lines[-1])
    cb.on_trial_error(5, [a, b], b)
    assert "2/4 done, 0 running, 1 failed" in cb.line()


def test_min_mode_throttle_and_stream():
    out = io.StringIO()
    cb = ProgressCallback(metric="loss", mode="min", interval_s=3600.0, file=out)
    t = _trial("x")
    cb.on_trial_result(1, [t], t, {"loss": 2.0})  # first line: written
    cb.on_trial_result(2, [t], t, {"loss": 1.0})  # within the interval: not written
    assert len(out.getvalue().splitlines()) == 1
    cb.on_experiment_end([t])  # the final line always
    last = out.getvalue().splitlines()[-1]
    assert "best loss 1 (trial x)" in last and "elapsed" in last


def test_state_survives_a_restore_and_pickling():
    cb = ProgressCallback(metric="score", total_trials=10, interval_s=0.0, write=lambda s: None)
    t = _trial("t1", "TERMINATED", {"score": 0.9})
    cb.on_trial_complete(1, [t], t)
    state = cb.get_state()
    fresh = pickle.loads(pickle.dumps(ProgressCallback(metric="score", total_trials=10)))
    fresh.set_state(state)
    assert fresh.line().startswith("[rafiki] trials 1/10 done, 0 running | best score 0.9")
    assert fresh.elapsed() >= state["elapsed_s"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        ProgressCallback(mode="up")
    with pytest.raises(ValueError, match="total_trials"):
        ProgressCallback(total_trials=0)
    with pytest.raises(TypeError, match="write"):
        ProgressCallback(write="stderr")
    assert [format_duration(s) for s in (4.2, 65, 3725)] == ["4s", "1m05s", "1h02m05s"]


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_gets_one_line_redrawn_in_place():
    out = _Tty()
    cb = ProgressCallback(metric="score", total_trials=3, interval_s=0.0, file=out, prefix="")
    a, b = _trial("a"), _trial("b", "PENDING")
    cb.on_trial_result(1, [a, b], a, {"score": 1.0})
    cb.on_step_end(2, [a, b])
    cb.on_experiment_end([a, b])
    text = out.getvalue()
    assert text.count("\r\x1b[K") == 3 and text.count("\n") == 1 and text.endswith("\n")
    assert "trials 0/3 done, 1 running, 1 pending | best score 1" in text


def test_a_notebook_gets_one_output_updated_in_place(capsys):
    # outside a kernel IPython's DisplayHandle prints; in a kernel it updates one output
    cb = ProgressCallback(metric="score", interval_s=0.0, notebook=True)
    t = _trial("t")
    cb.on_trial_result(1, [t], t, {"score": 2.0})
    handle = cb._handle
    cb.on_experiment_end([t])
    assert handle is not None and cb._handle is handle  # one display, then updates
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 2 and all("best score 2" in p for p in printed)
    assert pickle.loads(pickle.dumps(cb))._handle is None


def test_final_only_states_and_the_status_file_line(tmp_path):
    from rafiki_ray._constants import TIMEOUT_FILE
    from rafiki_ray.progress import format_status, progress_line, timed_out

    cb = ProgressCallback(metric="default", mode="min", final_only=True, interval_s=0.0,
                          write=lambda s: None)
    t = _trial("t")
    cb.on_trial_result(1, [t], t, {"default": 0.1, "final": False})  # intermediate: not best
    assert cb._best is None
    cb.on_trial_result(2, [t], t, {"default": 0.3, "final": True})
    (tmp_path / TIMEOUT_FILE).write_text("{}")
    stopped = SimpleNamespace(trial_id="s", status="TERMINATED", local_path=str(tmp_path),
                              last_result={"default": 0.05, "final": False})
    assert timed_out(stopped) and not timed_out(t)
    cb.on_trial_complete(3, [stopped], stopped)
    assert "trials 1 done, 0 running, 1 early-stopped | best default 0.3 (trial t)" in cb.line()
    status = {"trials": {"a": "TERMINATED", "b": "ERROR", "c": "RUNNING", "d": "EARLY_STOPPED"},
              "expected_trials": 5, "metric": "default", "best": {"value": 0.5, "trial_id": "a"},
              "started": 100.0, "time_budget_s": 600}
    assert format_status(status, now=160.0) == (
        "trials 3/5 done, 1 running, 1 failed, 1 early-stopped | best default 0.5 (trial a) "
        "| 9m00s left")
    assert progress_line({}, elapsed=5) == "trials 0 done, 0 running | 5s elapsed"


def test_a_log_gets_a_line_only_when_more_than_the_clock_changed():
    lines: list[str] = []
    cb = ProgressCallback(metric="score", interval_s=0.0, write=lines.append)
    t = _trial("t")
    cb.on_step_end(1, [t])
    cb.on_step_end(2, [t])  # only the clock moved: no new line
    cb.on_trial_result(3, [t], t, {"score": 1.0})  # the best changed: a line
    cb.on_step_end(4, [t])
    cb.on_experiment_end([t])  # the final line always
    assert len(lines) == 3 and "best score 1" in lines[1] and lines[2] == cb.lines[-1]
