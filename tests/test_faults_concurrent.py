"""Two drivers: a second `evolve run` of a live run is refused with a clear message and
changes nothing; two runs of different ids on one store both finish intact."""

from __future__ import annotations

import time
from pathlib import Path

from loop_support import (
    FAULT_TASKS,
    LOOP_TASK,
    assert_each_evaluated_once,
    cli_run,
    done_count,
    first_run_id,
    run_summary,
)

from cognition.store import CognitionStore


def test_second_driver_of_a_live_run_is_refused(tmp_path: Path) -> None:
    store_path = tmp_path / "store.lmdb"
    first = cli_run(tmp_path, str(FAULT_TASKS / "slow_task"), "--iterations", "6", "--seed", "2")
    try:
        deadline = time.monotonic() + 120
        while done_count(store_path) < 1 and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        run_id = first_run_id(store_path)
        assert run_id is not None and first.poll() is None
        before = run_summary(store_path, run_id)[0]
        second = cli_run(tmp_path, "--resume", run_id)
        out, _ = second.communicate(timeout=120)
        assert first.poll() is None, "the first driver ended before the second was refused"
    finally:
        first_out, _ = first.communicate(timeout=300)
    assert second.returncode == 2, out[-3000:]
    flat = " ".join(out.split())  # the console wraps long lines
    assert f"run {run_id} is already being driven by another process (pid {first.pid})" in flat, out[-3000:]
    assert "Traceback" not in out
    assert first.returncode == 0, first_out[-3000:]
    after, run = run_summary(store_path, run_id)
    assert after[0] == before[0]  # the refused driver touched nothing
    assert run.status == "finished" and run.iterations_done == 6
    assert_each_evaluated_once(store_path, run_id)


def test_two_runs_share_one_store(tmp_path: Path) -> None:
    shared = tmp_path / "shared.lmdb"
    alone = [tmp_path / "alone_a", tmp_path / "alone_b"]
    for d in alone:
        d.mkdir()
    args = [(str(LOOP_TASK), "--iterations", "16", "--seed", "7"),
            (str(FAULT_TASKS / "slow_task"), "--iterations", "5", "--seed", "8")]
    procs = [cli_run(tmp_path, *a, store=shared) for a in args]
    procs += [cli_run(d, *a) for d, a in zip(alone, args, strict=True)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outs, strict=True):
        assert p.returncode == 0, out[-3000:]

    runs = CognitionStore.open(shared, readonly=True).list_runs()
    assert len(runs) == 2 and len({r.id for r in runs}) == 2
    for run in runs:
        assert run.status == "finished"
        assert_each_evaluated_once(shared, run.id)
        # Each run equals the same run made alone in its own store.
        idx = 0 if run.task == "loop_task" else 1
        alone_id = first_run_id(alone[idx] / "store.lmdb")
        got, _ = run_summary(shared, run.id)
        want, alone_run = run_summary(alone[idx] / "store.lmdb", alone_id)
        assert got == want, f"run {run.id} on the shared store differs from the same run alone"
        assert run.best_score == alone_run.best_score
