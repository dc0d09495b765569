"""Storage faults: the store's LMDB map fills (it grows, the iteration commits); the disk under
the store and the run folder fills (a clear error, a clean stop, and a resume that finishes
once space is freed, equal to a run that never hit the wall).

The full disk is a real one: a 32 MB tmpfs mounted for the test (needs root; skipped otherwise).
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import time
from pathlib import Path

import pytest
from loop_support import (
    LOOP_TASK,
    assert_each_evaluated_once,
    cli_run,
    done_count,
    first_run_id,
    run_summary,
    test_settings,
)

from cognition.store import CognitionStore
from orchestrator.runs import execute_run

SMALL_MAP = 64 * 1024


@pytest.fixture(autouse=True)
def _lexical_embedder(monkeypatch):
    monkeypatch.setenv("EVOFORGE_EMBEDDER", "lexical")


def test_full_store_map_grows_and_every_iteration_commits(tmp_path: Path) -> None:
    settings = test_settings(tmp_path, **{"budget.iterations": 10})
    # The run opens the process-wide instance of this path, so it inherits the tiny map.
    held = CognitionStore.open(settings.store, map_size=SMALL_MAP)
    try:
        assert held.stats()["map_size"] == SMALL_MAP
        run = execute_run(settings, str(LOOP_TASK))
        grown = held.stats()["map_size"]
    finally:
        held.close()
    assert grown > SMALL_MAP, "the map never filled: make SMALL_MAP smaller"
    assert run.status == "finished", run.stop_reason
    assert run.iterations_done == 10
    store = CognitionStore.open(settings.store, readonly=True)
    assert [c.iteration for c in store.candidates_of_run(run.id)] == list(range(11))
    assert_each_evaluated_once(settings.store, run.id)


@contextlib.contextmanager
def _small_disk(path: Path, size_mb: int = 32):
    path.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(path: Path) -> int:
    """Writes zeros into `path` until the disk is full; returns the bytes written."""
    written = 0
    chunk = b"\0" * (1 << 20)
    with open(path, "wb", buffering=0) as fh:
        while True:
            try:
                written += fh.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                break
        with contextlib.suppress(OSError):
            while fh.write(b"\0" * 4096):
                written += 4096
    return written


def test_full_disk_stops_the_run_clearly_and_resume_finishes(tmp_path: Path) -> None:
    iterations = "30"
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    ref = cli_run(ref_dir, str(LOOP_TASK), "--iterations", iterations, "--seed", "3")
    with _small_disk(tmp_path / "disk") as disk:
        store_path = disk / "store.lmdb"
        proc = cli_run(disk, str(LOOP_TASK), "--iterations", iterations, "--seed", "3")
        try:
            deadline = time.monotonic() + 120
            while done_count(store_path) < 4 and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            assert proc.poll() is None, proc.communicate()[0][-3000:]
            run_id = first_run_id(store_path)
            filler = disk / "filler"
            assert _fill(filler) > 0
            out, _ = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 2, f"rc {proc.returncode}:\n{out[-3000:]}"
        flat = " ".join(out.split())  # the console wraps long lines
        assert "no space left" in flat.lower() and f"--resume {run_id}" in flat, out[-3000:]
        assert "Traceback" not in out, out[-3000:]
        stopped_at = done_count(store_path, run_id)
        assert stopped_at < int(iterations) + 1, "the run finished before the disk filled"

        filler.unlink()
        proc = cli_run(disk, "--resume", run_id)
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out[-3000:]
        got, got_run = run_summary(store_path, run_id)
        assert_each_evaluated_once(store_path, run_id)

    ref_out, _ = ref.communicate(timeout=300)
    assert ref.returncode == 0, ref_out[-3000:]
    ref_id = first_run_id(ref_dir / "store.lmdb")
    want, ref_run = run_summary(ref_dir / "store.lmdb", ref_id)
    assert got == want, "the run that hit a full disk differs from the clean one"
    assert got_run.status == "finished" and got_run.iterations_done == ref_run.iterations_done
    assert got_run.best_score == ref_run.best_score
