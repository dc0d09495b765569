"""The sandbox contract, one suite for every backend (imported by tests/test_sandbox_contract.py
with a `sandbox` fixture parametrised over docker and process).

Each test runs real jobs on the probe task (tests/fixtures/tasks/sandbox_probe), whose evaluator
misbehaves on purpose when the job environment says PROBE_MODE=...
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.sandbox.base import TAIL_CHARS, Limits, SandboxJob

SEED = "def main(seed=0):\n    return 1.0 + seed\n"
LIMITS = Limits(cpus=1, memory_mb=384, pids=64, timeout_s=15, scratch_mb=32, output_kb=64)


def probe_job(task_dir: Path, code: str = SEED, *, mode: str = "call", seed: int = 0,
              limits: Limits = LIMITS, env: dict[str, str] | None = None,
              files: dict[str, str] | None = None, run_id: str = "contract") -> SandboxJob:
    return SandboxJob(image="cpu", task_dir=task_dir, files=files or {"program.py": code},
                      program="program.py", stage="quick", seed=seed, limits=limits,
                      env={"PROBE_MODE": mode, **(env or {})}, run_id=run_id, candidate_id="cand-test")


async def test_ok_result(sandbox, fixture_task_dir):
    result = await sandbox.run(probe_job(fixture_task_dir, seed=2))
    assert result.status == "ok", result
    assert result.score == 3.0
    assert result.metrics == {"out": 3.0}
    assert result.feedback == "main returned 3.0"
    assert result.backend == sandbox.name
    assert result.exit_code == 0
    assert result.runtime_s > 0


async def test_evaluator_error_is_error(sandbox, fixture_task_dir):
    result = await sandbox.run(probe_job(fixture_task_dir, mode="raise"))
    assert result.status == "error"
    assert result.score is None
    assert "probe evaluator failed on purpose" in result.error


async def test_candidate_crash_is_error_with_feedback(sandbox, fixture_task_dir):
    code = "def main(seed=0):\n    raise ValueError('candidate bug 42')\n"
    result = await sandbox.run(probe_job(fixture_task_dir, code))
    assert result.status == "error"
    assert "candidate bug 42" in result.feedback


async def test_timeout_kills_and_next_job_works(sandbox, fixture_task_dir):
    limits = Limits(cpus=1, memory_mb=384, pids=64, timeout_s=2, scratch_mb=32, output_kb=64)
    result = await sandbox.run(probe_job(fixture_task_dir, mode="sleep", limits=limits))
    assert result.status == "timeout"
    assert result.runtime_s < 30
    spin = "def main(seed=0):\n    while True:\n        pass\n"
    result = await sandbox.run(probe_job(fixture_task_dir, spin, limits=limits, env={"PROBE_CHILD_TIMEOUT": "60"}))
    assert result.status == "timeout"
    after = await sandbox.run(probe_job(fixture_task_dir))
    assert after.status == "ok"


@pytest.mark.parametrize("mode", ["nan", "noscore", "notdict", "huge"])
async def test_bad_result_is_invalid(sandbox, fixture_task_dir, mode):
    result = await sandbox.run(probe_job(fixture_task_dir, mode=mode))
    assert result.status == "invalid"
    assert result.score is None
    assert result.error


async def test_output_tails_are_bounded(sandbox, fixture_task_dir):
    result = await sandbox.run(probe_job(fixture_task_dir, mode="print"))
    assert result.status == "ok"
    assert 0 < len(result.stdout_tail) <= TAIL_CHARS
    assert "earlier bytes dropped" in result.stdout_tail or result.stdout_tail.endswith("y\n")


async def test_env_is_passed_and_nonce_hidden(sandbox, fixture_task_dir):
    result = await sandbox.run(probe_job(fixture_task_dir, mode="env", env={"PROBE_VALUE": "hello"}))
    assert result.status == "ok"
    assert result.metrics == {"value": "hello", "nonce_visible": False}


@pytest.mark.parametrize("name", ["../escape.py", "/abs.py", "a/../../b.py", ""])
async def test_unsafe_file_names_are_invalid(sandbox, fixture_task_dir, name):
    job = probe_job(fixture_task_dir, files={"program.py": SEED, name: "x = 1\n"})
    result = await sandbox.run(job)
    assert result.status == "invalid"
    assert "not a plain relative path" in result.error
