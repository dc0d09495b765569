"""Derived sandbox images for task folders that ship a `requirements.txt` (peer formats).

    evoforge/cpu-req:<hash>   evoforge/cpu:<hash> + the folder's requirements, installed on the
                              host from the wheelhouse (offline) under the cpu image's pins

The hash covers the cpu tag and the requirements text, so an unchanged folder reuses its image
and a runner or environment change rebuilds it. Requirements are resolved with the cpu image's
`requirements.txt` as constraints (a folder cannot silently swap numpy under the runner), and
packages the cpu image already has are not copied twice. A requirement that cannot be met
raises `ImageError` naming the file and the fix, before any evaluation runs.

A task selects this with `image: "requirements:<absolute path of requirements.txt>"`, which
`orchestrator.peer_formats` sets and `images.resolve_image` hands to `derived_image()`.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import docker

from orchestrator import SANDBOX_IMAGES_DIR
from orchestrator.errors import ImageError
from orchestrator.sandbox import images

REPO = "evoforge/cpu-req"
_DOCKERFILE = """\
# A task folder's requirements on top of the cpu sandbox image; built by
# orchestrator.sandbox.derived_image from pip-installed wheels (no network).
ARG FROM_IMAGE
FROM ${FROM_IMAGE}
ARG SITE_DIR
COPY site/ ${SITE_DIR}/
"""


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pinned_names(requirements: Path) -> set[str]:
    names = set()
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(_normalise(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0]))
    return names


def derived_tag(requirements: Path, cpu_tag: str) -> str:
    return f"{REPO}:{images._digest([cpu_tag, requirements.read_bytes()])}"


def _combined_requirements(requirements: Path, cpu_requirements: Path) -> Path:
    """The folder's requirements constrained by the cpu pins, in a content-named cache file."""
    body = (f"# evoforge: {requirements}\n# cpu pins {images._digest([cpu_requirements.read_bytes()])}\n"
            f"-c {cpu_requirements}\n{requirements.read_text()}\n")
    images.CACHE_DIR.mkdir(parents=True, exist_ok=True)
    path = images.CACHE_DIR / f"requirements-{images._digest([body])}.txt"
    if not path.is_file():
        path.write_text(body)
    return path


def _duplicates(site: Path, present: set[str]) -> set[Path]:
    """Files (relative to `site`) of distributions the cpu image already holds."""
    skip: set[Path] = set()
    for info in site.glob("*.dist-info"):
        name = info.name[: -len(".dist-info")].rsplit("-", 1)[0]
        if _normalise(name) not in present:
            continue
        record = info / "RECORD"
        if record.is_file():
            for line in record.read_text().splitlines():
                rel = line.split(",", 1)[0]
                if rel and not rel.startswith(("/", "..")):
                    skip.add(Path(rel))
        skip.update(p.relative_to(site) for p in info.rglob("*"))
    return skip


def _stage_site(site: Path, dst: Path, skip: set[Path]) -> int:
    copied = 0
    for path in sorted(site.rglob("*")):
        rel = path.relative_to(site)
        if path.is_dir() or rel in skip or "__pycache__" in rel.parts:
            continue
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)
        copied += 1
    return copied


def derived_image(requirements: Path, client: docker.DockerClient | None = None) -> str:
    """The tag of the cpu image plus `requirements`, built when missing. Raises `ImageError`."""
    requirements = Path(requirements)
    if not requirements.is_file():
        raise ImageError(f"{requirements} is missing: restore it, or delete the folder's reference to it")
    client = client or images.docker_client(timeout=images.BUILD_TIMEOUT_S)
    base = images.resolve_image("cpu", client)
    tag = derived_tag(requirements, base)
    if images._exists(client, tag):
        return tag
    started = time.monotonic()
    cpu_requirements = SANDBOX_IMAGES_DIR / "cpu" / "requirements.txt"
    combined = _combined_requirements(requirements, cpu_requirements)
    try:
        site = images.site_dir(combined)
    except ImageError as exc:
        raise ImageError(
            f"the requirements of {requirements.parent.name} ({requirements}) cannot be met offline from the "
            f"wheelhouse {images.wheelhouse_dir()} under the sandbox pins ({cpu_requirements}): {exc}\n"
            f"add the wheels with `pip download -d {images.wheelhouse_dir()} -r {requirements}`, "
            "or drop or re-pin the requirement") from exc
    current = images.current_base(client)
    site_path = images._SITE_DIRS["pulled" if current == images.pulled_base_tag() else "bootstrap"]
    images.CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ctx-cpu-req-", dir=images.CACHE_DIR) as tmp:
        context = Path(tmp)
        (context / "Dockerfile").write_text(_DOCKERFILE)
        (context / "site").mkdir()
        _stage_site(site, context / "site", _duplicates(site, _pinned_names(cpu_requirements)))
        images._docker_build(client, context, tag, "cpu-req", {"FROM_IMAGE": base, "SITE_DIR": site_path})
    images._known.discard(tag)
    from orchestrator.log import get_logger  # noqa: PLC0415

    get_logger("evoforge.images").info("derived image built", tag=tag, requirements=str(requirements),
                                       seconds=round(time.monotonic() - started, 1))
    return tag
