"""The driver-crash harness's process handling (the full SIGKILL + restore runs are the
schedulers' ``test_driver_crash_restore`` contract cases, marked slow)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from rafiki_ray.testing._crash import _kill_session, _session_pids, load_factory


def test_load_factory():
    assert load_factory("os.path:join") is os.path.join
    with pytest.raises(ValueError, match="module:function"):
        load_factory("os.path.join")
    with pytest.raises(AttributeError):
        load_factory("os.path:nope")


def test_kill_session_ends_the_whole_process_tree():
    # a child in its own session that starts grandchildren (as ray.init starts raylet & co.)
    code = (
        "import subprocess, sys, time\n"
        "ps = [subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])"
        " for _ in range(3)]\n"
        "print('ready', flush=True); time.sleep(600)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                             start_new_session=True)
    assert child.stdout.readline().strip() == b"ready"
    deadline = time.monotonic() + 10
    while len(_session_pids(child.pid)) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    pids = _session_pids(child.pid)
    assert len(pids) >= 4
    assert _kill_session(child) == []
    assert _session_pids(child.pid) == []
    assert child.returncode is not None
