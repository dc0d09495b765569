"""Crash safety and snapshot consistency across processes, on a real LMDB file.

A writer process streams iterations (candidate + 3 evaluations + 1 insight per write block)
into a store with a tiny map, so the map also grows while it streams.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cognition import embeddings
from cognition.store import CognitionStore

WRITER = r"""
import os, sys
os.environ["EVOFORGE_EMBEDDER"] = "lexical"
from cognition.records import Candidate, Evaluation, Insight, Run
from cognition.store import CognitionStore

store = CognitionStore.open(sys.argv[1], map_size=128 * 1024)
start, stop = int(sys.argv[2]), int(sys.argv[3])
if start == 0:
    with store.write() as w:
        w.put_run(Run(id="run-x", task="t", task_dir="."))
for it in range(start, stop):
    with store.write() as w:
        c = Candidate(id=f"cand-{it:06d}", run_id="run-x", task="t", iteration=it,
                      code="x = 1\n" * 300, state="done", score=float(it))
        w.put_candidate(c)
        for k in range(3):
            w.put_evaluation(Evaluation(id=f"ev-{it:06d}-{k}", candidate_id=c.id, run_id="run-x",
                                        stage="quick", seed=k, status="ok", score=float(it),
                                        feedback="f" * 500))
        w.put_insight(Insight(id=f"ins-{it:06d}", text=f"lesson {it} about knob {it % 17}",
                              task="t", source="analyzer", evidence=[c.id]), dedupe=False)
    print(it, flush=True)
"""


@pytest.fixture(autouse=True)
def lexical(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVOFORGE_EMBEDDER", "lexical")
    embeddings.reset_embedder()


def start_writer(path: Path, start: int, stop: int) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(start), str(stop)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def committed_iterations(store: CognitionStore) -> int:
    """Checks every visible iteration is whole; returns how many there are."""
    cands = store.candidates_of_run("run-x")
    iterations = [c.iteration for c in cands]
    assert iterations == list(range(len(cands))), "a gap or a stray iteration is visible"
    for c in cands:
        evals = store.evaluations_of(c.id)
        assert [e.seed for e in sorted(evals, key=lambda e: e.seed)] == [0, 1, 2], c.id
        assert store.get_insight(f"ins-{c.iteration:06d}") is not None, c.id
    stats = store.stats()["entries"]
    assert stats["evaluations"] == 3 * len(cands)
    assert stats["insights"] == len(cands) == stats["vectors"]
    assert stats["ix_run_candidates_by_score"] == len(cands)
    return len(cands)


def test_sigkill_mid_stream_leaves_only_whole_iterations(tmp_path: Path) -> None:
    path = tmp_path / "crash.lmdb"
    done = 0
    for round_, kill_after in enumerate((40, 25, 60)):
        proc = start_writer(path, done, 100_000)
        assert proc.stdout is not None
        last = -1
        for line in proc.stdout:
            last = int(line)
            if last >= done + kill_after:
                break
        time.sleep(0.003 * (round_ + 1))  # land the kill somewhere inside a later block
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        store = CognitionStore.open(path, readonly=True)
        try:
            n = committed_iterations(store)
        finally:
            store.close()
        assert n >= last + 1, "a commit reported done was lost"
        done = n
    assert done >= 125


def test_reader_process_sees_consistent_snapshots(tmp_path: Path) -> None:
    path = tmp_path / "live.lmdb"
    proc = start_writer(path, 0, 300)
    assert proc.stdout is not None
    proc.stdout.readline()  # the store exists and holds iteration 0
    store = CognitionStore.open(path, readonly=True)
    checks, seen = 0, set()
    try:
        while proc.poll() is None or checks < 5:
            stats = store.stats()["entries"]
            assert stats["evaluations"] == 3 * stats["candidates"], stats
            assert stats["insights"] == stats["candidates"] == stats["vectors"], stats
            top = store.top_candidates("run-x", 1)
            assert top and top[0].iteration >= 0
            seen.add(stats["candidates"])
            checks += 1
        assert committed_iterations(store) == 300
    finally:
        store.close()
        proc.stdout.read()
        proc.wait(timeout=60)
    assert proc.returncode == 0
    assert len(seen) > 3, "the reader never overlapped the writer"
