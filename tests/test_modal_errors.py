"""The Modal backend's edges: `modal run` flags, credentials, network, timeouts, GPU requests,
oversized task folders and malformed payloads. The Modal cloud cannot be reached from here, so
the transport raises Modal's own exception classes where the real client would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from modal import exception as mx

from orchestrator import REPO_ROOT
from orchestrator.config import load_config
from orchestrator.errors import ConfigError, SandboxError
from orchestrator.sandbox import make_sandbox
from orchestrator.sandbox.base import Limits, SandboxJob
from orchestrator.sandbox.modal import (
    GpuRequest,
    ModalSandbox,
    _load_modal_app,
    estimate_cost_usd,
    gpu_request,
    has_credentials,
    normalize_gpu,
    task_files,
)

PROBE = Path(__file__).resolve().parent / "fixtures" / "tasks" / "sandbox_probe"
MODAL = str(Path(sys.executable).with_name("modal"))


def _job(limits: Limits = Limits(timeout_s=5)) -> SandboxJob:
    return SandboxJob(image="cpu", task_dir=PROBE, files={"program.py": "def main(seed=0):\n    return 1\n"},
                      program="program.py", stage="quick", seed=0, limits=limits)


def _raising(exc: BaseException):
    async def call(bundle, gpu, timeout_s, limits):
        raise exc
    return call


@pytest.fixture
def no_modal_token(monkeypatch, tmp_path):
    for key in ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET", "MODAL_OAUTH_REFRESH_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    if (Path.home() / ".modal.toml").exists():
        pytest.skip("this machine has a ~/.modal.toml: the no-credentials path cannot be tested")


# --- `modal run modal_app.py` ------------------------------------------------------------


def test_modal_run_help_works_offline():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODAL_TOKEN")}
    out = subprocess.run([MODAL, "run", "modal_app.py", "--help"], cwd=REPO_ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for flag in ("--task", "--iterations", "--gpu", "--concurrency", "--budget-usd", "--budget-gpu-hours"):
        assert flag in out.stdout


def test_modal_run_without_token_names_the_fix(no_modal_token):
    out = subprocess.run([MODAL, "run", "modal_app.py", "--task", "circle_packing", "--iterations", "1"],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "modal token new" in out.stdout + out.stderr


def test_entrypoint_flags_become_settings():
    app = _load_modal_app()
    overrides = app.entrypoint_overrides(iterations=50, gpu="h100", concurrency=16, budget_usd=5.0,
                                         budget_gpu_hours=2.0, scale="gpu", seed=3)
    settings = load_config(overrides, environ={}).settings
    assert settings.sandbox.backend == "modal"
    assert settings.sandbox.modal_gpu == "H100"
    assert settings.sandbox.concurrency == 16
    assert settings.budget.iterations == 50
    assert settings.budget.usd == 5.0
    assert settings.budget.gpu_s == 7200.0
    assert settings.scale == "gpu"
    assert settings.seed == 3
    assert settings.llm.mode == "offline"


def test_entrypoint_defaults_leave_settings_alone():
    app = _load_modal_app()
    settings = load_config(app.entrypoint_overrides(), environ={}).settings
    assert settings.budget.iterations is None  # the task's own default applies
    assert settings.budget.usd is None and settings.budget.gpu_s is None
    assert settings.sandbox.modal_gpu == "H100"
    assert settings.seed == 0


def test_entrypoint_cpu_only_flag():
    app = _load_modal_app()
    assert app.entrypoint_overrides(gpu="none")["sandbox.modal_gpu"] == "none"


@pytest.mark.parametrize("kwargs, flag", [
    ({"gpu": "H1000"}, "--gpu"),
    ({"iterations": -1}, "--iterations"),
    ({"budget_usd": -0.5}, "--budget-usd"),
    ({"concurrency": 0}, "--concurrency"),
])
def test_entrypoint_rejects_bad_flags(kwargs, flag):
    app = _load_modal_app()
    with pytest.raises(ConfigError, match=flag):
        app.entrypoint_overrides(**kwargs)


# --- credentials and network ---------------------------------------------------------------


def test_no_credentials_is_a_clear_error(no_modal_token):
    assert not has_credentials()
    with pytest.raises(SandboxError, match="modal token new"):
        ModalSandbox(gpu="H100")


def test_factory_routes_modal_and_checks_credentials(no_modal_token):
    settings = load_config({"sandbox.backend": "modal"}, environ={}).settings
    with pytest.raises(SandboxError, match="modal token new"):
        make_sandbox("modal", settings=settings)


def test_token_in_environment_counts(monkeypatch):
    monkeypatch.setenv("MODAL_TOKEN_ID", "ak-test")
    monkeypatch.setenv("MODAL_TOKEN_SECRET", "as-test")
    assert has_credentials()
    sandbox = ModalSandbox(gpu="A100")  # nothing is contacted before the first job
    assert sandbox.name == "modal" and sandbox.default_gpu == "A100"


async def test_rejected_token_names_modal_token_new():
    sandbox = ModalSandbox(gpu="H100", transport=_raising(mx.AuthError("Token invalid")))
    with pytest.raises(SandboxError, match="modal token new"):
        await sandbox.run(_job())


async def test_no_network_names_the_network():
    sandbox = ModalSandbox(gpu="H100", transport=_raising(mx.ConnectionError("Could not connect to the Modal server.")))
    with pytest.raises(SandboxError, match="network"):
        await sandbox.run(_job())


# --- statuses from Modal -------------------------------------------------------------------


async def test_function_timeout_is_timeout_status_and_still_billed():
    sandbox = ModalSandbox(gpu="L4", transport=_raising(mx.FunctionTimeoutError("timed out")))
    result = await sandbox.run(_job())
    assert result.status == "timeout"
    assert "function timeout" in result.error
    assert result.backend == "modal" and result.gpu_type == "L4"
    assert result.cost_usd >= 0


async def test_other_modal_failure_is_error_status():
    sandbox = ModalSandbox(gpu="H100", transport=_raising(mx.RemoteError("container crashed")))
    result = await sandbox.run(_job())
    assert result.status == "error" and "container crashed" in result.error


@pytest.mark.parametrize("payload", [
    ["not", "a", "dict"],
    {"status": "ok", "score": 1.0, "surprise": True},
    {"status": "great", "score": 1.0},
    {"status": "ok", "score": float("nan")},
])
async def test_malformed_payload_is_invalid(payload):
    async def call(bundle, gpu, timeout_s, limits):
        return payload
    result = await ModalSandbox(gpu="H100", transport=call).run(_job())
    assert result.status == "invalid" and result.score is None and result.error


async def test_bundle_carries_gpu_timeout_and_nonce():
    seen = {}

    async def call(bundle, gpu, timeout_s, limits):
        seen.update(bundle=bundle, gpu=gpu, timeout_s=timeout_s)
        return {"status": "ok", "score": 1.0, "runtime_s": 2.0, "gpu_seconds": 4.0}

    limits = Limits(timeout_s=30, gpu=2, gpu_type="A100-80GB")
    result = await ModalSandbox(gpu="H100", transport=call).run(_job(limits))
    assert seen["gpu"] == GpuRequest("A100-80GB", 2) and seen["gpu"].spec == "A100-80GB:2"
    assert seen["timeout_s"] > 30  # the runner's deadline plus kill and start-up margins
    assert len(seen["bundle"]["nonce"]) >= 16
    assert "evaluate.py" in seen["bundle"]["task_files"]
    assert result.gpu_seconds == 4.0 and result.gpu_type == "A100-80GB"
    assert result.cost_usd == pytest.approx(estimate_cost_usd(GpuRequest("A100-80GB", 2), 2.0, 2.0, 2048))


# --- GPU requests, prices, task folders ----------------------------------------------------


def test_gpu_request_prefers_the_task_type():
    assert gpu_request(Limits(gpu=0), "H100") == GpuRequest("H100", 1)
    assert gpu_request(Limits(gpu=4, gpu_type="l4"), "H100") == GpuRequest("L4", 4)
    assert gpu_request(Limits(gpu=0), "none") == GpuRequest(None, 0)


async def test_task_wanting_a_gpu_on_cpu_only_modal_is_an_error():
    with pytest.raises(SandboxError, match="--gpu H100"):
        gpu_request(Limits(gpu=1), "none")
    sandbox = ModalSandbox(gpu="none", transport=_raising(AssertionError("never called")))
    with pytest.raises(SandboxError, match="CPU-only"):
        await sandbox.run(_job(Limits(timeout_s=5, gpu=1)))


def test_unknown_gpu_lists_the_known_ones():
    with pytest.raises(SandboxError, match="H100"):
        normalize_gpu("RTX9090")
    with pytest.raises(SandboxError, match="unknown Modal GPU"):
        ModalSandbox(gpu="RTX9090", transport=_raising(AssertionError("never called")))


def test_cost_estimate():
    assert estimate_cost_usd(GpuRequest("H100", 1), 3600) == pytest.approx(3.95)
    assert estimate_cost_usd(GpuRequest("T4", 2), 1800) == pytest.approx(0.59)
    assert estimate_cost_usd(GpuRequest(None, 0), 3600, cpus=2, memory_mb=1024) == pytest.approx(0.102)


def test_task_folder_files_skip_caches_and_refuse_big_folders(tmp_path):
    (tmp_path / "evaluate.py").write_text("x = 1\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "evaluate.cpython-311.pyc").write_bytes(b"\0" * 10)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "blob.bin").write_bytes(b"\1" * 100)
    assert sorted(task_files(tmp_path)) == ["data/blob.bin", "evaluate.py"]
    with pytest.raises(SandboxError, match="Modal Volume"):
        task_files(tmp_path, max_bytes=50)
