"""`ModalSandbox`: evaluations in GPU containers on Modal, with the same contract as Docker.

    sandbox = ModalSandbox(gpu="H100", concurrency=8)       # `evolve run --sandbox modal`
    result = await sandbox.run(job)                          # a SandboxResult, as every backend

A job travels as a *bundle* (`make_bundle`): the task folder's files (a few MB at most), the
candidate's files, stage, seed, scale, limits and a nonce. In the container `run_bundle` (the
body of `modal_app.evaluate`) writes them to temporary folders and runs the same trusted runner
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
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator import REPO_ROOT
from orchestrator.errors import SandboxError
from orchestrator.sandbox import protocol
from orchestrator.sandbox.base import Limits, SandboxJob, SandboxResult

BACKEND = "modal"
BUNDLE_VERSION = 1
#: A task folder travels with every job: refuse big ones (datasets belong in the image).
MAX_TASK_BYTES = 8 * 1024 * 1024
#: Never shipped: caches and version-control folders.
_SKIP_PARTS = {"__pycache__", ".git", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
#: Host-side kill after the runner's own deadline (seconds).
KILL_GRACE_S = 10.0
#: Modal's function timeout covers container start too (image load, CUDA init).
STARTUP_GRACE_S = 60.0
#: Modal's timeout is a backstop (our own kill comes first) rounded up to this step, so that
#: the stages of a task share one warm container pool instead of one pool per timeout.
MODAL_TIMEOUT_STEP_S = 300
#: Where the runner lives in the Modal image (`modal_app.image`) and in this checkout.
REMOTE_RUNNER_DIR = "/opt/evoforge/runner"
LOCAL_RUNNER_DIR = REPO_ROOT / "sandbox_images" / "runner"
MODAL_APP_PATH = REPO_ROOT / "modal_app.py"
#: The unprivileged user the runner (and so the candidate) runs as when we are root.
NOBODY = 65534
#: `-I` keeps PYTHONPATH and the working folder off sys.path; the runner folder is added by hand.
_ENTRY = ("import sys, runpy; sys.path.insert(0, sys.argv.pop(1)); "
          "runpy.run_module('evoforge_runner', run_name='__main__', alter_sys=True)")

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


class ModalBundle(BaseModel):
    """One job as it crosses to Modal. Only data: no paths of the host survive the trip."""

    model_config = ConfigDict(extra="forbid")

    version: int = BUNDLE_VERSION
    task_name: str
    task_files: dict[str, bytes]
    files: dict[str, str]
    program: str
    stage: str
    seed: int
    scale: str | None = None
    timeout_s: float = Field(gt=0)
    output_kb: int = Field(ge=1)
    env: dict[str, str] = Field(default_factory=dict)
    nonce: str = Field(min_length=16)
    gpu_type: str | None = None
    gpu_count: int = Field(default=0, ge=0)


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
        timeout_s=job.limits.timeout_s,
        output_kb=job.limits.output_kb,
        env=dict(job.env),
        nonce=nonce or protocol.new_nonce(),
        gpu_type=gpu.type,
        gpu_count=gpu.gpus,
    )


# --- the body of the Modal function (runs in the container, or locally via .local()) --------


def _runner_dir() -> Path:
    remote = Path(os.environ.get("EVOFORGE_RUNNER_DIR", REMOTE_RUNNER_DIR))
    return remote if (remote / "evoforge_runner").is_dir() else LOCAL_RUNNER_DIR


def _gpu_devices_world_usable() -> bool:
    """Dropping to `nobody` must not cost the GPU: /dev/nvidia* has to be world read-write."""
    devices = list(Path("/dev").glob("nvidia*"))
    return all(os.stat(d).st_mode & 0o006 == 0o006 for d in devices if not d.is_dir())


def _reachable_by_others(path: Path) -> bool:
    """Whether a non-owner can execute `path` (every folder above it searchable)."""
    real = path.resolve()
    try:
        return real.stat().st_mode & 0o005 == 0o005 and all(
            d.stat().st_mode & 0o001 for d in real.parents)
    except OSError:
        return False


def _can_drop_privileges(python: str) -> bool:
    """Run the runner as `nobody` when we are root (a Modal container), as the Docker image
    does, unless that would cost the interpreter (a root-only venv) or the GPU."""
    return (os.geteuid() == 0 and _gpu_devices_world_usable()
            and _reachable_by_others(Path(python)))


def _write_task(task_files_: dict[str, bytes], root: Path) -> Path:
    task_dir = root / "task"
    task_dir.mkdir(mode=0o755)
    for name, data in task_files_.items():
        rel = protocol.safe_relpath(name)
        target = task_dir.joinpath(*rel.parts)
        target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(0o644)
    for d in task_dir.rglob("*"):
        if d.is_dir():
            d.chmod(0o755)
    return task_dir


def _tail(path: Path, limit: int) -> str:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - limit))
        return fh.read().decode("utf-8", errors="replace")


def _runner_env(bundle: ModalBundle, scratch: Path, runner_dir: Path) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "HOME": str(scratch),
           "LANG": "C.UTF-8", "TMPDIR": str(scratch), "EVOFORGE_CHILD_PYTHONPATH": str(runner_dir)}
    for key, value in os.environ.items():  # the GPU runtime's variables, nothing else of ours
        if key.startswith(("CUDA_", "NVIDIA_")) or key == "LD_LIBRARY_PATH":
            env[key] = value
    env.update(bundle.env)
    env["EVOFORGE_NONCE"] = bundle.nonce
    return env


def run_bundle(raw: dict[str, Any], python: str | None = None) -> dict[str, Any]:
    """Run one bundle through the trusted runner; return `SandboxResult.model_dump()`.
    `python` is the runner's interpreter (default: this one, as in the Modal image).

    Never raises for the candidate's fault: a bad bundle or a crashed runner is a status.
    """
    from orchestrator.sandbox.process import kill_tree  # noqa: PLC0415 - one tree-killer for all

    started = time.monotonic()
    host: dict[str, Any] = {"backend": BACKEND, "image_id": os.environ.get("MODAL_IMAGE_ID", "local")}
    try:
        bundle = ModalBundle.model_validate(raw)
    except ValidationError as exc:
        return protocol.failure("invalid", f"malformed Modal bundle: {exc}", **host).model_dump(mode="json")
    host["gpu_type"] = bundle.gpu_type or ""
    root = Path(tempfile.mkdtemp(prefix="evoforge-modal-"))
    try:
        root.chmod(0o755)
        try:
            task_dir = _write_task(bundle.task_files, root)
            input_dir = protocol.write_inputs(bundle.files, bundle.program, parent=root)
        except protocol.BadInput as exc:
            return protocol.failure("invalid", str(exc), **host).model_dump(mode="json")
        program = input_dir.joinpath(*protocol.safe_relpath(bundle.program).parts)
        scratch = root / "scratch"
        scratch.mkdir(mode=0o700)
        python = python or sys.executable or "python3"
        drop = _can_drop_privileges(python)
        if drop:
            os.chown(scratch, NOBODY, NOBODY)
        job = SandboxJob(image="modal", task_dir=task_dir, files=bundle.files, program=bundle.program,
                         stage=bundle.stage, seed=bundle.seed, scale=bundle.scale,
                         limits=Limits(timeout_s=bundle.timeout_s, output_kb=bundle.output_kb))
        runner_dir = _runner_dir()
        argv = [python, "-I", "-c", _ENTRY, str(runner_dir),
                *protocol.runner_args(job, str(task_dir), str(program))]
        limit = bundle.output_kb * 1024
        out_path, err_path = root / "runner.stdout", root / "runner.stderr"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(
                argv, cwd=scratch, env=_runner_env(bundle, scratch, runner_dir), stdin=subprocess.DEVNULL,
                stdout=out, stderr=err, start_new_session=True, close_fds=True,
                **({"user": NOBODY, "group": NOBODY, "extra_groups": []} if drop else {}),
            )
            timed_out = False
            try:
                proc.wait(timeout=bundle.timeout_s + KILL_GRACE_S)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                kill_tree(proc.pid)
                proc.wait()
        wall = time.monotonic() - started
        host.update(runtime_s=round(wall, 4), exit_code=proc.returncode,
                    gpu_seconds=round(wall * bundle.gpu_count, 4))
        stderr_text = _tail(err_path, 4000)
        if timed_out:
            result = protocol.failure("timeout", f"killed after {bundle.timeout_s + KILL_GRACE_S:g} s",
                                      stderr_tail=stderr_text, **host)
        else:
            result = protocol.parse_result(_tail(out_path, limit + 4096), bundle.nonce, limit, **host)
            if result.status == "invalid" and "no result line" in result.error:
                result = result.model_copy(update={"stderr_tail": stderr_text})
        return result.model_dump(mode="json")
    finally:
        shutil.rmtree(root, ignore_errors=True)


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
