"""The `evolve` command line as a user runs it: a real subprocess, real daemon, real store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def evolve(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300):
    full_env = {**os.environ, "EVOFORGE_EMBEDDER": "lexical", "COLUMNS": "300", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args], cwd=cwd, env=full_env,
        capture_output=True, text=True, timeout=timeout,
    )


def test_doctor_without_daemon_names_the_fix_and_fails(tmp_path):
    out = evolve("doctor", cwd=tmp_path, env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert out.returncode == 1, out.stdout + out.stderr
    assert "docker daemon" in out.stdout and "make docker-engine" in out.stdout


def test_doctor_with_process_sandbox_does_not_require_docker(tmp_path):
    out = evolve("doctor", "--sandbox", "process", cwd=tmp_path,
                 env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.docker
def test_doctor_with_everything_in_place_passes(tmp_path, docker_client):
    out = evolve("doctor", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr


def test_config_show_reports_sources(tmp_path):
    (tmp_path / "evoforge.yaml").write_text("sandbox:\n  concurrency: 3\n")
    out = evolve("config", "show", "--json", cwd=tmp_path, env={"EVOFORGE_SEED": "9"})
    assert out.returncode == 0, out.stderr
    rows = {r["key"]: r for r in json.loads(out.stdout)}
    assert rows["sandbox.concurrency"]["value"] == 3 and rows["sandbox.concurrency"]["source"].startswith("file")
    assert rows["seed"] == {"key": "seed", "value": 9, "source": "env EVOFORGE_SEED"}


def test_bad_config_is_a_clear_error(tmp_path):
    (tmp_path / "evoforge.yaml").write_text("sandbox:\n  conccurency: 3\n")
    out = evolve("config", "show", cwd=tmp_path)
    assert out.returncode == 2
    assert "sandbox.conccurency" in out.stderr and "evoforge.yaml" in out.stderr


def test_run_status_best_show_on_process_sandbox(tmp_path):
    task = REPO / "tests" / "fixtures" / "loop_task"
    out = evolve("run", str(task), "--iterations", "3", "--sandbox", "process", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "WITHOUT an LLM" in out.stderr
    status = evolve("status", cwd=tmp_path)
    assert status.returncode == 0 and "iterations" in status.stdout and "3 of 3" in status.stdout, status.stdout
    best = evolve("best", cwd=tmp_path)
    assert best.returncode == 0 and "cand-" in best.stdout
    cid = next(tok for tok in best.stdout.split() if tok.startswith("cand-"))
    show = evolve("show", cid, cwd=tmp_path)
    assert show.returncode == 0 and "evolve reproduce" in show.stdout and "lineage" in show.stdout
    runs = evolve("runs", cwd=tmp_path)
    assert runs.returncode == 0 and "loop_task" in runs.stdout
    missing = evolve("show", "cand-does-not-exist", cwd=tmp_path)
    assert missing.returncode == 2 and "no candidate" in missing.stderr


def test_openevolve_config_settings_apply_below_flags(tmp_path):
    import shutil

    folder = tmp_path / "oe"
    shutil.copytree(REPO / "tests" / "fixtures" / "peer" / "openevolve_plain", folder)
    (folder / "config.yaml").write_text(
        "max_iterations: 7\nrandom_seed: 42\nllm:\n  models:\n    - name: qwen-coder\n      weight: 1.0\n"
        "  temperature: 0.3\n  api_base: http://127.0.0.1:9/v1\n"
    )
    out = evolve("config", "show", "--json", "--task", str(folder), cwd=tmp_path, env={"EVOFORGE_SEED": "3"})
    assert out.returncode == 0, out.stderr
    rows = {r["key"]: r for r in json.loads(out.stdout)}
    assert rows["llm.base_url"]["value"] == "http://127.0.0.1:9/v1"
    assert rows["llm.base_url"]["source"].startswith("openevolve config")
    assert rows["llm.models"]["value"][0]["name"] == "qwen-coder"
    assert rows["llm.models"]["value"][0]["temperature"] == 0.3
    assert rows["seed"]["value"] == 3 and rows["seed"]["source"] == "env EVOFORGE_SEED"  # env beats the folder
