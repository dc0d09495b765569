"""`ModalSandbox`: evaluations in GPU containers on Modal, with the same contract as Docker.

    sandbox = ModalSandbox(gpu="H100", concurrency=8)       # `evolve run --sandbox modal`
    result = await sandbox.run(job)                          # a SandboxResult, as every backend

A job travels as a *bundle* (`make_bundle`): the task folder's files (a few MB at most), the
candidate's files, stage, seed, scale, limits and a nonce. In the container `run_bundle` (the
body of `modal_app.evaluate`, in `modal_remote.py`) writes them to temporary folders and runs the same trusted runner
as the other backends, as an unprivileged user, with a wall-clock kill of its process tree; the
result line is parsed by the shared `protocol.parse_result`. Back on the host the payload is
validated again, and GPU-seconds and an estimated cost are recorded for the budget.

Modal itself is reached only through `_ModalTransport`; tests hand `local_transport(fn)`, which
runs the function body through `Function.local()` (no network, no credentials).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from orchestrator import REPO_ROOT
from orchestrator.errors import SandboxError
from orchestrator.sandbox import protocol
from orchestrator.sandbox.base import Limits, SandboxJob, SandboxResult
from orchestrator.sandbox.modal_remote import (  # noqa: F401 - re-exported for modal_app and tests
    BACKEND,
    KILL_GRACE_S,
    LOCAL_RUNNER_DIR,
    NOBODY,
    REMOTE_RUNNER_DIR,
    ModalBundle,
    run_bundle,
)

#: A task folder travels with every job: refuse big ones (datasets belong in the image).
MAX_TASK_BYTES = 8 * 1024 * 1024
#: Never shipped: caches and version-control folders.
_SKIP_PARTS = {"__pycache__", ".git", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
#: Modal's function timeout covers container start too (image load, CUDA init).
STARTUP_GRACE_S = 60.0
#: Modal's timeout is a backstop (our own kill comes first) rounded up to this step, so that
#: the stages of a task share one warm container pool instead of one pool per timeout.
MODAL_TIMEOUT_STEP_S = 300
MODAL_APP_PATH = REPO_ROOT / "modal_app.py"

#: Estimated Modal list prices in USD per GPU-hour (modal.com/pricing, checked 2026-05-07).
#: Estimates only: the bill also counts container start and idle time before scale-down.
GPU_USD_PER_HOUR: dict[str, float] = {
    "T4": 0.59,
    "L4": 0.80,
    "A10G": 1.10,
    "L40S": 1.95,
    "A100": 2.10,
    "A100-40GB": 2.10,
    "A100-80GB": 2.50,
    "H100": 3.95,
    "H200": 4.54,
    "B200": 6.25,
}
#: USD per physical-core-hour and per GiB-hour of memory (same page, same date).
CPU_CORE_USD_PER_HOUR = 0.047
MEMORY_GIB_USD_PER_HOUR = 0.008
NO_GPU = ("", "none", "cpu")


# --- GPU requests and cost -----------------------------------------------------------------


@dataclass(frozen=True)
class GpuRequest:
    """What one evaluation asks Modal for: `type` None means a CPU-only container."""

    type: str | None
    count: int = 1

    @property
    def spec(self) -> str | None:
        """Modal's `gpu=` string: "H100", "A100-80GB:2", or None."""
        if self.type is None:
            return None
        return self.type if self.count == 1 else f"{self.type}:{self.count}"

    @property
    def gpus(self) -> int:
        return 0 if self.type is None else self.count


def normalize_gpu(name: str | None) -> str | None:
    """A GPU type as Modal spells it, or None for "none"/"cpu"/"". Unknown names are an error
    that lists the known ones (the price table is what we can account for)."""
    text = (name or "").strip()
    if text.lower() in NO_GPU:
        return None
    base, _, count = text.partition(":")
    known = {k.upper(): k for k in GPU_USD_PER_HOUR}
    if base.upper() not in known:
        raise SandboxError(
            f"unknown Modal GPU type {text!r}: choose one of {', '.join(GPU_USD_PER_HOUR)} "
            "(or `none` for CPU-only containers)"
        )
    if count:
        raise SandboxError(f"GPU {text!r}: give the type only; the count comes from the task's resources.gpu")
    return known[base.upper()]


def gpu_request(limits: Limits, default_gpu: str | None) -> GpuRequest:
    """The task's `gpu_type` wins over the backend default; a task with `gpu: 0` still gets
    one GPU of the default type (that is what Modal is for), unless the default is `none`."""
    gpu_type = normalize_gpu(limits.gpu_type) if limits.gpu_type else normalize_gpu(default_gpu)
    if gpu_type is None:
        if limits.gpu > 0:
            raise SandboxError(
                f"the task asks for {limits.gpu} GPU(s) but the Modal backend is set to CPU-only "
                "(gpu `none`): pass --gpu H100 (or another type), or set sandbox.modal_gpu"
            )
        return GpuRequest(None, 0)
    return GpuRequest(gpu_type, max(1, limits.gpu))


def estimate_cost_usd(gpu: GpuRequest, wall_s: float, cpus: float = 0.0, memory_mb: int = 0) -> float:
    """Estimated dollars for `wall_s` seconds of one container (see the price table's caveat)."""
    per_hour = GPU_USD_PER_HOUR.get(gpu.type or "", 0.0) * gpu.gpus
    per_hour += CPU_CORE_USD_PER_HOUR * cpus + MEMORY_GIB_USD_PER_HOUR * memory_mb / 1024
    return max(0.0, wall_s) * per_hour / 3600.0


def modal_timeout_s(stage_timeout_s: float) -> int:
    """Modal's function timeout for a stage: its deadline plus kill and start-up margins,
    rounded up to MODAL_TIMEOUT_STEP_S."""
    needed = stage_timeout_s + KILL_GRACE_S + STARTUP_GRACE_S
    return int(math.ceil(needed / MODAL_TIMEOUT_STEP_S) * MODAL_TIMEOUT_STEP_S)


# --- credentials ---------------------------------------------------------------------------


def has_credentials() -> bool:
    """True when the Modal client would find a token (env vars or the active ~/.modal.toml profile)."""
    try:
        from modal.config import config  # noqa: PLC0415
    except ImportError:
        return False
    try:
        token = config.get("token_id") and config.get("token_secret")
        oauth = config.get("oauth_refresh_token")
    except Exception:  # noqa: BLE001 - a broken ~/.modal.toml reads as "no credentials"
        return False
    return bool(token or oauth)


def require_credentials() -> None:
    try:
        import modal  # noqa: F401, PLC0415
    except ImportError as exc:
        raise SandboxError("the `modal` package is not installed: `pip install modal`") from exc
    if not has_credentials():
        raise SandboxError(
            "no Modal credentials (MODAL_TOKEN_ID/MODAL_TOKEN_SECRET or ~/.modal.toml): "
            "run `modal token new` (it opens a browser to log in), then retry"
        )


# --- the bundle ----------------------------------------------------------------------------


def task_files(task_dir: Path, max_bytes: int = MAX_TASK_BYTES) -> dict[str, bytes]:
    """Every file of a task folder (relative POSIX name -> bytes), caches left out."""
    root = Path(task_dir)
    if not root.is_dir():
        raise SandboxError(f"task folder {root} is missing")
    files: dict[str, bytes] = {}
    total = 0
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(p in _SKIP_PARTS for p in rel.parts) or path.suffix == ".pyc" or not path.is_file():
            continue
        data = path.read_bytes()
        total += len(data)
        if total > max_bytes:
            raise SandboxError(
                f"task folder {root} is over {max_bytes // (1024 * 1024)} MB; it is sent with every "
                "Modal evaluation: move large data into the image (modal_app.image) or a Modal Volume"
            )
        files[rel.as_posix()] = data
    return files


def make_bundle(job: SandboxJob, gpu: GpuRequest, nonce: str | None = None,
                files_of_task: dict[str, bytes] | None = None) -> ModalBundle:
    return ModalBundle(
        task_name=job.task_dir.name,
        task_files=files_of_task if files_of_task is not None else task_files(job.task_dir),
        files=dict(job.files),
        program=job.program,
        stage=job.stage,
        seed=job.seed,
        scale=job.scale,
        format=job.format,
        timeout_s=job.limits.timeout_s,
        output_kb=job.limits.output_kb,
        env=dict(job.env),
        nonce=nonce or protocol.new_nonce(),
        gpu_type=gpu.type,
        gpu_count=gpu.gpus,
    )


# --- how the host reaches the function -----------------------------------------------------

#: (bundle as a dict, gpu request, Modal timeout in seconds, limits) -> the function's payload
Transport = Callable[[dict[str, Any], GpuRequest, int, Limits], Awaitable[dict[str, Any]]]

_attached: list[Any] = []


@contextlib.contextmanager
def attach_function(fn: Any) -> Iterator[None]:
    """Under `modal run modal_app.py` the app already runs: its hydrated `evaluate` function is
    attached here so that the ModalSandbox built by `execute_run` uses it."""
    _attached.append(fn)
    try:
        yield
    finally:
        _attached.remove(fn)


def local_transport(fn: Any) -> Transport:
    """Run the Modal function's body on this machine through `Function.local()`."""

    async def call(bundle: dict[str, Any], gpu: GpuRequest, timeout_s: int, limits: Limits) -> dict[str, Any]:
        return await asyncio.to_thread(fn.local, bundle)

    return call


def _load_modal_app() -> Any:
    import importlib.util  # noqa: PLC0415

    if "modal_app" in sys.modules:
        return sys.modules["modal_app"]
    if not MODAL_APP_PATH.is_file():
        raise SandboxError(f"{MODAL_APP_PATH} is missing: the Modal backend needs the repository checkout")
    spec = importlib.util.spec_from_file_location("modal_app", MODAL_APP_PATH)
    if spec is None or spec.loader is None:
        raise SandboxError(f"cannot load {MODAL_APP_PATH}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["modal_app"] = module
    spec.loader.exec_module(module)
    return module


class _ModalTransport:
    """The real thing: `evaluate.with_options(gpu=..., timeout=...).remote.aio(bundle)`. Starts
    an ephemeral app (`app.run`) unless one is attached (`modal run`)."""

    def __init__(self, function: Any | None = None):
        self._function = function
        self._stack: contextlib.AsyncExitStack | None = None
        self._variants: dict[tuple[Any, ...], Any] = {}
        self._lock = asyncio.Lock()

    async def _base(self) -> Any:
        async with self._lock:
            if self._function is None and _attached:
                self._function = _attached[-1]
            if self._function is None:
                require_credentials()
                module = _load_modal_app()
                from orchestrator.log import get_logger  # noqa: PLC0415 - host only (structlog)

                get_logger("evoforge.sandbox.modal").info(
                    "starting the Modal app", app=module.APP_NAME,
                    note="the first start builds the image (minutes); later starts reuse it")
                stack = contextlib.AsyncExitStack()
                await stack.enter_async_context(module.app.run.aio())
                self._stack = stack
                self._function = module.evaluate
            return self._function

    async def __call__(self, bundle: dict[str, Any], gpu: GpuRequest, timeout_s: int, limits: Limits) -> dict[str, Any]:
        base = await self._base()
        key = (gpu.spec, timeout_s, limits.cpus, limits.memory_mb)
        fn = self._variants.get(key)
        if fn is None:
            options: dict[str, Any] = {"timeout": timeout_s, "cpu": limits.cpus, "memory": limits.memory_mb}
            if gpu.spec:
                options["gpu"] = gpu.spec
            fn = self._variants[key] = base.with_options(**options)
        return await fn.remote.aio(bundle)

    async def close(self) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await stack.aclose()


# --- the backend ---------------------------------------------------------------------------


def _modal_errors() -> tuple[type[BaseException], ...]:
    """(timeout, auth, connection, any other Modal error) classes; placeholders without modal."""
    try:
        from modal import exception as mx  # noqa: PLC0415
    except ImportError:
        class _Never(Exception):
            pass
        return (_Never, _Never, _Never, _Never)
    return (mx.FunctionTimeoutError, mx.AuthError, mx.ConnectionError, mx.Error)


class ModalSandbox:
    """Satisfies `orchestrator.sandbox.base.Sandbox` on Modal GPU containers.

    `gpu` is the default type ("H100"; "none" for CPU-only), a task's `gpu_type` wins over it.
    At most `concurrency` evaluations are in flight. `transport` replaces Modal (tests).
    """

    name = BACKEND

    def __init__(self, *, settings: Any = None, gpu: str | None = None, concurrency: int | None = None,
                 transport: Transport | None = None, function: Any | None = None):
        sandbox_cfg = getattr(settings, "sandbox", None)
        self.default_gpu = gpu if gpu is not None else getattr(sandbox_cfg, "modal_gpu", "H100")
        normalize_gpu(self.default_gpu)  # an unknown type fails here, before any job
        self.concurrency = concurrency or getattr(sandbox_cfg, "concurrency", 4)
        if transport is None and function is None and not _attached:
            require_credentials()  # fail at start-up, not on the first evaluation
        self._real = None if transport is not None else _ModalTransport(function)
        self._transport: Transport = transport or self._real  # type: ignore[assignment]
        self._slots = asyncio.Semaphore(self.concurrency)
        self._task_files: dict[Path, dict[str, bytes]] = {}

    def _files_of(self, task_dir: Path) -> dict[str, bytes]:
        key = task_dir.resolve()
        if key not in self._task_files:  # read once per run: evaluations of a run share the task
            self._task_files[key] = task_files(key)
        return self._task_files[key]

    async def run(self, job: SandboxJob) -> SandboxResult:
        gpu = gpu_request(job.limits, self.default_gpu)
        host = {"backend": self.name, "gpu_type": gpu.type or ""}
        try:
            bundle = make_bundle(job, gpu, files_of_task=self._files_of(job.task_dir))
        except ValidationError as exc:
            return protocol.failure("invalid", f"cannot send this job to Modal: {exc}", **host)
        timeout_s = modal_timeout_s(job.limits.timeout_s)
        timeout_cls, auth_cls, connection_cls, modal_error = _modal_errors()
        async with self._slots:
            started = time.monotonic()
            try:
                payload = await self._transport(bundle.model_dump(), gpu, timeout_s, job.limits)
            except timeout_cls:
                wall = time.monotonic() - started
                result = protocol.failure(
                    "timeout", f"Modal stopped the evaluation at its {timeout_s} s function timeout",
                    runtime_s=round(wall, 4), gpu_seconds=round(wall * gpu.gpus, 4), **host)
                return self._priced(result, gpu, job.limits)
            except auth_cls as exc:
                raise SandboxError(f"Modal rejected the credentials ({exc}): run `modal token new`") from exc
            except connection_cls as exc:
                raise SandboxError(
                    f"cannot reach Modal ({exc}): check the network (api.modal.com:443) or use "
                    "--sandbox docker"
                ) from exc
            except modal_error as exc:
                return protocol.failure("error", f"Modal failed to run the evaluation: {exc}", **host)
        return self._priced(self._validated(payload, host), gpu, job.limits)

    @staticmethod
    def _validated(payload: Any, host: dict[str, Any]) -> SandboxResult:
        if not isinstance(payload, dict):
            return protocol.failure("invalid", f"Modal returned a {type(payload).__name__}, not a result", **host)
        try:
            result = SandboxResult.model_validate(payload)
        except ValidationError as exc:
            return protocol.failure("invalid", f"the Modal result failed validation: {exc}", **host)
        return result.model_copy(update={"backend": BACKEND})

    @staticmethod
    def _priced(result: SandboxResult, gpu: GpuRequest, limits: Limits) -> SandboxResult:
        gpu_s = result.gpu_seconds or result.runtime_s * gpu.gpus
        wall = gpu_s / gpu.gpus if gpu.gpus else result.runtime_s
        cost = estimate_cost_usd(gpu, wall, limits.cpus, limits.memory_mb)
        return result.model_copy(update={"gpu_type": gpu.type or "", "gpu_seconds": round(gpu_s, 4),
                                         "cost_usd": cost})

    async def close(self) -> None:
        if self._real is not None:
            await self._real.close()
