"""`ProcessSandbox`: the same trusted runner as a local subprocess, for machines without Docker.

Explicit opt-in (`--sandbox process`): it does NOT isolate. The candidate can read your files,
reach the network and see other processes; only rlimits (memory, file size, CPU time), a new
session, a private working folder and a wall-clock kill of the whole process tree apply.
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
import warnings
from pathlib import Path

from orchestrator import SANDBOX_IMAGES_DIR
from orchestrator.errors import SandboxError
from orchestrator.sandbox import protocol
from orchestrator.sandbox.base import Limits, SandboxJob, SandboxResult

RUNNER_DIR = SANDBOX_IMAGES_DIR / "runner"
GRACE_S = 3.0
#: `-I` keeps PYTHONPATH and the working folder off sys.path; the runner folder is added by hand.
_ENTRY = ("import sys, runpy; sys.path.insert(0, sys.argv.pop(1)); "
          "runpy.run_module('evoforge_runner', run_name='__main__', alter_sys=True)")
_warned = False


def _warn_once() -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(
            "ProcessSandbox does NOT isolate candidate programs: they run as you, with your files "
            "and network. Use it only for trusted code or on a throwaway machine; prefer --sandbox docker.",
            RuntimeWarning, stacklevel=3,
        )


def _rlimits(limits: Limits) -> None:
    """Runs in the child before exec: bounds memory, written file size and CPU time."""
    memory = limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
    scratch = limits.scratch_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (scratch, scratch))
    cpu = int(limits.timeout_s * max(1.0, limits.cpus)) + 10
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text(errors="replace")
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL `pid`'s descendants (the runner is their subreaper, so orphans are found too),
    its process group, then `pid` itself."""
    for _ in range(5):
        pids = _descendants(pid)
        if not pids:
            break
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    for kill in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            kill()
        except (ProcessLookupError, PermissionError):
            pass


async def _read_tail(stream: asyncio.StreamReader, limit: int) -> bytes:
    """Read a stream to EOF keeping only its last `limit` bytes."""
    buf = bytearray()
    while chunk := await stream.read(65536):
        buf += chunk
        if len(buf) > limit:
            del buf[: len(buf) - limit]
    return bytes(buf)


class ProcessSandbox:
    """Satisfies `orchestrator.sandbox.base.Sandbox` without isolation (see the module doc)."""

    name = "process"

    def __init__(self, python: str | None = None):
        self._python = python or sys.executable
        if not (RUNNER_DIR / "evoforge_runner" / "__main__.py").is_file():
            raise SandboxError(f"the trusted runner is missing under {RUNNER_DIR}: restore sandbox_images/runner")
        _warn_once()

    async def run(self, job: SandboxJob) -> SandboxResult:
        host = {"backend": self.name, "image_id": "process"}
        try:
            task_dir = job.task_dir.resolve(strict=True)
        except OSError as exc:
            raise SandboxError(f"task folder {job.task_dir} is missing: {exc}") from exc
        root = Path(tempfile.mkdtemp(prefix="evoforge-proc-"))
        try:
            try:
                input_dir = protocol.write_inputs(job.files, job.program, parent=root)
            except protocol.BadInput as exc:
                return protocol.failure("invalid", str(exc), **host)
            scratch = root / "scratch"
            scratch.mkdir(mode=0o700)
            program = input_dir.joinpath(*protocol.safe_relpath(job.program).parts)
            return await self._run(job, task_dir, program, scratch, host)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    async def _run(self, job: SandboxJob, task_dir: Path, program: Path, scratch: Path,
                   host: dict[str, object]) -> SandboxResult:
        nonce = protocol.new_nonce()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(scratch), "LANG": "C.UTF-8",
               "TMPDIR": str(scratch), **job.env, "EVOFORGE_NONCE": nonce}
        argv = [self._python, "-I", "-c", _ENTRY, str(RUNNER_DIR),
                *protocol.runner_args(job, str(task_dir), str(program))]
        limit = job.limits.output_kb * 1024
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=scratch, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True, preexec_fn=lambda: _rlimits(job.limits),
        )
        if proc.stdout is None or proc.stderr is None:
            raise SandboxError("the runner subprocess has no stdout/stderr pipes")
        out_task = asyncio.ensure_future(_read_tail(proc.stdout, limit + 4096))
        err_task = asyncio.ensure_future(_read_tail(proc.stderr, 4000))
        timed_out = False
        try:
            await asyncio.wait_for(proc.wait(), job.limits.timeout_s + GRACE_S)
        except TimeoutError:
            timed_out = True
        finally:
            kill_tree(proc.pid)
            await proc.wait()
        try:
            stdout, stderr = await asyncio.wait_for(asyncio.gather(out_task, err_task), 5)
        except TimeoutError:
            out_task.cancel()
            err_task.cancel()
            stdout, stderr = b"", b""
        host.update(runtime_s=round(time.monotonic() - started, 4), exit_code=proc.returncode)
        stderr_text = stderr.decode("utf-8", errors="replace")
        if timed_out:
            return protocol.failure("timeout", f"killed by the host after {job.limits.timeout_s + GRACE_S:g} s",
                                    stderr_tail=stderr_text, **host)
        result = protocol.parse_result(stdout.decode("utf-8", errors="replace"), nonce, limit, **host)
        if result.status == "invalid" and "no result line" in result.error:
            result = result.model_copy(update={"stderr_tail": stderr_text[-4000:]})
        return result

    async def close(self) -> None:
        return None
