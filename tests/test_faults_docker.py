"""The Docker daemon restarted while evaluations run: the evaluations in flight are retried
(recorded as `evaluation_lost` events) or carry a clear status, the run goes on once the daemon
answers, and no container of the run is left behind.

This restarts the machine's real dockerd (it must have been started by hand, as `dockerd`);
whatever happens, the test leaves a running daemon behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from loop_support import FAULT_TASKS, assert_each_evaluated_once, cli_run, first_run_id

from cognition.store import CognitionStore

DOCKERD_LOG = Path(os.environ.get("EVOFORGE_DOCKERD_LOG", "/tmp/setup/dockerd.log"))
CLEAR_STATUSES = {"ok", "error", "timeout", "oom", "invalid", "lost", "cancelled"}


def _docker_answers() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


def _dockerd_pid() -> int | None:
    out = subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True, text=True).stdout.split()
    return int(out[0]) if out else None


def _start_dockerd() -> None:
    Path("/var/run/docker.pid").unlink(missing_ok=True)
    with open(DOCKERD_LOG, "a") as log:
        subprocess.Popen(["dockerd"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if _docker_answers():
            return
        time.sleep(0.5)
    raise RuntimeError(f"dockerd did not come back within 90 s: see {DOCKERD_LOG}")


def _restart_dockerd() -> None:
    pid = _dockerd_pid()
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _dockerd_pid() == pid:
            time.sleep(0.2)
        if _dockerd_pid() == pid:
            os.kill(pid, signal.SIGKILL)
            time.sleep(1)
    _start_dockerd()


def _containers_of(run_id: str, running_only: bool = False) -> list[str]:
    cmd = ["docker", "ps", "-q", "--filter", "label=evoforge.managed=1", "--filter", f"label=evoforge.run={run_id}"]
    if not running_only:
        cmd.insert(2, "-a")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.split()


@pytest.mark.docker
def test_dockerd_restart_mid_run_requeues_and_leaks_nothing(tmp_path: Path, docker_client) -> None:
    if _dockerd_pid() is None:
        pytest.skip("no dockerd process on this machine to restart")
    store_path = tmp_path / "store.lmdb"
    proc = cli_run(tmp_path, str(FAULT_TASKS / "slow_task"), "--iterations", "6", "--seed", "4",
                   "--concurrency", "2", sandbox="docker")
    restarted = False
    try:
        run_id = None
        deadline = time.monotonic() + 180
        # Restart while an evaluation after the seed is in flight.
        while proc.poll() is None and time.monotonic() < deadline:
            run_id = run_id or first_run_id(store_path)
            if run_id and any(c.state == "done" for c in CognitionStore.open(store_path, readonly=True)
                              .candidates_of_run(run_id)) and _containers_of(run_id, running_only=True):
                break
            time.sleep(0.1)
        assert proc.poll() is None and run_id, proc.communicate()[0][-3000:] if proc.poll() is not None else "no run"
        _restart_dockerd()
        restarted = True
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        if not _docker_answers():
            with contextlib.suppress(Exception):
                _start_dockerd()
    assert restarted
    assert proc.returncode == 0, out[-4000:]
    store = CognitionStore.open(store_path, readonly=True)
    run = store.get_run(run_id)
    assert run.status == "finished" and run.iterations_done == 6, run.stop_reason
    assert_each_evaluated_once(store_path, run_id)
    lost = [e for e in store.events_of(run_id) if e.kind == "evaluation_lost"]
    cands = store.candidates_of_run(run_id)
    assert all(c.status in CLEAR_STATUSES for c in cands if c.state == "done")
    # Every candidate of this task scores when it runs: one the restart killed must not be
    # recorded as the candidate's failure.
    assert [c.status for c in cands] == ["ok"] * len(cands), [(c.iteration, c.status, c.summary[:120]) for c in cands]
    print(f"lost evaluations retried: {len(lost)}")
    # Either the loop retried the evaluations the restart took, or they carry the status that says so.
    assert lost or any(c.status == "lost" for c in cands), (
        "the restart left no trace: " + str([(c.iteration, c.status, c.summary[:80]) for c in cands]))
    for ev in lost:
        assert ev.data["candidate_id"] in {c.id for c in cands}
    assert _containers_of(run_id) == [], "containers of the run were left behind"
