"""Per-candidate images: `evoforge/cand-<task>:<candidate id>`, a thin layer on the runtime image
holding the task folder (/task), the candidate (/input), `/manifest.json` (task, base image,
command, stage, seed, recorded metrics, parent) and an ENTRYPOINT that runs the trusted runner.

    docker run --rm --network none evoforge/cand-circle_packing:cand-0190f3a2b4c-1a2b3c4d

prints the result JSON as its last line, without evoforge installed. `reproduce_from_image`
re-runs it under the same hardening as `DockerSandbox` and returns (recorded, reproduced).
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any

import docker.errors

from orchestrator.errors import ImageError, TaskError
from orchestrator.sandbox import images, protocol
from orchestrator.sandbox.base import Limits, SandboxResult
from orchestrator.sandbox.docker import RUNNER_CMD, ContainerSpec, DockerSandbox

#: The runner's own deadline baked into the image; `reproduce_from_image` overrides it.
DEFAULT_TIMEOUT_S = 600.0
_TAG_CHARS = re.compile(r"[^a-z0-9_.-]+")


def candidate_tag(task_name: str, candidate_id: str) -> str:
    """`evoforge/cand-<task>:<id>`, lower-cased, with characters Docker refuses replaced by `-`."""
    repo = _TAG_CHARS.sub("-", f"cand-{task_name}".lower()).strip("-._")
    tag = _TAG_CHARS.sub("-", candidate_id.lower()).lstrip("-.")[:128]
    if not tag:
        raise ImageError(f"candidate id {candidate_id!r} gives an empty image tag: use letters or digits")
    return f"evoforge/{repo}:{tag}"


def _task_limits(task_dir: Path, scale: str | None) -> dict[str, Any]:
    from orchestrator.task import load_task  # noqa: PLC0415 - tasks only matter here

    try:
        res = load_task(task_dir, scale=scale).resources
    except TaskError:
        return {}
    return {"cpus": res.cpus, "memory_mb": res.memory_mb, "pids": res.pids, "scratch_mb": res.scratch_mb,
            "output_kb": res.output_kb, "gpu": res.gpu}


def _task_format(task_dir: Path) -> str:
    """The folder's format (peer folders need the runner's `--format`); evoforge when unknown."""
    from orchestrator.task import load_task  # noqa: PLC0415

    try:
        return load_task(task_dir).spec.format
    except TaskError:
        return "evoforge"


def _copy_readable(src: Path, dst: Path) -> None:
    """Copy a task folder; symlinks stay links (never followed out of the folder), modes 0755/0644."""
    shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".git"))
    for path in [dst, *dst.rglob("*")]:
        if path.is_symlink():
            continue
        path.chmod(0o755 if path.is_dir() else 0o644)


def build_candidate_image(task_dir: Path, task_name: str, candidate_id: str, files: dict[str, str],
                          program: str, stage: str, seed: int, scale: str | None,
                          metrics: dict[str, Any], parent_id: str | None, base_image: str) -> str:
    """Build the candidate's image and return its tag. Raises `ImageError`."""
    tag = candidate_tag(task_name, candidate_id)
    client = images.docker_client(timeout=images.BUILD_TIMEOUT_S)
    try:
        base_id = client.images.get(base_image).id
    except docker.errors.ImageNotFound as exc:
        raise ImageError(f"runtime image {base_image} is missing: run `make images`") from exc
    program_path = "/input/" + str(protocol.safe_relpath(program))
    entry = [*RUNNER_CMD, "--task-dir", "/task", "--program", program_path, "--stage", stage,
             "--seed", str(seed), "--timeout", f"{DEFAULT_TIMEOUT_S:g}"]
    if scale:
        entry += ["--scale", scale]
    task_format = _task_format(Path(task_dir))
    if task_format != "evoforge":
        entry += ["--format", task_format]
    manifest = {
        "task": task_name, "candidate_id": candidate_id, "parent_id": parent_id,
        "base_image": base_image, "base_image_id": base_id, "image": tag,
        "command": f"docker run --rm --network none {tag}", "entrypoint": entry,
        "stage": stage, "seed": seed, "scale": scale, "program": program,
        "metrics": metrics, "score": metrics.get("score"), "limits": _task_limits(Path(task_dir), scale),
    }
    with tempfile.TemporaryDirectory(prefix="evoforge-cand-") as tmp:
        context = Path(tmp)
        _copy_readable(Path(task_dir).resolve(), context / "task")
        try:
            input_dir = protocol.write_inputs(files, program, parent=context)
        except protocol.BadInput as exc:
            raise ImageError(f"candidate {candidate_id}: {exc}") from exc
        input_dir.rename(context / "input")
        (context / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
        (context / "Dockerfile").write_text("\n".join([
            f"FROM {base_image}",
            "COPY task/ /task/",
            "COPY input/ /input/",
            "COPY manifest.json /manifest.json",
            "USER 65534:65534",
            "WORKDIR /scratch",
            f"ENTRYPOINT {json.dumps(entry)}",
            "CMD []",
            "",
        ]))
        labels = {"evoforge.managed": "1", "evoforge.image": "candidate", "evoforge.task": task_name,
                  "evoforge.candidate": candidate_id, "evoforge.manifest": json.dumps(manifest, default=str)}
        try:
            client.images.build(path=str(context), tag=tag, rm=True, forcerm=True, pull=False, labels=labels)
        except (docker.errors.BuildError, docker.errors.APIError) as exc:
            raise ImageError(f"building candidate image {tag} failed: {exc}") from exc
    return tag


def read_manifest(tag: str) -> dict[str, Any]:
    client = images.docker_client()
    try:
        labels = client.images.get(tag).labels or {}
    except docker.errors.ImageNotFound as exc:
        raise ImageError(f"candidate image {tag} is missing: rebuild it with `evolve reproduce <candidate>`") from exc
    try:
        manifest = json.loads(labels["evoforge.manifest"])
    except (KeyError, ValueError) as exc:
        raise ImageError(f"{tag} carries no evoforge manifest: it is not a candidate image") from exc
    if not isinstance(manifest, dict):
        raise ImageError(f"{tag} has a malformed manifest label")
    return manifest


def reproduce_from_image(tag: str, timeout_s: float) -> tuple[dict[str, Any], SandboxResult]:
    """Run the candidate image once under the sandbox hardening. Returns the recorded manifest
    (with `metrics` and `score`) and the reproduced, validated result."""
    manifest = read_manifest(tag)
    recorded_limits = {k: v for k, v in (manifest.get("limits") or {}).items()
                       if k in Limits.__dataclass_fields__}
    limits = Limits(**{**recorded_limits, "timeout_s": float(timeout_s)})
    sandbox = DockerSandbox(gc_on_start=False)
    spec = ContainerSpec(
        image=tag, command=["--timeout", f"{timeout_s:g}",
                            "--max-result-bytes", str(limits.output_kb * 1024)],
        limits=limits, env={},
        labels={"evoforge.run": "reproduce", "evoforge.candidate": str(manifest.get("candidate_id", ""))},
    )
    return manifest, sandbox.run_container(spec, secrets.token_hex(6))
