"""Peer folders through the real Docker sandbox: every fixture evaluated, a short offline
`evolve run` of each format, `evolve reproduce` of a best candidate, and a folder's
requirements.txt as a derived image (built offline from a wheelhouse; an unmet requirement
is an error before any evaluation)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from orchestrator.commands.evaluate import job_for
from orchestrator.errors import ImageError
from orchestrator.sandbox.docker import DockerSandbox
from orchestrator.task import load_task

PEER = Path(__file__).resolve().parent / "fixtures" / "peer"
REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.docker

EXPECTED = {
    "openevolve_plain": "ok", "openevolve_cascade": "ok", "openevolve_artifacts": "ok",
    "openevolve_failing": "error", "shinka_plain": "ok", "shinka_feedback": "ok",
    "shinka_failing": "error", "shinka_incorrect": "error",
}


def _eval(folder: Path, stage: str | None = None):
    task = load_task(folder)
    sandbox = DockerSandbox(gc_on_start=False)
    try:
        return asyncio.run(sandbox.run(job_for(task, task.seed_code(), stage)))
    finally:
        asyncio.run(sandbox.close())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_in_docker(docker_client, name):
    result = _eval(PEER / name)
    assert result.backend == "docker"
    assert result.status == EXPECTED[name], result.error or result.stderr_tail
    if result.status == "ok":
        assert result.score is not None
    else:
        assert "reference data missing" in result.error or "negative" in result.error


def test_cascade_last_stage_in_docker(docker_client):
    result = _eval(PEER / "openevolve_cascade", "stage2")
    assert result.status == "ok"
    assert result.metrics["points"] == 200


def _evolve(*args: str, cwd: Path) -> str:
    env = {**os.environ, "EVOFORGE_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("name", ["openevolve_cascade", "shinka_plain"])
def test_short_offline_run_and_reproduce(docker_client, tmp_path, name):
    store = tmp_path / "store.lmdb"
    out = _evolve("run", str(PEER / name), "--iterations", "3", "--store", str(store), cwd=tmp_path)
    match = re.search(r"-> (cand-[0-9a-f]+-[0-9a-f]+)", out.replace("\n", " "))
    assert match, out[-2000:]
    best = match.group(1)
    reproduced = _evolve("reproduce", best, "--store", str(store), cwd=tmp_path)
    assert "reproduced" in reproduced.splitlines()[-1]


def _probe_wheel(wheelhouse: Path) -> None:
    """A tiny pure-Python wheel, written by hand: nothing is fetched from PyPI."""
    files = {
        "evoforge_peer_probe/__init__.py": b"VALUE = 42\n",
        "evoforge_peer_probe-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: evoforge-peer-probe\nVersion: 1.0\n",
        "evoforge_peer_probe-1.0.dist-info/WHEEL":
            b"Wheel-Version: 1.0\nGenerator: evoforge-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append("evoforge_peer_probe-1.0.dist-info/RECORD,,")
    files["evoforge_peer_probe-1.0.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    wheelhouse.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheelhouse / "evoforge_peer_probe-1.0-py3-none-any.whl", "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)


def _folder_with_requirement(tmp_path: Path, requirement: str) -> Path:
    folder = tmp_path / "oe_requirements"
    shutil.copytree(PEER / "openevolve_plain", folder)
    (folder / "requirements.txt").write_text(requirement + "\n")
    (folder / "evaluator.py").write_text(
        "import evoforge_peer_probe\n\n\ndef evaluate(program_path):\n"
        "    return {'combined_score': evoforge_peer_probe.VALUE / 42, 'probe': evoforge_peer_probe.VALUE}\n")
    return folder


def test_requirements_build_a_derived_image_offline(docker_client, tmp_path, monkeypatch):
    wheelhouse = tmp_path / "wheels"
    _probe_wheel(wheelhouse)
    monkeypatch.setenv("EVOFORGE_WHEELHOUSE", str(wheelhouse))
    monkeypatch.setenv("EVOFORGE_OFFLINE", "1")
    folder = _folder_with_requirement(tmp_path, "evoforge-peer-probe==1.0")
    result = _eval(folder)
    assert result.status == "ok", result.error or result.stderr_tail
    assert result.metrics["probe"] == 42
    assert result.image_id.startswith("evoforge/cpu-req:")
    from orchestrator.sandbox.images import resolve_image  # noqa: PLC0415

    assert resolve_image(load_task(folder).spec.image, docker_client) == result.image_id  # cached by hash


def test_unmet_requirement_fails_before_any_evaluation(docker_client, tmp_path, monkeypatch):
    monkeypatch.setenv("EVOFORGE_WHEELHOUSE", str(tmp_path / "empty-wheelhouse"))
    monkeypatch.setenv("EVOFORGE_OFFLINE", "1")
    # A version no wheelhouse holds (1.0 may already be built into a cached image).
    folder = _folder_with_requirement(tmp_path, "evoforge-peer-probe==0.0.1")
    containers_before = len(docker_client.api.containers(all=True, filters={"label": "evoforge.managed=1"}))
    with pytest.raises(ImageError, match=r"(?s)requirements of oe_requirements .*evoforge-peer-probe==0.0.1.*pip download"):
        _eval(folder)
    after = len(docker_client.api.containers(all=True, filters={"label": "evoforge.managed=1"}))
    assert after <= containers_before
