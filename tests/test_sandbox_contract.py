"""Runs the shared sandbox contract (tests/sandbox_contract.py) against docker and process."""

from __future__ import annotations

import asyncio
import warnings

import pytest
from sandbox_contract import *  # noqa: F403 - the contract tests themselves


@pytest.fixture(params=[pytest.param("docker", marks=pytest.mark.docker), "process"])
def sandbox(request):
    from orchestrator.sandbox import make_sandbox  # noqa: PLC0415

    if request.param == "docker":
        request.getfixturevalue("docker_client")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        backend = make_sandbox(request.param)
    yield backend
    asyncio.run(backend.close())
