"""`evolve doctor`: what is missing and how to fix it.

Each check returns a `Check` with a status (ok, warn, fail), what it found, and the fix.
A `fail` on something the configured run needs makes the command exit non-zero.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from orchestrator.config import Settings


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    found: str
    fix: str = ""


def check_docker(required: bool) -> Check:
    try:
        import docker  # noqa: PLC0415

        client = docker.from_env(timeout=5)
        client.ping()
        version = client.version().get("Version", "?")
        return Check("docker daemon", "ok", f"answers (engine {version})")
    except Exception as exc:
        return Check(
            "docker daemon", "fail" if required else "warn",
            f"not reachable: {exc.__class__.__name__}: {str(exc)[:160]}",
            "run `make docker-engine` (installs docker.io and starts dockerd on Debian as root), "
            "or use `--sandbox process` (no isolation)",
        )


def image_status() -> dict[str, str]:
    """`current`, `stale: ...` (an older build of it exists) or `missing` per logical image."""
    from orchestrator.errors import ImageError  # noqa: PLC0415
    from orchestrator.sandbox.images import docker_client, resolve_image  # noqa: PLC0415

    client = docker_client(timeout=30)
    present = {tag for image in client.images.list(name="evoforge/*") for tag in image.tags}
    statuses = {}
    for name in ("base", "cpu", "cuda"):
        try:
            resolve_image(name, client)
            statuses[name] = "current"
        except ImageError:
            older = sorted(t for t in present if t.startswith(f"evoforge/{name}:"))
            statuses[name] = f"stale: only {older[-1]} is built, sources changed" if older else "missing"
    return statuses


def check_images(required: bool) -> list[Check]:
    try:
        statuses = image_status()
    except Exception as exc:
        return [Check("sandbox images", "fail" if required else "warn", f"cannot inspect: {exc}",
                      "start the daemon first (`make docker-engine`), then `make images`")]
    checks = []
    for name, state in statuses.items():
        if state == "current":
            checks.append(Check(f"image {name}", "ok", "built and current"))
        elif name == "cuda":
            checks.append(Check("image cuda", "warn", f"{state} (needs a registry and a GPU host)",
                                "build on a GPU host that reaches a registry: `evolve images build cuda`"))
        else:
            checks.append(Check(
                f"image {name}", "fail" if required else "warn", state,
                "run `make images` (or `evolve images build`)",
            ))
    return checks


def check_store(settings: Settings) -> Check:
    path = Path(settings.store)
    parent = path.parent if not path.exists() else path
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK):
        return Check("cognition store", "fail", f"{path}: {probe} is not writable",
                     "set `store:` in evoforge.yaml or EVOFORGE_STORE to a writable path")
    if not path.exists():
        return Check("cognition store", "ok", f"{path} (will be created on first run)")
    try:
        from cognition.store import CognitionStore  # noqa: PLC0415

        store = CognitionStore.open(path, readonly=True)
        stats = store.stats()
        return Check("cognition store", "ok", f"{path}: {stats}")
    except Exception as exc:
        return Check("cognition store", "fail", f"{path}: {exc}",
                     "move it aside, or restore a backup (`evolve store backup` makes one)")


def check_llm(settings: Settings) -> Check:
    mode = settings.llm.mode
    if mode == "offline":
        return Check("llm", "ok", "offline: the Researcher mutates programs WITHOUT an LLM",
                     "to use a model: --llm MODEL with OPENAI_API_KEY, or OPENAI_BASE_URL for vLLM/sglang/Ollama")
    if mode.startswith("replay:"):
        return Check("llm", "ok", f"replaying recorded calls of run {mode[7:]}")
    endpoint = settings.llm.base_url or "https://api.openai.com/v1"
    if settings.llm.api_key is None and settings.llm.base_url is None:
        return Check("llm", "fail", f"model {mode} but no OPENAI_API_KEY and no OPENAI_BASE_URL",
                     "export OPENAI_API_KEY=... (OpenAI) or OPENAI_BASE_URL=http://host:port/v1")
    return Check("llm", "ok", f"model {mode} at {endpoint}")


def check_modal() -> Check:
    if importlib.util.find_spec("modal") is None:
        return Check("modal", "warn", "package not installed", "pip install modal")
    has_token = bool(os.environ.get("MODAL_TOKEN_ID")) or (Path.home() / ".modal.toml").is_file()
    if has_token:
        return Check("modal", "ok", "installed, credentials present")
    return Check("modal", "warn", "installed, no credentials (needed only for --sandbox modal)",
                 "run `modal token new`")


def check_torch() -> Check:
    try:
        import torch  # noqa: PLC0415
    except ImportError:
        return Check("torch", "warn", "not installed on the host (needed only for --sandbox process)",
                     "pip install torch==2.13.0")
    if not torch.__version__.startswith("2.13.0"):
        return Check("torch", "warn", f"{torch.__version__}, expected 2.13.0", "pip install torch==2.13.0")
    return Check("torch", "ok", torch.__version__)


def check_host_tools() -> Check:
    if shutil.which("debootstrap") or Path("/usr/sbin/debootstrap").exists():
        return Check("debootstrap", "ok", "present (offline base-image bootstrap)")
    return Check("debootstrap", "warn", "missing: the base image cannot be bootstrapped without a registry",
                 "apt-get install debootstrap (`make images` does it on Debian as root)")


def run_checks(settings: Settings) -> list[Check]:
    docker_needed = settings.sandbox.backend == "docker"
    checks = [check_docker(docker_needed)]
    if checks[0].status == "ok":
        checks += check_images(docker_needed)
    checks += [check_host_tools(), check_store(settings), check_llm(settings), check_modal(), check_torch()]
    return checks
