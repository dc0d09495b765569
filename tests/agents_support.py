"""Shared builders for the agents tests: a toy task, candidates and evaluations."""

from __future__ import annotations

from pathlib import Path

from cognition.records import Candidate, Evaluation, new_id
from orchestrator.task import Stage, Task, TaskSpec

SEED = '''"""A toy program with literals to tune."""
import math

HEADER = 3

# EVOLVE-BLOCK-START
THRESHOLD = 0.3
LR = 0.01
STEPS = 100
MODE = "loss"  # evolve: choices ["loss", "margin", "hinge"]
SCALE = -2.5
KEEP = 7  # evolve: fixed
CLIP = 5.0  # evolve: range [1, 10]
CONFIG = {"width": 64, "depth": 3}


def shape(x):
    return x[0] * 2.0 + x[1]
# EVOLVE-BLOCK-END


def main():
    return HEADER * 10 + math.floor(0.5)
'''


def make_task(direction: str = "maximize", edit_mode: str = "diff", name: str = "toy") -> Task:
    spec = TaskSpec(
        name=name,
        description="Tune the constants of a toy program to maximise its score.",
        metric={"key": "score", "direction": direction},
        stages=[Stage(name="quick", timeout_s=10)],
        edit_mode=edit_mode,
    )
    return Task(Path("/nonexistent/toy"), spec)


def make_candidate(
    code: str = SEED,
    *,
    score: float | None = 0.5,
    parent_id: str | None = None,
    iteration: int = 0,
    summary: str = "",
    status: str | None = "ok",
    run_id: str = "run-test",
) -> Candidate:
    return Candidate(
        id=new_id("cand"),
        run_id=run_id,
        task="toy",
        iteration=iteration,
        code=code,
        parent_id=parent_id,
        score=score,
        status=status,
        summary=summary,
        state="done",
    )


def make_evaluation(
    cand: Candidate,
    status: str = "ok",
    score: float | None = 0.5,
    error: str = "",
    feedback: str = "",
) -> Evaluation:
    return Evaluation(
        id=new_id("eval"),
        candidate_id=cand.id,
        run_id=cand.run_id,
        stage="quick",
        seed=0,
        status=status,
        score=score,
        error=error,
        feedback=feedback,
    )
