"""The body of the Modal evaluation function: one bundle through the trusted runner.

It runs inside the Modal container (and on this machine through `Function.local()`), so it
imports only what the image has: the standard library, pydantic and `orchestrator.sandbox`'s
protocol. The bundle is written to temporary folders, the runner runs as `nobody` when we are
root (as in the Docker image), its process tree is killed KILL_GRACE_S after its own deadline,
and its result line is parsed by the shared `protocol.parse_result`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator import REPO_ROOT
from orchestrator.sandbox import protocol
from orchestrator.sandbox.base import Limits, SandboxJob

BACKEND = "modal"
BUNDLE_VERSION = 1
#: Host-side kill after the runner's own deadline (seconds).
KILL_GRACE_S = 10.0
#: Where the runner lives in the Modal image (`modal_app.image`) and in this checkout.
REMOTE_RUNNER_DIR = "/opt/evoforge/runner"
LOCAL_RUNNER_DIR = REPO_ROOT / "sandbox_images" / "runner"
#: The unprivileged user the runner (and so the candidate) runs as when we are root.
NOBODY = 65534
#: `-I` keeps PYTHONPATH and the working folder off sys.path; the runner folder is added by hand.
_ENTRY = ("import sys, runpy; sys.path.insert(0, sys.argv.pop(1)); "
          "runpy.run_module('evoforge_runner', run_name='__main__', alter_sys=True)")


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
    format: str = "evoforge"  # task folder format: the runner's --format
    timeout_s: float = Field(gt=0)
    output_kb: int = Field(ge=1)
    env: dict[str, str] = Field(default_factory=dict)
    nonce: str = Field(min_length=16)
    gpu_type: str | None = None
    gpu_count: int = Field(default=0, ge=0)


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
                         stage=bundle.stage, seed=bundle.seed, scale=bundle.scale, format=bundle.format,
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
