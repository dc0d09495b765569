"""`DockerSandbox`: one fresh, hardened container per evaluation, on the local Docker engine.

The container has no network, a read-only root, tmpfs /scratch and /tmp, memory == memory+swap,
a CPU quota, a pids limit, no capabilities, no-new-privileges, user nobody and bounded logs.
The task folder and the candidate files are bind-mounted read-only (/task, /input). The host
enforces the wall clock with its own timer and `kill` (docker-py's wait timeout is only an HTTP
timeout). Per job: create, start, wait, logs, remove; an inspect only when no result came back.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors
import requests.exceptions
from docker.types import DeviceRequest, LogConfig

from orchestrator.errors import ImageError, SandboxError
from orchestrator.sandbox import images, protocol
from orchestrator.sandbox.base import Limits, SandboxJob, SandboxResult

#: Seconds the runner gets past its own deadline (it reports `timeout` itself) before the kill.
GRACE_S = 3.0
USER = "65534:65534"
RUNNER_CMD = ["python3", "-I", "-m", "evoforge_runner"]
_LOST = (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)


@dataclass(frozen=True)
class ContainerSpec:
    """One container to run under the sandbox hardening (shared with candidate images)."""

    image: str
    command: list[str] | None
    limits: Limits
    env: dict[str, str]
    labels: dict[str, str]
    binds: dict[str, dict[str, str]] = field(default_factory=dict)


def _tmpfs(limits: Limits) -> dict[str, str]:
    exec_flag = "exec" if limits.gpu else "noexec"  # GPU stacks JIT-compile into /tmp
    opts = f"rw,nosuid,nodev,{exec_flag}"
    return {
        "/scratch": f"{opts},size={limits.scratch_mb}m,mode=1777",
        "/tmp": f"{opts},size={max(16, limits.scratch_mb // 4)}m,mode=1777",
    }


def _log_tail_entries(limits: Limits) -> int:
    # The daemon splits long lines into 16 KiB entries; `tail` counts entries, not lines.
    return limits.output_kb // 16 + 16


class DockerSandbox:
    """Satisfies `orchestrator.sandbox.base.Sandbox`. `run` never raises for a candidate's
    fault; it raises `SandboxError` when the engine or the image is unusable."""

    name = "docker"

    def __init__(self, client: docker.DockerClient | None = None, *, gc_on_start: bool = True):
        try:
            self._client = client or images.docker_client(timeout=60)
        except ImageError as exc:
            raise SandboxError(str(exc)) from exc
        self._api = self._client.api
        self._owner = secrets.token_hex(6)
        self._tags: dict[str, str] = {}
        self._gpu_runtime: bool | None = None
        self._live: dict[str, str] = {}  # job token -> container id
        self._lock = threading.Lock()
        if gc_on_start:
            self.gc()

    # -- public ------------------------------------------------------------------------------

    async def run(self, job: SandboxJob) -> SandboxResult:
        token = secrets.token_hex(6)
        try:
            return await asyncio.to_thread(self.run_blocking, job, token)
        except asyncio.CancelledError:
            self._kill_token(token)
            raise

    def run_blocking(self, job: SandboxJob, token: str | None = None) -> SandboxResult:
        host = {"backend": self.name}
        try:
            task_dir = job.task_dir.resolve(strict=True)
        except OSError as exc:
            raise SandboxError(f"task folder {job.task_dir} is missing: {exc}") from exc
        tag = self.image_tag(job.image)
        try:
            input_dir = protocol.write_inputs(job.files, job.program)
        except protocol.BadInput as exc:
            return protocol.failure("invalid", str(exc), image_id=tag, **host)
        try:
            program = "/input/" + str(protocol.safe_relpath(job.program))
            command = RUNNER_CMD + protocol.runner_args(job, "/task", program)
            spec = ContainerSpec(
                image=tag,
                command=command,
                limits=job.limits,
                env=dict(job.env),
                labels={"evoforge.run": job.run_id, "evoforge.candidate": job.candidate_id},
                binds={str(task_dir): {"bind": "/task", "mode": "ro"},
                       str(input_dir): {"bind": "/input", "mode": "ro"}},
            )
            return self.run_container(spec, token or secrets.token_hex(6))
        finally:
            shutil.rmtree(input_dir, ignore_errors=True)

    def image_tag(self, name: str) -> str:
        """The tag of a logical image name, resolved once per sandbox (no inspect per job)."""
        if name not in self._tags:
            try:
                self._tags[name] = images.resolve_image(name, self._client)
            except ImageError:
                raise
            except docker.errors.DockerException as exc:
                raise SandboxError(f"docker daemon not usable ({exc}): run `make docker-engine`") from exc
        return self._tags[name]

    def run_container(self, spec: ContainerSpec, token: str) -> SandboxResult:
        """Create, start, wait (host timer kills at the deadline), read the bounded log tail,
        remove. Returns a validated result; `lost` when the daemon goes away mid-job."""
        limits = spec.limits
        nonce = protocol.new_nonce()
        host: dict[str, Any] = {"backend": self.name, "image_id": spec.image}
        started = time.monotonic()
        try:
            cid = self._create(spec, nonce)
        except _LOST as exc:
            return protocol.failure("lost", f"docker daemon lost while creating the container: {exc}", **host)
        with self._lock:
            self._live[token] = cid
        timed_out = threading.Event()

        def _kill() -> None:
            timed_out.set()
            try:
                self._api.kill(cid)
            except (docker.errors.DockerException, *_LOST):
                pass

        timer = threading.Timer(limits.timeout_s + GRACE_S, _kill)
        try:
            self._api.start(cid)
            timer.start()
            status = self._api.wait(cid, timeout=limits.timeout_s + GRACE_S + 60)
            timer.cancel()
            host["runtime_s"] = round(time.monotonic() - started, 4)
            host["exit_code"] = int(status.get("StatusCode", -1))
            if timed_out.is_set():
                return protocol.failure(
                    "timeout", f"killed by the host after {limits.timeout_s + GRACE_S:g} s",
                    stderr_tail=self._log_text(cid, stdout=False, tail=40), **host)
            stdout = self._log_text(cid, stdout=True, tail=_log_tail_entries(limits))
            result = protocol.parse_result(stdout, nonce, limits.output_kb * 1024, **host)
            if result.status == "invalid" and "no result line" in result.error:
                if self._oom_killed(cid):
                    return protocol.failure("oom", f"container ran out of memory ({limits.memory_mb} MB)", **host)
                result = result.model_copy(update={"stderr_tail": self._log_text(cid, stdout=False, tail=40)})
            return result
        except _LOST as exc:
            return protocol.failure("lost", f"docker daemon lost during the job: {exc}", **host)
        except docker.errors.APIError as exc:
            if exc.status_code is not None and exc.status_code >= 500 and "No such container" not in str(exc):
                return protocol.failure("lost", f"docker daemon failed during the job: {exc}", **host)
            return protocol.failure("lost", f"container vanished during the job: {exc}", **host)
        finally:
            timer.cancel()
            with self._lock:
                self._live.pop(token, None)
            try:
                self._api.remove_container(cid, force=True)
            except (docker.errors.DockerException, *_LOST):
                pass

    def gc(self, run_id: str | None = None) -> int:
        """Remove leftover sandbox containers: of `run_id` (any state), or when None every
        managed container that is not running (other sandboxes may share the engine)."""
        filters: dict[str, Any] = {"label": ["evoforge.managed=1"]}
        if run_id is not None:
            filters["label"].append(f"evoforge.run={run_id}")
        else:
            filters["status"] = ["created", "exited", "dead"]
        removed = 0
        for container in self._api.containers(all=True, filters=filters):
            try:
                self._api.remove_container(container["Id"], force=True)
                removed += 1
            except docker.errors.DockerException:
                pass
        return removed

    async def close(self) -> None:
        """Remove every container this sandbox started that is still around."""
        def _sweep() -> None:
            filters = {"label": ["evoforge.managed=1", f"evoforge.owner={self._owner}"]}
            try:
                for container in self._api.containers(all=True, filters=filters):
                    self._api.remove_container(container["Id"], force=True)
            except (docker.errors.DockerException, *_LOST):
                pass

        await asyncio.to_thread(_sweep)

    # -- internals ---------------------------------------------------------------------------

    def _create(self, spec: ContainerSpec, nonce: str) -> str:
        limits = spec.limits
        host_config = self._api.create_host_config(
            binds=spec.binds,
            network_mode="none",
            read_only=True,
            tmpfs=_tmpfs(limits),
            mem_limit=f"{limits.memory_mb}m",
            memswap_limit=f"{limits.memory_mb}m",
            nano_cpus=int(limits.cpus * 1e9),
            pids_limit=limits.pids,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            log_config=LogConfig(type="json-file", config={"max-size": f"{max(64, limits.output_kb * 2)}k",
                                                          "max-file": "1"}),
            ulimits=[docker.types.Ulimit(name="core", soft=0, hard=0)],
            device_requests=self._gpus(limits),
        )
        labels = {**spec.labels, "evoforge.managed": "1", "evoforge.owner": self._owner}
        env = {**spec.env, "EVOFORGE_NONCE": nonce}
        try:
            created = self._api.create_container(
                spec.image, command=spec.command, user=USER, environment=env, labels=labels,
                host_config=host_config, network_disabled=True, working_dir="/scratch",
            )
        except docker.errors.ImageNotFound as exc:
            self._tags.clear()
            raise SandboxError(f"image {spec.image} vanished: run `make images`") from exc
        except docker.errors.APIError as exc:
            raise SandboxError(f"docker could not create the sandbox container: {exc}") from exc
        return created["Id"]

    def _gpus(self, limits: Limits) -> list[DeviceRequest] | None:
        if not limits.gpu:
            return None
        if self._gpu_runtime is None:
            runtimes = self._client.info().get("Runtimes", {})
            self._gpu_runtime = "nvidia" in runtimes or bool(os.environ.get("EVOFORGE_ASSUME_GPU"))
        if not self._gpu_runtime:
            raise SandboxError(f"the task asks for {limits.gpu} GPU(s) but this docker engine has no nvidia runtime: "
                               "install nvidia-container-toolkit, or run the task with --sandbox modal")
        return [DeviceRequest(count=limits.gpu, capabilities=[["gpu"]])]

    def _log_text(self, cid: str, *, stdout: bool, tail: int) -> str:
        """The last `tail` log entries of one stream. Straight to the endpoint: `APIClient.logs`
        inspects the container first (for its tty flag) and ours never has a tty."""
        params = {"stdout": int(stdout), "stderr": int(not stdout), "tail": tail, "timestamps": 0, "follow": 0}
        try:
            res = self._api._get(self._api._url("/containers/{0}/logs", cid), params=params)
            self._api._raise_for_status(res)
            raw = b"".join(self._api._multiplexed_buffer_helper(res))
        except AttributeError:  # a docker SDK without these internals
            raw = self._api.logs(cid, stdout=stdout, stderr=not stdout, tail=tail)
        return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)

    def _oom_killed(self, cid: str) -> bool:
        try:
            return bool(self._api.inspect_container(cid)["State"].get("OOMKilled"))
        except (docker.errors.DockerException, KeyError):
            return False

    def _kill_token(self, token: str) -> None:
        with self._lock:
            cid = self._live.get(token)
        if cid:
            try:
                self._api.kill(cid)
            except (docker.errors.DockerException, *_LOST):
                pass
