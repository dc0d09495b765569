"""The evolution loop end to end: real store, real sandboxes, offline agents.

The process sandbox keeps most of these fast; one test runs the same loop on the Docker engine.
Resume after SIGKILL is checked against a run that was never killed (same seed).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from loop_support import LOOP_TASK
from loop_support import cli_run as _cli_run
from loop_support import done_count as _done_count
from loop_support import run_summary as _summary
from loop_support import scripted_model as _llm_handler
from loop_support import test_settings as _settings

from cognition.store import CognitionStore
from orchestrator.config import load_config
from orchestrator.runs import execute_run


@pytest.fixture(autouse=True)
def _lexical_embedder(monkeypatch):
    monkeypatch.setenv("EVOFORGE_EMBEDDER", "lexical")


def _reopen(path: Path) -> CognitionStore:
    return CognitionStore.open(path, readonly=True)


def test_offline_run_improves_and_commits_everything(tmp_path):
    settings = _settings(tmp_path, **{"budget.iterations": 12})
    run = execute_run(settings, str(LOOP_TASK))
    assert run.status == "finished", run.stop_reason
    store = _reopen(settings.store)
    cands = store.candidates_of_run(run.id)
    assert [c.iteration for c in cands] == list(range(13))  # the seed + 12, no gap
    assert all(c.state in ("done", "rejected") for c in cands)
    assert run.iterations_done == 12
    assert run.seed_score is not None and run.best_score is not None
    assert run.best_score > run.seed_score, "the offline researcher found no improvement"
    best = store.get_candidate(run.best_candidate_id)
    assert best.score == run.best_score and best.parent_id is not None
    for c in cands:
        if c.state == "done":
            evs = store.evaluations_of(c.id)
            assert evs, f"{c.id} has no evaluations"
            assert len({(e.stage, e.seed) for e in evs}) == len(evs), "an evaluation was stored twice"
    # offline origins and parents are recorded
    assert all(c.origin.startswith("offline:") for c in cands[1:] if c.state == "done")
    # priors were imported and the analyzer wrote insights with provenance
    assert store.insights(task="loop_task", source="prior")


def test_second_run_refused_while_first_holds_the_run(tmp_path):
    from orchestrator.errors import RunLockedError
    from orchestrator.runlock import RunLock

    settings = _settings(tmp_path, **{"budget.iterations": 2})
    run = execute_run(settings, str(LOOP_TASK))
    with RunLock(Path(settings.run_dir), run.id):
        with pytest.raises(RunLockedError):
            execute_run(settings, None, resume=run.id)


def test_sigkill_then_resume_loses_and_repeats_nothing(tmp_path):
    """Kill the driver twice mid-run; resume; the result equals a never-killed run's."""
    iterations = "14"
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    proc = _cli_run(ref_dir, str(LOOP_TASK), "--iterations", iterations, "--seed", "5")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    ref_store = CognitionStore.open(ref_dir / "store.lmdb", readonly=True)
    ref_run = ref_store.list_runs()[0]

    kill_dir = tmp_path / "kill"
    kill_dir.mkdir()
    store_path = kill_dir / "store.lmdb"
    proc = _cli_run(kill_dir, str(LOOP_TASK), "--iterations", iterations, "--seed", "5")
    run_id = None
    for threshold in (3, 8):
        deadline = time.monotonic() + 300
        while _done_count(store_path) < threshold and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        store = CognitionStore.open(store_path, readonly=True)
        run_id = store.list_runs()[0].id
        proc = _cli_run(kill_dir, "--resume", run_id)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out

    got, got_run = _summary(store_path, run_id)
    want, _ = _summary(ref_dir / "store.lmdb", ref_run.id)
    # Candidate ids differ between runs; code, scores and structure must not.
    assert [(i, p, code, score, st) for i, p, code, score, st in got] == want
    assert got_run.iterations_done == ref_run.iterations_done
    assert got_run.best_score == ref_run.best_score
    store = CognitionStore.open(store_path, readonly=True)
    per_cand = Counter(e.candidate_id for e in store.evaluations_of_run(run_id))
    for cand in store.candidates_of_run(run_id):
        evs = store.evaluations_of(cand.id)
        assert len({(e.stage, e.seed) for e in evs}) == len(evs) == per_cand.get(cand.id, 0)


@pytest.mark.docker
def test_docker_run_of_shipped_task_improves(tmp_path, docker_client):
    settings = _settings(tmp_path, **{"sandbox.backend": "docker", "budget.iterations": 8,
                                      "sandbox.candidate_images": "best"})
    run = execute_run(settings, "circle_packing")
    assert run.status == "finished", run.stop_reason
    assert run.best_score is not None and run.seed_score is not None
    assert run.best_score >= run.seed_score
    store = _reopen(settings.store)
    evs = store.evaluations_of_run(run.id)
    assert evs and all(e.backend == "docker" for e in evs if e.backend != "precheck")
    best = store.get_candidate(run.best_candidate_id)
    if best.iteration > 0:
        assert best.image and best.image.startswith("evoforge/cand-circle_packing:")


@pytest.mark.parametrize("backend", ["process", pytest.param("docker", marks=pytest.mark.docker)])
def test_loopback_llm_run_improves_and_records_calls(tmp_path, backend, request):
    from openai_stub import OpenAIStub

    if backend == "docker":
        request.getfixturevalue("docker_client")
    with OpenAIStub(handler=_llm_handler) as stub:
        settings = load_config({
            "store": tmp_path / "store.lmdb", "run_dir": tmp_path / "runs", "sandbox.backend": backend,
            "sandbox.candidate_images": "none", "llm.mode": "stub-model", "llm.base_url": stub.base_url,
            "budget.iterations": 5, "search.sampler": "greedy", "sandbox.concurrency": 1,
            "llm.proposal_concurrency": 1,
        }, environ={}).settings
        run = execute_run(settings, str(LOOP_TASK))
        assert stub.requests, "the loop never called the model"
    assert run.status == "finished", run.stop_reason
    assert run.best_score > run.seed_score
    store = _reopen(settings.store)
    calls = store.llm_calls_of(run.id)
    roles = Counter(c.role for c in calls)
    evaluated = [c for c in store.candidates_of_run(run.id) if c.state == "done" and c.iteration > 0]
    assert roles["researcher"] >= 5 and roles["analyzer"] >= len(evaluated) >= 2
    assert all(c.model == "stub-model" and c.response for c in calls)
    assert any(i.source == "analyzer" and i.run_id == run.id for i in store.insights(task="loop_task"))
    best = store.get_candidate(run.best_candidate_id)
    assert best.origin == "model:stub-model" and "X = " in best.diff

    # The same run replayed from its recorded calls, without any model.
    replay = load_config({
        "store": tmp_path / "store.lmdb", "run_dir": tmp_path / "runs", "sandbox.backend": backend,
        "sandbox.candidate_images": "none", "llm.mode": f"replay:{run.id}", "budget.iterations": 5,
        "search.sampler": "greedy", "sandbox.concurrency": 1, "llm.proposal_concurrency": 1,
    }, environ={}).settings
    again = execute_run(replay, str(LOOP_TASK))
    assert again.best_score == run.best_score


def test_ctrl_c_stops_proposing_commits_in_flight_and_resumes(tmp_path):
    store_path = tmp_path / "store.lmdb"
    proc = _cli_run(tmp_path, str(LOOP_TASK), "--iterations", "40")
    deadline = time.monotonic() + 300
    while _done_count(store_path) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    # `evolve status` from a second process while the run writes.
    status = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "status", "--store", str(store_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "COLUMNS": "200", "EVOFORGE_EMBEDDER": "lexical"},
    )
    assert status.returncode == 0, status.stderr
    assert "running" in status.stdout and "of 40" in status.stdout, status.stdout
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert "interrupted" in out
    store = CognitionStore.open(store_path, readonly=True)
    run = store.list_runs()[0]
    assert run.status == "stopped" and "interrupted" in run.stop_reason
    cands = store.candidates_of_run(run.id)
    assert all(c.state in ("done", "rejected") for c in cands), "an in-flight evaluation was dropped"
    assert len(cands) < 41
    proc = _cli_run(tmp_path, "--resume", run.id)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    store = CognitionStore.open(store_path, readonly=True)
    run = store.get_run(run.id)
    assert run.status == "finished" and run.iterations_done == 40
