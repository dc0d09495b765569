"""Shared fixtures: the Docker engine (a failing test, not a skip, when it is down), the sandbox
images (built once per session; a no-op when up to date) and the sandbox probe task.

Set EVOFORGE_SKIP_DOCKER=1 to skip docker-backed tests on a machine without an engine.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURE_TASKS = Path(__file__).resolve().parent / "fixtures" / "tasks"
SKIP_DOCKER = os.environ.get("EVOFORGE_SKIP_DOCKER", "") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not SKIP_DOCKER:
        return
    skip = pytest.mark.skip(reason="EVOFORGE_SKIP_DOCKER=1")
    for item in items:
        if "docker" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def docker_engine():
    """A docker client for the local engine; fails with the fix when the daemon is down."""
    if SKIP_DOCKER:
        pytest.skip("EVOFORGE_SKIP_DOCKER=1")
    from orchestrator.errors import ImageError  # noqa: PLC0415
    from orchestrator.sandbox.images import docker_client  # noqa: PLC0415

    try:
        return docker_client(timeout=120)
    except ImageError as exc:
        pytest.fail(f"{exc} (or set EVOFORGE_SKIP_DOCKER=1 to skip docker tests)", pytrace=False)


@pytest.fixture(scope="session")
def sandbox_images(docker_engine) -> dict[str, str]:
    """Builds the cpu image (and base) when missing; returns {"cpu": tag}."""
    from orchestrator.errors import ImageError  # noqa: PLC0415
    from orchestrator.sandbox.images import build_images, resolve_image  # noqa: PLC0415

    try:
        build_images(["cpu"], client=docker_engine)
        return {"cpu": resolve_image("cpu", docker_engine)}
    except ImageError as exc:
        pytest.fail(f"sandbox images cannot be built: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def docker_client(docker_engine, sandbox_images):
    """The engine's client, with the sandbox images present."""
    return docker_engine


@pytest.fixture
def fixture_task_dir() -> Path:
    """The tiny sandbox probe task (tests/fixtures/tasks/sandbox_probe)."""
    return FIXTURE_TASKS / "sandbox_probe"
