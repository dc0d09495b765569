"""DockerSandbox specifics beyond the shared contract: engine errors, cancellation, gc, GPUs."""

from __future__ import annotations

import asyncio
import time

import pytest
from sandbox_contract import LIMITS, probe_job

from orchestrator.errors import SandboxError
from orchestrator.sandbox.base import Limits


def test_unreachable_daemon_names_the_fix(monkeypatch):
    from orchestrator.sandbox.docker import DockerSandbox  # noqa: PLC0415

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(SandboxError, match="make docker-engine"):
        DockerSandbox()


def _containers(client, run_id: str) -> list:
    return client.api.containers(all=True, filters={"label": f"evoforge.run={run_id}"})


@pytest.mark.docker
async def test_cancelled_job_leaves_no_container(docker_client, fixture_task_dir):
    from orchestrator.sandbox.docker import DockerSandbox  # noqa: PLC0415

    sandbox = DockerSandbox()
    task = asyncio.ensure_future(sandbox.run(probe_job(fixture_task_dir, mode="sleep", run_id="cancel-test")))
    for _ in range(100):
        await asyncio.sleep(0.1)
        if _containers(docker_client, "cancel-test"):
            break
    assert _containers(docker_client, "cancel-test"), "the job never started a container"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    deadline = time.monotonic() + 20
    while _containers(docker_client, "cancel-test") and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert _containers(docker_client, "cancel-test") == []
    await sandbox.close()


@pytest.mark.docker
def test_gc_removes_a_runs_leftovers(docker_client, sandbox_images):
    from orchestrator.sandbox.docker import DockerSandbox  # noqa: PLC0415

    docker_client.containers.create(sandbox_images["cpu"], ["python3", "-c", "pass"],
                                    labels={"evoforge.managed": "1", "evoforge.run": "gc-test"})
    sandbox = DockerSandbox(gc_on_start=False)
    assert len(_containers(docker_client, "gc-test")) == 1
    assert sandbox.gc("gc-test") == 1
    assert _containers(docker_client, "gc-test") == []


@pytest.mark.docker
async def test_gpu_request_without_nvidia_runtime_is_a_clear_error(docker_client, fixture_task_dir):
    from orchestrator.sandbox.docker import DockerSandbox  # noqa: PLC0415

    if "nvidia" in docker_client.info().get("Runtimes", {}):
        pytest.skip("this engine has the nvidia runtime")
    gpu = Limits(**{**LIMITS.__dict__, "gpu": 1})
    with pytest.raises(SandboxError, match="nvidia runtime"):
        await DockerSandbox(gc_on_start=False).run(probe_job(fixture_task_dir, limits=gpu))
