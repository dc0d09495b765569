"""Bad configuration and bad tasks are refused before anything is spent.

Each case runs the real `execute_run` (or the CLI) with a loopback LLM endpoint configured, and
checks the message names the problem and its fix, that the model was never called, and that the
store holds no run (refused up front) or only the seed's evaluation (refused by the seed check).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from loop_support import LOOP_TASK, test_settings
from openai_stub import OpenAIStub

from cognition.store import CognitionStore
from orchestrator.errors import ConfigError, EvoforgeError, TaskError
from orchestrator.runs import execute_run


@pytest.fixture(autouse=True)
def _lexical_embedder(monkeypatch):
    monkeypatch.setenv("EVOFORGE_EMBEDDER", "lexical")


def _task_copy(tmp_path: Path, edit_yaml=None, files: dict[str, str] | None = None) -> Path:
    folder = tmp_path / "task"
    shutil.copytree(LOOP_TASK, folder)
    if edit_yaml is not None:
        spec = yaml.safe_load((folder / "task.yaml").read_text())
        edit_yaml(spec)
        (folder / "task.yaml").write_text(yaml.safe_dump(spec))
    for name, text in (files or {}).items():
        (folder / name).write_text(text)
    return folder


def _runs_in(store_path: Path) -> list:
    if not (store_path / "data.mdb").exists():
        return []
    return CognitionStore.open(store_path, readonly=True).list_runs()


def _refused(tmp_path: Path, task: Path | str, error: type[Exception], match: str, **cli) -> tuple[str, OpenAIStub]:
    """Runs TASK with a live loopback model; returns the error text and the stub."""
    with OpenAIStub(handler=lambda body: "X = 2.0") as stub:
        settings = test_settings(tmp_path, **{"llm.mode": "stub-model", "llm.base_url": stub.base_url,
                                              "budget.iterations": 3, **cli})
        with pytest.raises(error, match=match) as info:
            execute_run(settings, str(task))
    assert stub.requests == [], "the model was called for a run that should have been refused"
    return str(info.value), stub


def test_missing_seed_is_refused_before_the_run_exists(tmp_path):
    task = _task_copy(tmp_path, lambda s: s.update(program="nowhere.py"))
    msg, _ = _refused(tmp_path, task, TaskError, "seed program .*nowhere.py is missing")
    assert "task.yaml" in msg
    assert _runs_in(tmp_path / "store.lmdb") == []


def test_task_yaml_with_wrong_types_is_refused(tmp_path):
    def edit(spec):
        spec["iterations"] = "many"
        spec["stages"][0]["timeout_s"] = "soon"
    task = _task_copy(tmp_path, edit)
    msg, _ = _refused(tmp_path, task, TaskError, "task.yaml is invalid")
    assert "iterations" in msg and "stages.0.timeout_s" in msg
    assert _runs_in(tmp_path / "store.lmdb") == []


def _only_the_seed_was_evaluated(store_path: Path) -> None:
    runs = _runs_in(store_path)
    assert len(runs) == 1 and runs[0].status == "failed"
    store = CognitionStore.open(store_path, readonly=True)
    cands = store.candidates_of_run(runs[0].id)
    assert [c.iteration for c in cands] == [0], "a candidate was proposed after the seed failed"
    assert store.llm_calls_of(runs[0].id) == []
    assert {e.candidate_id for e in store.evaluations_of_run(runs[0].id)} <= {cands[0].id}
    assert runs[0].tokens_used == 0 and runs[0].cost_usd == 0


def test_broken_seed_stops_at_the_seed_check(tmp_path):
    task = _task_copy(tmp_path, files={"seed.py": "def solve(:\n    return {}\n"})
    msg, _ = _refused(tmp_path, task, EvoforgeError, "seed program of task loop_task does not pass")
    assert "SyntaxError" in msg and "seed.py" in msg
    _only_the_seed_was_evaluated(tmp_path / "store.lmdb")


def test_evaluator_that_raises_on_the_seed_stops_at_the_seed_check(tmp_path):
    evaluator = (
        "def evaluate(program_path, *, stage, seed, workdir):\n"
        "    raise RuntimeError('evaluator exploded: no data file')\n"
    )
    task = _task_copy(tmp_path, files={"evaluate.py": evaluator})
    msg, _ = _refused(tmp_path, task, EvoforgeError, "seed program of task loop_task does not pass")
    assert "evaluator exploded" in msg and "evaluator" in msg
    _only_the_seed_was_evaluated(tmp_path / "store.lmdb")


def test_gpu_task_without_a_gpu_backend_is_refused(tmp_path):
    if shutil.which("nvidia-smi") or Path("/dev/nvidia0").exists():
        pytest.skip("this machine has a GPU")
    task = _task_copy(tmp_path, lambda s: s["resources"].update(gpu=1))
    msg, _ = _refused(tmp_path, task, ConfigError, "asks for 1 GPU")
    assert "--sandbox modal" in msg
    assert _runs_in(tmp_path / "store.lmdb") == []


@pytest.mark.docker
def test_gpu_task_on_a_docker_host_without_gpus_is_refused(tmp_path, docker_client):
    if "nvidia" in (docker_client.info().get("Runtimes") or {}):
        pytest.skip("this Docker host has the nvidia runtime")
    task = _task_copy(tmp_path, lambda s: s["resources"].update(gpu=1))
    _refused(tmp_path, task, ConfigError, "Docker host has none", **{"sandbox.backend": "docker"})
    assert _runs_in(tmp_path / "store.lmdb") == []


@pytest.mark.docker
def test_unknown_sandbox_image_is_refused(tmp_path, docker_client):
    task = _task_copy(tmp_path, lambda s: s.update(image="no-such-image"))
    msg, _ = _refused(tmp_path, task, ConfigError, "unknown sandbox image 'no-such-image'",
                      **{"sandbox.backend": "docker"})
    assert "task.yaml" in msg
    assert _runs_in(tmp_path / "store.lmdb") == []
    # an image reference that is well-formed but not built is refused the same way
    task2 = _task_copy(tmp_path / "b", lambda s: s.update(image="evoforge/nothing:0"))
    _refused(tmp_path / "b", task2, ConfigError, "is not built", **{"sandbox.backend": "docker"})


def test_cli_refuses_a_bad_task_with_a_clear_message(tmp_path):
    task = _task_copy(tmp_path, lambda s: s.update(iterations=0))
    out = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "run", str(task), "--store", str(tmp_path / "s.lmdb"),
         "--sandbox", "process"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**__import__("os").environ, "EVOFORGE_EMBEDDER": "lexical"},
    )
    assert out.returncode == 2, out.stdout + out.stderr
    assert "error:" in out.stderr and "iterations" in out.stderr and "Traceback" not in out.stderr
    assert _runs_in(tmp_path / "s.lmdb") == []
