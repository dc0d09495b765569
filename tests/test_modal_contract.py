"""The Modal evaluation function's body, through `Function.local()`: the shared sandbox contract
suite and a shipped task's seed, with no network and no credentials (the real Modal cloud
cannot be reached from here; `local_transport` replaces only the trip there and back)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from sandbox_contract import *  # noqa: F403 - the contract tests themselves

from orchestrator import TASKS_DIR
from orchestrator.sandbox.base import Limits, SandboxJob, SandboxResult
from orchestrator.sandbox.modal import (
    GpuRequest,
    ModalSandbox,
    _load_modal_app,
    local_transport,
    make_bundle,
)

CIRCLES = TASKS_DIR / "circle_packing"


@pytest.fixture(scope="module")
def modal_app():
    return _load_modal_app()


@pytest.fixture
def sandbox(modal_app):
    backend = ModalSandbox(gpu="H100", concurrency=2, transport=local_transport(modal_app.evaluate))
    yield backend
    asyncio.run(backend.close())


def _seed_job(stage: str = "quick", seed: int = 0) -> SandboxJob:
    return SandboxJob(image="cpu", task_dir=CIRCLES, files={"program.py": (CIRCLES / "seed.py").read_text()},
                      program="program.py", stage=stage, seed=seed, limits=Limits(timeout_s=30))


def test_local_body_runs_the_circle_packing_seed(modal_app):
    bundle = make_bundle(_seed_job(), GpuRequest("H100", 1)).model_dump()
    payload = modal_app.evaluate.local(bundle)
    result = SandboxResult.model_validate(payload)  # the same schema every backend returns
    assert result.status == "ok", result
    assert 2.0 < result.score < 2.64
    assert result.metrics["sum_radii"] == pytest.approx(result.score)
    assert result.backend == "modal"
    assert result.image_id == "local"  # MODAL_IMAGE_ID in a Modal container
    assert result.gpu_type == "H100"
    assert result.gpu_seconds == pytest.approx(result.runtime_s, rel=0.05)


def test_plain_body_equals_the_function_body(modal_app):
    bundle = make_bundle(_seed_job(seed=1), GpuRequest(None, 0)).model_dump()
    direct = SandboxResult.model_validate(modal_app.evaluate_bundle(bundle))
    via_local = SandboxResult.model_validate(modal_app.evaluate.local(bundle))
    assert direct.status == via_local.status == "ok"
    assert direct.score == via_local.score  # the seed is deterministic per (n, seed, budget)
    assert direct.gpu_seconds == 0.0 and direct.gpu_type == ""


async def test_sandbox_records_gpu_seconds_and_cost(sandbox):
    result = await sandbox.run(_seed_job())
    assert result.status == "ok", result
    assert result.gpu_type == "H100"
    assert result.gpu_seconds > 0
    # H100 at the table's 3.95 USD/h plus 2 CPUs and 2 GiB.
    expected = result.gpu_seconds * (3.95 + 2 * 0.047 + 2 * 0.008) / 3600
    assert result.cost_usd == pytest.approx(expected, rel=1e-3)


async def test_many_at_once_respects_the_concurrency_limit(modal_app):
    inflight = {"now": 0, "max": 0}
    inner = local_transport(modal_app.evaluate)

    async def counting(bundle, gpu, timeout_s, limits):
        inflight["now"] += 1
        inflight["max"] = max(inflight["max"], inflight["now"])
        try:
            return await inner(bundle, gpu, timeout_s, limits)
        finally:
            inflight["now"] -= 1

    backend = ModalSandbox(gpu="T4", concurrency=2, transport=counting)
    task = Path(__file__).resolve().parent / "fixtures" / "tasks" / "sandbox_probe"
    jobs = [SandboxJob(image="cpu", task_dir=task, files={"program.py": "def main(seed=0):\n    return seed\n"},
                       program="program.py", stage="quick", seed=i, limits=Limits(timeout_s=15))
            for i in range(4)]
    results = await asyncio.gather(*(backend.run(j) for j in jobs))
    assert [r.score for r in results] == [0.0, 1.0, 2.0, 3.0]
    assert inflight["max"] == 2


WHOAMI_EVALUATOR = '''
import os

def evaluate(program_path, *, stage, seed, workdir):
    open(os.path.join(workdir, "scratch-is-writable"), "w").close()
    return {"score": float(os.getuid()), "metrics": {"root_home_readable": os.access("/root", os.R_OK),
                                                     "nonce_visible": "EVOFORGE_NONCE" in os.environ}}
'''
SYSTEM_PYTHON = Path("/usr/bin/python3")


@pytest.mark.skipif(not (hasattr(os, "geteuid") and os.geteuid() == 0 and SYSTEM_PYTHON.exists()),
                    reason="needs root and a system python3 reachable by `nobody` (as in a Modal container)")
def test_runner_runs_as_nobody_when_root():
    """In a Modal container we are root: the runner (and the candidate) must not be."""
    from orchestrator.sandbox.modal_remote import NOBODY, run_bundle  # noqa: PLC0415

    bundle = make_bundle(
        SandboxJob(image="cpu", task_dir=CIRCLES, files={"program.py": "x = 1\n"}, program="program.py",
                   stage="quick", seed=0, limits=Limits(timeout_s=20)),
        GpuRequest(None, 0), files_of_task={"evaluate.py": WHOAMI_EVALUATOR.encode()},
    ).model_dump()
    result = SandboxResult.model_validate(run_bundle(bundle, python=str(SYSTEM_PYTHON)))
    assert result.status == "ok", result
    assert result.score == float(NOBODY)
    assert result.metrics == {"root_home_readable": False, "nonce_visible": False}
