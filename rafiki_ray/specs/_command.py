"""Command trials and function trials: what runs inside one Tune trial.

A command trial starts the user's shell command in its own working directory (a fresh
directory inside the Tune trial's directory whose entries are symbolic links to the code
directory's, so relative paths work and outputs stay per trial), with the parameters in the
environment (``RAFIKI_TRIAL_PARAMS``, NNI's ``NNI_*`` variables, Polyaxon's
``POLYAXON_DECLARATIONS``) and the shim directory on ``PYTHONPATH`` (``import nni`` /
``from t9k import tuner``). The script reports through :mod:`rafiki_ray.trial`, which appends
JSON lines to a report file; the trial tails that file and calls ``tune.report`` for every line.

A command that exits non-zero, never reports a final result (NNI/T9k) or any result
(Polyaxon), or reports a non-number fails the *trial* with :class:`TrialCommandError`, whose
message ends with the tail of the command's stderr (kept whole in ``stderr.log`` next to
``stdout.log`` in the trial's working directory). The experiment goes on.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rafiki_ray import trial as trial_api
from rafiki_ray._constants import TIMEOUT_FILE

__all__ = ["TIMEOUT_FILE", "CommandTrial", "FunctionTrial", "TrialCommandError",
           "run_command_trial", "run_function_trial"]

logger = logging.getLogger(__name__)

_POLL_S = 0.05
_STDERR_TAIL = 2000


class TrialCommandError(RuntimeError):
    """A command trial failed (exit status, missing or bad report); carries its stderr."""


class _TrialTimeout(BaseException):
    """The trial ran past ``maxTrialDuration`` (a BaseException, so that a trial function's
    ``except Exception`` does not swallow it)."""


def _mark_timeout(trial_dir: Path, trial_id: str, limit: float, started: float) -> None:
    elapsed = time.monotonic() - started
    logger.warning("trial %s: stopped after %.1f s, its time limit (maxTrialDuration) is "
                   "%.1f s; its reported results are kept", trial_id, elapsed, limit)
    trial_dir.mkdir(parents=True, exist_ok=True)
    (trial_dir / TIMEOUT_FILE).write_text(json.dumps(
        {"limit_s": limit, "elapsed_s": round(elapsed, 3)}), encoding="utf-8")


@dataclass(frozen=True)
class CommandTrial:
    """A shell command run once per trial (see the module docstring).

    Args:
        command: a shell command line (run by ``/bin/sh -c``) or an argv list.
        code_dir: the directory the command's relative paths refer to.
        env: extra environment variables.
        template: render ``{{ name }}`` in the command with jinja2 from the parameters merged
            with ``declarations`` (Polyaxon); undefined names render as "" (jinja2's default).
        declarations: Polyaxon declarations (constants merged under the parameters).
        final: ``"explicit"`` (NNI/T9k: ``report_final_result`` is the trial's result) or
            ``"last"`` (Polyaxon: the last reported metrics are).
        shims: put :data:`rafiki_ray.trial.SHIM_DIR` first on ``PYTHONPATH``.
        experiment_id: reported by ``get_experiment_id()``.
        pbt_generations: run the command once per PBT generation (NNI PBTTuner), with
            ``load_checkpoint_dir`` / ``save_checkpoint_dir`` under ``pbt_checkpoint_dir``.
    """

    command: str | tuple[str, ...]
    code_dir: str = "."
    env: Mapping[str, str] = field(default_factory=dict)
    template: bool = False
    declarations: Mapping[str, Any] = field(default_factory=dict)
    final: str = "explicit"
    shims: bool = True
    experiment_id: str = "experiment"
    pbt_generations: int | None = None
    pbt_checkpoint_dir: str | None = None

    def render(self, params: Mapping[str, Any]) -> str | list[str]:
        """The command for ``params`` (templated when :attr:`template`)."""
        if not self.template:
            return self.command if isinstance(self.command, str) else list(self.command)
        import jinja2

        values = {**self.declarations, **params}
        env = jinja2.Environment(undefined=jinja2.Undefined, autoescape=False)
        if isinstance(self.command, str):
            return env.from_string(self.command).render(**values)
        return [env.from_string(part).render(**values) for part in self.command]


@dataclass(frozen=True)
class FunctionTrial:
    """A Python function run in the Tune trial's process with the trial API active.

    ``fn()`` (NNI style: it calls ``get_next_parameter()``) or ``fn(params)``; a number (or a
    metric dict) it returns counts as the final result when it reported none.
    """

    fn: Callable[..., Any]
    final: str = "explicit"
    experiment_id: str = "experiment"


# ------------------------------------------------------------------------------ helpers


def _tune_context() -> tuple[str, Path]:
    from ray import tune

    ctx = tune.get_context()
    trial_id = ctx.get_trial_id() or "trial"
    trial_dir = Path(ctx.get_trial_dir() or os.getcwd())
    return trial_id, trial_dir


def _report(values: dict[str, float], step: int | None, final: bool, extra: Mapping[str, Any]
            ) -> None:
    from ray import tune

    out: dict[str, Any] = dict(values)
    out["final"] = final
    if step is not None:
        out["step"] = step
    out.update(extra)
    tune.report(out)


def _prepare_workdir(trial_dir: Path, code_dir: Path) -> Path:
    work = trial_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    if code_dir.is_dir():
        for entry in code_dir.iterdir():
            link = work / entry.name
            if not link.exists() and not link.is_symlink():
                link.symlink_to(entry.resolve())
    return work


def _unlink_code(work: Path) -> None:
    """Drop the links to the code directory, so that syncing the trial's directory copies the
    trial's own outputs and not the code (or data) it links to."""
    for entry in work.iterdir():
        if entry.is_symlink():
            with contextlib.suppress(OSError):
                entry.unlink()


def _plain_params(config: Mapping[str, Any]) -> dict[str, Any]:
    from rafiki_ray.spaces.adapters._configlist import INDEX_KEY

    if isinstance(config.get("__parameters__"), Mapping):  # configurations of several shapes
        return dict(config["__parameters__"])
    return {k: v for k, v in config.items() if k != INDEX_KEY}


def _tail(path: Path, start: int = 0) -> str:
    """The end of what this run wrote to ``path`` (from byte ``start``)."""
    try:
        data = path.read_bytes()[start:]
    except OSError:
        return ""
    return data[-_STDERR_TAIL:].decode("utf-8", "replace")


#: A shell that runs the command in the background, in its own process group, and passes a
#: TERM / HUP (also the parent-death signal) on to the whole group, so that a command's
#: children never outlive the trial's process (dash does not exec a ``-c`` command).
_SUPERVISOR = 'trap \'trap - TERM HUP; kill -TERM 0\' TERM HUP; "$@" & wait $!'


def _supervised(command: str | list[str]) -> list[str]:
    argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
    return ["/bin/sh", "-c", _SUPERVISOR, "rafiki-trial", *argv]


def _set_pdeathsig() -> None:  # runs in the child between fork and exec
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001, S110 - not Linux: the finally block kills the group
        pass


class _ReportReader:
    """Incremental reader of the JSON-lines report file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.buffer = b""

    def read(self) -> list[Any]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except FileNotFoundError:
            return []
        self.offset += len(chunk)
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        out = []
        for line in lines:
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    out.append({"kind": "garbage", "raw": line[:200].decode("utf-8", "replace")})
        return out


def _check_record(record: Any) -> tuple[str, dict[str, float], int | None]:
    if not isinstance(record, Mapping) or record.get("kind") not in ("intermediate", "final"):
        raise TrialCommandError(f"unreadable report line {record!r}")
    values = trial_api.metric_dict(record.get("metric"), f"{record['kind']} result")
    step = record.get("step")
    return record["kind"], values, step if isinstance(step, int) else None


# ------------------------------------------------------------------------------ command trials


def run_command_trial(config: dict[str, Any], spec: CommandTrial,
                      max_duration_s: float | None = None) -> None:
    """Tune function trainable body for a :class:`CommandTrial` (use ``tune.with_parameters``).

    ``max_duration_s`` (NNI ``maxTrialDuration``): past it the command's process group is
    killed and the trial ends normally (NNI's EARLY_STOPPED: no error, the results it reported
    kept, no final result unless it had reported one); :data:`TIMEOUT_FILE` marks it.
    """
    trial_id, trial_dir = _tune_context()
    params = _plain_params(config)
    started = time.monotonic()
    deadline = None if max_duration_s is None else started + max_duration_s
    try:
        if spec.pbt_generations:
            _run_pbt(params, spec, trial_id, trial_dir, deadline)
        else:
            _run_once(params, spec, trial_id, trial_dir, extra={}, deadline=deadline)
    except _TrialTimeout:
        _mark_timeout(trial_dir, trial_id, float(max_duration_s or 0), started)


def _run_once(params: dict[str, Any], spec: CommandTrial, trial_id: str, trial_dir: Path,
              extra: Mapping[str, Any], report: bool = True, deadline: float | None = None
              ) -> dict[str, float] | None:
    code_dir = Path(spec.code_dir).resolve()
    work = _prepare_workdir(trial_dir, code_dir)
    attempt = len(list(work.glob("reports-*.jsonl")))
    report_file = work / f"reports-{attempt}.jsonl"
    report_file.touch()
    env = dict(os.environ)
    env.update({k: str(v) for k, v in spec.env.items()})
    merged = {**spec.declarations, **params}
    env.update({
        trial_api.ENV_PARAMS: json.dumps(params),
        trial_api.ENV_REPORT_FILE: str(report_file),
        trial_api.ENV_TRIAL_ID: trial_id,
        trial_api.ENV_EXPERIMENT_ID: spec.experiment_id,
        "NNI_PLATFORM": "rafiki-ray",
        "NNI_TRIAL_JOB_ID": trial_id,
        "NNI_EXP_ID": spec.experiment_id,
        "NNI_OUTPUT_DIR": str(work),
        "NNI_SYS_DIR": str(work),
        "POLYAXON_DECLARATIONS": json.dumps(merged),
        "POLYAXON_RUN_OUTPUTS_PATH": str(work),
        "RAFIKI_CODE_DIR": str(code_dir),
    })
    if spec.shims:
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [trial_api.SHIM_DIR, str(code_dir), env.get("PYTHONPATH"),
                          str(Path(trial_api.__file__).resolve().parents[1])]))
    command = spec.render(merged)
    (work / "command.txt").write_text(
        command if isinstance(command, str) else shlex.join(command), encoding="utf-8")
    stderr_path = work / "stderr.log"
    stderr_start = stderr_path.stat().st_size if stderr_path.exists() else 0
    reader = _ReportReader(report_file)
    final: dict[str, float] | None = None
    last: dict[str, float] | None = None
    problem: str | None = None
    late = False
    with open(work / "stdout.log", "ab") as stdout, open(stderr_path, "ab") as stderr:
        proc = subprocess.Popen(
            _supervised(command), cwd=work, env=env, stdout=stdout,
            stderr=stderr, stdin=subprocess.DEVNULL, start_new_session=True,
            # the child dies with this process (a Tune actor killed while the command runs)
            preexec_fn=_set_pdeathsig,  # noqa: PLW1509 - only calls prctl
        )
        try:
            while True:
                done = proc.poll() is not None
                for record in reader.read():
                    try:
                        kind, values, step = _check_record(record)
                    except (TypeError, ValueError, TrialCommandError) as exc:
                        problem = f"reported a bad result: {exc}"
                        break
                    if final is not None:
                        logger.warning("trial %s: result after the final one ignored", trial_id)
                        continue
                    last = values
                    if kind == "final":
                        final = values
                    if report:
                        _report(values, step, kind == "final", extra)
                if problem is not None or done:
                    break
                if deadline is not None and time.monotonic() > deadline:
                    late = True  # killed below, what it reported is kept
                    break
                time.sleep(_POLL_S)
        finally:
            _kill_group(proc)
            _unlink_code(work)
    if late:
        raise _TrialTimeout
    tail = _tail(stderr_path, stderr_start)
    where = f"(working directory {work})"
    if problem is not None:
        raise TrialCommandError(f"command {problem} {where}\n--- stderr tail ---\n{tail}")
    if proc.returncode != 0:
        raise TrialCommandError(
            f"command exited with status {proc.returncode} {where}\n--- stderr tail ---\n{tail}")
    if spec.final == "last":
        final = final or last
    if final is None:
        what = "no result" if spec.final == "last" else "no final result (report_final_result)"
        raise TrialCommandError(f"command reported {what} {where}\n--- stderr tail ---\n{tail}")
    return final


def _kill_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    else:  # the shell is gone; children it left in the group go too
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def _run_pbt(params: dict[str, Any], spec: CommandTrial, trial_id: str, trial_dir: Path,
             deadline: float | None = None) -> None:
    """NNI PBTTuner: one command run per generation; exploits come through PBTSession."""
    import numpy as np

    from rafiki_ray.schedulers.pbt import PBTSession

    root = Path(spec.pbt_checkpoint_dir or trial_dir.parent / "pbt_checkpoints")
    sess = PBTSession(params, trial_id=trial_id)
    load_dir = None
    ex = sess.start()
    if ex is not None and ex.source is not None and ex.source_step is not None:
        load_dir = root / ex.source / str(ex.source_step)
    for gen in range(1, int(spec.pbt_generations or 1) + 1):
        save_dir = root / trial_id / str(gen)
        save_dir.mkdir(parents=True, exist_ok=True)
        run_params = {**sess.config, "save_checkpoint_dir": str(save_dir),
                      "load_checkpoint_dir": str(load_dir or root / trial_id / str(gen - 1))}
        values = _run_once(run_params, spec, trial_id, trial_dir, extra={}, report=False,
                           deadline=deadline)
        if values is None:  # pragma: no cover - _run_once raises instead
            raise TrialCommandError("generation reported no result")
        ex = sess.report({**values, "generation": gen, "final": gen == spec.pbt_generations},
                         params={"generation": np.array([gen])}, step=gen)
        load_dir = save_dir
        if ex is not None and ex.source is not None and ex.source_step is not None:
            load_dir = root / ex.source / str(ex.source_step)


# ------------------------------------------------------------------------------ function trials


def run_function_trial(config: dict[str, Any], spec: FunctionTrial,
                       max_duration_s: float | None = None) -> None:
    """Tune function trainable body for a :class:`FunctionTrial`.

    ``max_duration_s``: a function cannot be killed from inside its own process; it is
    stopped at its first report past the limit (that report is kept), then ends as a command
    trial does at its limit."""
    trial_id, trial_dir = _tune_context()
    params = _plain_params(config)
    state: dict[str, Any] = {"final": None, "last": None}
    started = time.monotonic()

    def sink(record: dict[str, Any]) -> None:
        values = record["metric"]
        state["last"] = values
        if record["kind"] == "final":
            state["final"] = values
        _report(values, record["step"], record["kind"] == "final", {})
        if max_duration_s is not None and record["kind"] != "final" \
                and time.monotonic() - started > max_duration_s:
            raise _TrialTimeout

    session = trial_api._Session(params, trial_id=trial_id, experiment_id=spec.experiment_id,
                                 sequence_id=0, sink=sink)
    previous = trial_api._activate(session)
    try:
        takes_params = _takes_argument(spec.fn)
        out = spec.fn(params) if takes_params else spec.fn()
    except _TrialTimeout:
        _mark_timeout(trial_dir, trial_id, float(max_duration_s or 0), started)
        return
    finally:
        trial_api._activate(previous)
    if state["final"] is None and out is not None:
        trial_api.metric_dict(out, "the trial function's return value")
        session.final_sent = False
        sink({"kind": "final", "metric": trial_api.metric_dict(out), "step": None})
    elif state["final"] is None and spec.final == "last" and state["last"] is not None:
        pass  # Polyaxon: the last reported metrics are the trial's result
    elif state["final"] is None:
        raise TrialCommandError("the trial function reported no final result "
                                "(report_final_result) and returned None")


def _takes_argument(fn: Callable[..., Any]) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    required = [p for p in sig.parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return bool(required)

