"""Sandbox backends behind one protocol (`base.Sandbox`): docker (default), process, modal.

    sandbox = make_sandbox("docker")
    result = await sandbox.run(SandboxJob(image="cpu", task_dir=..., files={"program.py": code},
                                          program="program.py", stage="quick", seed=0))
"""

from __future__ import annotations

from typing import Any

from orchestrator.errors import SandboxError
from orchestrator.sandbox.base import Limits, Sandbox, SandboxJob, SandboxResult

SANDBOX_KINDS = ("docker", "process", "modal")

__all__ = ["Limits", "Sandbox", "SandboxJob", "SandboxResult", "SANDBOX_KINDS", "make_sandbox"]


def make_sandbox(kind: str, **opts: Any) -> Sandbox:
    """A sandbox backend by name. `opts` go to the backend's constructor; `settings` (the run's
    `orchestrator.config.Settings`) is accepted and not needed by the local backends."""
    settings = opts.pop("settings", None)
    if kind == "docker":
        from orchestrator.sandbox.docker import DockerSandbox  # noqa: PLC0415 - docker SDK only when used

        return DockerSandbox(**opts)
    if kind == "process":
        from orchestrator.sandbox.process import ProcessSandbox  # noqa: PLC0415

        return ProcessSandbox(**opts)
    if kind == "modal":
        try:
            from orchestrator.sandbox.modal import ModalSandbox  # type: ignore[import-not-found]  # noqa: PLC0415
        except ImportError as exc:
            raise SandboxError(
                "the modal sandbox backend is not available in this build: use --sandbox docker "
                "(or --sandbox process on a machine without Docker)"
            ) from exc
        return ModalSandbox(settings=settings, **opts)
    raise SandboxError(f"unknown sandbox {kind!r}: choose one of {', '.join(SANDBOX_KINDS)}")
