"""One driver per run: a second lock on the same run is refused; a dead holder frees it."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.errors import RunLockedError
from orchestrator.runlock import RunLock


def test_second_lock_refused_then_free(tmp_path):
    with RunLock(tmp_path, "r1"):
        with pytest.raises(RunLockedError, match="already being driven"):
            RunLock(tmp_path, "r1").acquire()
        RunLock(tmp_path, "r2").acquire().release()  # other runs are independent
    RunLock(tmp_path, "r1").acquire().release()


def test_lock_of_killed_process_is_released(tmp_path):
    repo = str(Path(__file__).resolve().parent.parent)
    code = (
        f"import sys, time; sys.path.insert(0, {repo!r})\n"
        "from orchestrator.runlock import RunLock\n"
        f"RunLock({str(tmp_path)!r}, 'r').acquire(); print('locked', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    with pytest.raises(RunLockedError, match=f"pid {proc.pid}"):
        RunLock(tmp_path, "r").acquire()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.05)
    RunLock(tmp_path, "r").acquire().release()
