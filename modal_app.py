"""The Modal app: candidate evaluations on GPU containers, with the same contract as Docker.

    modal token new                                                   # once
    modal run modal_app.py --task linear_attention --iterations 50 --gpu H100

The orchestrator and the Cognition Store stay on this machine; every evaluation runs
`evaluate` on Modal (many at once, up to --concurrency), which runs the same trusted runner as
the Docker image and returns the same `SandboxResult`. `evolve run TASK --sandbox modal` uses
this app too (it starts it on demand).

The image is the `cuda` sandbox image's package list (`SANDBOX_PACKAGES`, kept equal to
sandbox_images/cuda/requirements.txt by tests/test_modal_image.py) on Modal's Debian slim
Python 3.11, plus the host-side result schema (`HOST_SIDE_PACKAGES`), the runner and the
`orchestrator` sources. PyPI's torch wheel for Linux is the CUDA build.
"""

from __future__ import annotations

from typing import Any

import modal

from orchestrator.sandbox.modal import STARTUP_GRACE_S, normalize_gpu
from orchestrator.sandbox.modal_remote import LOCAL_RUNNER_DIR, REMOTE_RUNNER_DIR, run_bundle

APP_NAME = "evoforge"
PYTHON_VERSION = "3.11"

#: Exactly sandbox_images/cuda/requirements.txt (a test fails when they drift apart).
SANDBOX_PACKAGES: tuple[str, ...] = (
    "numpy==2.4.6",
    "scipy==1.17.1",
    "scikit-learn==1.9.1",
    "joblib==1.6.0",
    "threadpoolctl==3.8.0",
    "narwhals==2.29.0",
    "torch==2.13.0",
    "filelock==4.3.1",
    "fsspec==2026.9.0",
    "jinja2==3.1.6",
    "markupsafe==3.0.4",
    "mpmath==1.3.0",
    "networkx==3.6.1",
    "setuptools==84.2.1",
    "sympy==1.14.0",
    "typing-extensions==4.16.0",
)
#: What the container needs beyond the sandbox image to validate results like the host does
#: (pinned to the host's versions; a test checks them against the installed ones).
HOST_SIDE_PACKAGES: tuple[str, ...] = (
    "pydantic==2.14.4",
    "pydantic-core==2.50.5",
    "annotated-types==0.8.0",
    "typing-inspection==0.4.5",
)
#: Upper bound of one evaluation on Modal when a caller gives no timeout (seconds).
DEFAULT_TIMEOUT_S = 3600

image = (
    modal.Image.debian_slim(python_version=PYTHON_VERSION)
    .pip_install(*SANDBOX_PACKAGES, *HOST_SIDE_PACKAGES)
    .env({
        "EVOFORGE_RUNNER_DIR": REMOTE_RUNNER_DIR,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    })
    .add_local_dir(LOCAL_RUNNER_DIR / "evoforge_runner", remote_path=f"{REMOTE_RUNNER_DIR}/evoforge_runner",
                   ignore=["__pycache__", "*.pyc"])
    .add_local_python_source("orchestrator")
)

app = modal.App(APP_NAME, image=image)


def evaluate_bundle(bundle: dict[str, Any]) -> dict[str, Any]:
    """The body of `evaluate`: one bundle (see `orchestrator.sandbox.modal_remote.ModalBundle`)
    through the trusted runner; returns `SandboxResult.model_dump()`."""
    return run_bundle(bundle)


# GPU type and timeout are chosen per job (`with_options`), from the task or --gpu.
@app.function(timeout=DEFAULT_TIMEOUT_S, block_network=True, retries=0)
def evaluate(bundle: dict[str, Any]) -> dict[str, Any]:
    return evaluate_bundle(bundle)


def entrypoint_overrides(
    *,
    iterations: int = 0,
    gpu: str = "",
    concurrency: int = 8,
    llm: str = "offline",
    budget_usd: float = 0.0,
    budget_gpu_hours: float = 0.0,
    scale: str = "",
    seed: int = -1,
    store: str = "",
) -> dict[str, Any]:
    """`modal run` flags -> dotted settings keys for `load_config` (0 / "" / -1 mean unset).
    Raises `ConfigError` naming the flag for a value that cannot work."""
    from orchestrator.errors import ConfigError, SandboxError  # noqa: PLC0415

    for flag, value in (("--iterations", iterations), ("--budget-usd", budget_usd),
                        ("--budget-gpu-hours", budget_gpu_hours)):
        if value < 0:
            raise ConfigError(f"{flag} must be >= 0 (0 means no limit), got {value}")
    if concurrency < 1:
        raise ConfigError(f"--concurrency must be >= 1, got {concurrency}")
    try:
        gpu_type = normalize_gpu(gpu) if gpu else None
    except SandboxError as exc:
        raise ConfigError(f"--gpu: {exc}") from exc
    overrides: dict[str, Any] = {
        "sandbox.backend": "modal",
        "sandbox.concurrency": concurrency,
        "llm.mode": llm or "offline",
        "budget.iterations": iterations or None,
        "budget.usd": budget_usd or None,
        "budget.gpu_s": budget_gpu_hours * 3600 if budget_gpu_hours else None,
        "scale": scale or None,
        "seed": seed if seed >= 0 else None,
        "store": store or None,
    }
    if gpu:
        overrides["sandbox.modal_gpu"] = gpu_type or "none"
    return overrides


@app.local_entrypoint()
def main(
    task: str = "linear_attention",
    iterations: int = 0,
    gpu: str = "",
    concurrency: int = 8,
    llm: str = "offline",
    budget_usd: float = 0.0,
    budget_gpu_hours: float = 0.0,
    scale: str = "",
    seed: int = -1,
    resume: str = "",
    store: str = "",
) -> None:
    """Run a whole evolution here, with every evaluation on Modal.

    --gpu: H100 (default, or the task's gpu_type), H200, A100-80GB, A100, L40S, A10G, L4, T4, none.
    0 / "" leave a setting to evoforge.yaml / the task (e.g. --iterations 0 = the task's default).
    """
    from orchestrator.config import load_config  # noqa: PLC0415
    from orchestrator.runs import execute_run  # noqa: PLC0415
    from orchestrator.sandbox.modal import attach_function  # noqa: PLC0415

    overrides = entrypoint_overrides(
        iterations=iterations, gpu=gpu, concurrency=concurrency, llm=llm, budget_usd=budget_usd,
        budget_gpu_hours=budget_gpu_hours, scale=scale, seed=seed, store=store,
    )
    settings = load_config(overrides).settings
    print(f"evoforge on Modal: task {task or resume}, GPU {settings.sandbox.modal_gpu} "
          f"(a task's gpu_type wins), {settings.sandbox.concurrency} evaluations at once, "
          f"researcher {settings.llm.mode}; first start builds the image (minutes, cached after)")
    with attach_function(evaluate):
        run = execute_run(settings, None if resume else task, resume=resume or None)
    best = f"{run.best_score:.6g}" if run.best_score is not None else "none"
    print(f"run {run.id} {run.status}: {run.iterations_done} iterations, best {best} -> {run.best_candidate_id}")
    print(f"  GPU-seconds {run.gpu_seconds:.1f}, spent ${run.cost_usd:.4f} (LLM + estimated Modal)")
    if run.stop_reason:
        print(f"  stopped: {run.stop_reason}")
    print(f"  next: `evolve show {run.best_candidate_id}`, `evolve reproduce {run.best_candidate_id}`")


__all__ = ["app", "evaluate", "evaluate_bundle", "entrypoint_overrides", "main", "image",
           "SANDBOX_PACKAGES", "HOST_SIDE_PACKAGES", "STARTUP_GRACE_S"]
