"""Helpers shared by the loop tests and the fault tests: settings for a test run, the `evolve`
CLI as a child process, and read-only views of what a run left in the store.

Everything here talks to real components: `load_config`, the CLI module, a real LMDB store.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from cognition.store import CognitionStore
from orchestrator.config import Settings, load_config

LOOP_TASK = Path(__file__).parent / "fixtures" / "loop_task"
FAULT_TASKS = Path(__file__).parent / "fixtures" / "fault_tasks"
REPO = Path(__file__).resolve().parent.parent


def test_settings(tmp_path: Path, **cli: Any) -> Settings:
    """Settings of a fast offline test run: process sandbox, greedy sampler, no images."""
    flags = {
        "store": tmp_path / "store.lmdb", "run_dir": tmp_path / "runs", "sandbox.backend": "process",
        "sandbox.candidate_images": "none", "search.sampler": "greedy",
        **cli,
    }
    return load_config(flags, environ={"EVOFORGE_EMBEDDER": "lexical"}).settings


test_settings.__test__ = False  # a helper, not a test


def cli_run(cwd: Path, *args: str, sandbox: str = "process", store: Path | None = None,
            extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    """`evolve run ARGS` as a child process in `cwd` (stdout+stderr merged, text)."""
    env = {**os.environ, "EVOFORGE_EMBEDDER": "lexical", "PYTHONUNBUFFERED": "1", **(extra_env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "run", *args,
         "--store", str(store or cwd / "store.lmdb"), "--sandbox", sandbox, "--sampler", "greedy"],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def done_count(store_path: Path, run_id: str | None = None) -> int:
    """Finished (`done`) candidates of `run_id` (default: the only/first run); 0 when unreadable."""
    if not store_path.exists():
        return 0
    try:
        store = CognitionStore.open(store_path, readonly=True)
        if run_id is None:
            runs = store.list_runs()
            if not runs:
                return 0
            run_id = runs[0].id
        return sum(1 for c in store.candidates_of_run(run_id) if c.state == "done")
    except Exception:
        return 0


def first_run_id(store_path: Path) -> str | None:
    try:
        runs = CognitionStore.open(store_path, readonly=True).list_runs()
    except Exception:
        return None
    return runs[0].id if runs else None


def run_summary(store_path: Path, run_id: str) -> tuple[list[tuple[Any, ...]], Any]:
    """(iteration, has parent, code, score, state) per candidate, and the run record: what two
    runs of the same seed must share (candidate ids differ between runs)."""
    store = CognitionStore.open(store_path, readonly=True)
    cands = store.candidates_of_run(run_id)
    return [(c.iteration, c.parent_id is not None, c.code, c.score, c.state) for c in cands], store.get_run(run_id)


def assert_each_evaluated_once(store_path: Path, run_id: str) -> int:
    """Every finished candidate has its evaluations, none stored twice, and nothing is left
    proposed or evaluating. Returns the number of evaluations of the run."""
    store = CognitionStore.open(store_path, readonly=True)
    evs = store.evaluations_of_run(run_id)
    per_cand = Counter(e.candidate_id for e in evs)
    for cand in store.candidates_of_run(run_id):
        assert cand.state in ("done", "rejected"), f"{cand.id} (iteration {cand.iteration}) is left {cand.state}"
        got = store.evaluations_of(cand.id)
        keys = [(e.stage, e.seed) for e in got]
        assert len(set(keys)) == len(keys) == per_cand.get(cand.id, 0), f"{cand.id} evaluated twice: {keys}"
        if cand.state == "done":
            assert got, f"{cand.id} is done without an evaluation"
    return len(evs)


def scripted_model(body: dict) -> str:
    """A scripted 'model': moves X of the parent one step towards 3 with a SEARCH/REPLACE diff;
    answers the Analyzer with a JSON insight."""
    system = body["messages"][0]["content"]
    user = body["messages"][-1]["content"]
    if "analyse the results" in system:
        return ('{"summary": "moved X towards 3", "insights": [{"claim": "raising X towards 3 helps", '
                '"evidence": "score rose", "confidence": 0.8}]}')
    match = re.search(r"^X = ([-0-9.e]+)$", user, re.M)
    if match is None:
        return "I cannot find X."
    old = match.group(0)
    new_x = min(3.0, float(match.group(1)) + 0.5)
    return f"Move X closer to 3.\n<<<<<<< SEARCH\n{old}\n=======\nX = {new_x}\n>>>>>>> REPLACE\n"
