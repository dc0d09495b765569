"""Sandbox images: content-hashed tags, offline builds, and resolving a logical name to a tag.

    evoforge/base:<hash>   Debian bookworm + python3, bootstrapped with debootstrap and imported
                           (or python:3.11-slim-bookworm when a registry answers within seconds)
    evoforge/cpu-env:<hash> base + pinned wheels installed on the host from .evoforge/wheelhouse
    evoforge/cpu:<hash>    cpu-env + the trusted runner (sandbox_images/runner): seconds to rebuild
    evoforge/cuda:<hash>   sandbox_images/cuda/Dockerfile; needs a registry, skipped offline

Each tag hashes everything that goes into the image, so `build_images()` rebuilds only what
changed; `python -m orchestrator.sandbox.images build` is what `make images` runs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import docker
import docker.errors

from orchestrator import REPO_ROOT, SANDBOX_IMAGES_DIR
from orchestrator.errors import ImageError

IMAGE_NAMES = ("base", "cpu", "cuda")
BASE_SUITE = "bookworm"
BASE_PACKAGES = "python3,ca-certificates"
PULLED_BASE = "python:3.11-slim-bookworm"
#: Seconds a registry gets to answer before the base is bootstrapped instead.
PULL_TIMEOUT_S = 8.0
CACHE_DIR = REPO_ROOT / ".evoforge" / "cache"
BUILD_TIMEOUT_S = 900
_FIX = "run `make images` (or `evolve images build`)"
_SITE_DIRS = {
    "bootstrap": "/usr/local/lib/python3.11/dist-packages",  # Debian python3: on sys.path, even with -I
    "pulled": "/usr/local/lib/python3.11/site-packages",
}

Action = Literal["built", "skipped", "unavailable"]


@dataclass(frozen=True)
class BuildReport:
    image: str
    tag: str
    action: Action
    seconds: float
    detail: str = ""

    def line(self) -> str:
        extra = f": {self.detail}" if self.detail else ""
        return f"{self.image:<5} {self.action:<11} {self.tag} ({self.seconds:.1f} s){extra}"


def wheelhouse_dir() -> Path:
    return Path(os.environ.get("EVOFORGE_WHEELHOUSE", REPO_ROOT / ".evoforge" / "wheelhouse"))


def _offline() -> bool:
    return os.environ.get("EVOFORGE_OFFLINE", "") not in ("", "0")


def _digest(parts: Iterable[bytes | str]) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()[:12]


def _tree_parts(folder: Path) -> list[bytes | str]:
    parts: list[bytes | str] = []
    for path in sorted(folder.rglob("*")):
        if "__pycache__" in path.parts or path.suffix == ".pyc" or not path.is_file():
            continue
        parts += [str(path.relative_to(folder)), path.read_bytes()]
    return parts


def base_tag(images_dir: Path = SANDBOX_IMAGES_DIR) -> str:
    """Tag of the bootstrapped base: the bootstrap script, suite and package list."""
    script = (images_dir / "base" / "bootstrap.sh").read_bytes()
    return f"evoforge/base:{_digest([script, BASE_SUITE, BASE_PACKAGES])}"


def pulled_base_tag() -> str:
    return f"evoforge/base:py-{_digest([PULLED_BASE])}"


def cpu_env_tag(base: str, images_dir: Path = SANDBOX_IMAGES_DIR) -> str:
    folder = images_dir / "cpu"
    parts = [(folder / "Dockerfile").read_bytes(), (folder / "requirements.txt").read_bytes(), base]
    return f"evoforge/cpu-env:{_digest(parts)}"


def cpu_tag(base: str, images_dir: Path = SANDBOX_IMAGES_DIR) -> str:
    env = cpu_env_tag(base, images_dir)
    return f"evoforge/cpu:{_digest([env, *_tree_parts(images_dir / 'runner')])}"


def cuda_tag(images_dir: Path = SANDBOX_IMAGES_DIR) -> str:
    folder = images_dir / "cuda"
    parts = [(folder / "Dockerfile").read_bytes(), (folder / "requirements.txt").read_bytes()]
    return f"evoforge/cuda:{_digest(parts + _tree_parts(images_dir / 'runner'))}"


def docker_client(timeout: int = 120) -> docker.DockerClient:
    """A client for the local engine, or `ImageError` that says how to start one."""
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except docker.errors.DockerException as exc:
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise ImageError(f"docker daemon not reachable at {host} ({exc}): run `make docker-engine`") from exc
    return client


_known: set[str] = set()


def _exists(client: docker.DockerClient, tag: str) -> bool:
    if tag in _known:
        return True
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    _known.add(tag)
    return True


def current_base(client: docker.DockerClient) -> str | None:
    """The base tag present locally (bootstrapped preferred), or None."""
    for tag in (base_tag(), pulled_base_tag()):
        if _exists(client, tag):
            return tag
    return None


def resolve_image(name: str, client: docker.DockerClient | None = None) -> str:
    """The current tag of a logical image name ("cpu"); a full reference (`repo:tag`) is
    checked and returned as it is. Raises `ImageError` naming the fix when it is not built."""
    client = client or docker_client()
    if name == "base":
        tag = current_base(client)
        if tag is None:
            raise ImageError(f"no evoforge base image is built: {_FIX}")
        return tag
    if name == "cpu":
        base = current_base(client)
        if base is None:
            raise ImageError(f"image 'cpu' is not built (no base image yet): {_FIX}")
        tag = cpu_tag(base)
    elif name == "cuda":
        tag = cuda_tag()
    elif name.startswith("requirements:"):  # a task folder's requirements.txt on top of cpu
        from orchestrator.sandbox.derived_image import derived_image  # noqa: PLC0415

        return derived_image(Path(name.split(":", 1)[1]), client)
    elif ":" in name or "/" in name:
        tag = name
    else:
        raise ImageError(f"unknown sandbox image {name!r}: use one of {', '.join(IMAGE_NAMES)} or a full image reference")
    if not _exists(client, tag):
        hint = " (the cuda image needs a host that reaches a registry)" if name == "cuda" else ""
        raise ImageError(f"image {name!r} is not built ({tag} missing){hint}: {_FIX}")
    return tag


def _try_pull(client: docker.DockerClient) -> bool:
    """Pull the slim python base, time-boxed: a registry that does not answer fast is absent."""
    if _offline() or shutil.which("docker") is None:
        return False
    try:
        done = subprocess.run(["docker", "pull", "-q", PULLED_BASE], capture_output=True, timeout=PULL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return False
    if done.returncode != 0:
        return False
    client.images.get(PULLED_BASE).tag(pulled_base_tag())
    return True


def _bootstrap_base(client: docker.DockerClient, tag: str) -> None:
    if shutil.which("debootstrap") is None:
        raise ImageError("cannot bootstrap the base image: `debootstrap` is missing: run `apt-get install -y debootstrap`")
    if os.geteuid() != 0:
        raise ImageError("cannot bootstrap the base image: debootstrap needs root: run `sudo make images`")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tar_path = CACHE_DIR / f"base-{tag.split(':')[1]}.tar"
    script = SANDBOX_IMAGES_DIR / "base" / "bootstrap.sh"
    mirror = os.environ.get("EVOFORGE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
    try:
        done = subprocess.run(["bash", str(script), str(tar_path), BASE_SUITE, BASE_PACKAGES, mirror],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise ImageError(f"debootstrap of the base image failed (exit {done.returncode}): "
                             f"{done.stderr[-1500:]}\nfix the mirror (EVOFORGE_DEBIAN_MIRROR) or network and rerun `make images`")
        repo, _, version = tag.partition(":")
        client.api.import_image_from_file(
            str(tar_path), repository=repo, tag=version,
            changes=["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                     "ENV LANG=C.UTF-8", 'CMD ["python3"]'],
        )
    finally:
        tar_path.unlink(missing_ok=True)


def _build_base(client: docker.DockerClient, force: bool) -> BuildReport:
    started = time.monotonic()
    existing = current_base(client)
    if existing and not force:
        return BuildReport("base", existing, "skipped", time.monotonic() - started, "up to date")
    if _try_pull(client):
        return BuildReport("base", pulled_base_tag(), "built", time.monotonic() - started, f"pulled {PULLED_BASE}")
    tag = base_tag()
    _bootstrap_base(client, tag)
    _known.discard(tag)
    return BuildReport("base", tag, "built", time.monotonic() - started, "bootstrapped with debootstrap")


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True)


def site_dir(requirements: Path) -> Path:
    """The pinned packages installed into a folder on the host (cached by requirements hash).
    Fills the wheelhouse from PyPI first when it lacks a wheel."""
    key = _digest([requirements.read_bytes()])
    target = CACHE_DIR / f"site-{key}"
    marker = CACHE_DIR / f"site-{key}.complete"
    if marker.is_file() and target.is_dir():
        return target
    wheels = wheelhouse_dir()
    wheels.mkdir(parents=True, exist_ok=True)
    staging = CACHE_DIR / f"site-{key}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    install = ("install", "--no-index", "--find-links", str(wheels), "--only-binary=:all:",
               "--target", str(staging), "-r", str(requirements))
    done = _pip(*install)
    if done.returncode != 0 and _offline():
        raise ImageError(f"installing {requirements} from {wheels} failed and EVOFORGE_OFFLINE=1 forbids PyPI: "
                         f"{done.stderr[-1500:]}")
    if done.returncode != 0:
        fetched = _pip("download", "-d", str(wheels), "--only-binary=:all:", "-r", str(requirements))
        if fetched.returncode != 0:
            raise ImageError(f"cannot fill the wheelhouse {wheels}: {fetched.stderr[-1500:]}\n"
                             f"run `pip download -d {wheels} -r {requirements}` where PyPI is reachable")
        shutil.rmtree(staging, ignore_errors=True)
        done = _pip(*install)
        if done.returncode != 0:
            raise ImageError(f"installing {requirements} from {wheels} failed: {done.stderr[-1500:]}")
    shutil.rmtree(staging / "bin", ignore_errors=True)  # console scripts are not used in the sandbox
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    marker.touch()
    return target


def _link_tree(src: Path, dst: Path) -> None:
    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    shutil.copytree(src, dst, copy_function=link, symlinks=True)


def _docker_build(client: docker.DockerClient, context: Path, tag: str, name: str,
                  buildargs: dict[str, str] | None = None) -> None:
    try:
        client.images.build(path=str(context), tag=tag, buildargs=buildargs or {}, rm=True, forcerm=True,
                            pull=False, timeout=BUILD_TIMEOUT_S,
                            labels={"evoforge.image": name, "evoforge.managed": "1"})
    except docker.errors.BuildError as exc:
        tail = "".join(str(c.get("stream", c.get("error", ""))) for c in exc.build_log)[-2000:]
        raise ImageError(f"building {tag} failed: {exc.msg}\n{tail}") from exc
    except docker.errors.APIError as exc:
        raise ImageError(f"building {tag} failed: {exc}") from exc


def _copy_runner(dst: Path) -> None:
    """The runner sources plus fresh .pyc files: the image's root is read-only at run time."""
    shutil.copytree(SANDBOX_IMAGES_DIR / "runner", dst,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # Same 3.11 bytecode as the image's python3; checked against the source mtime COPY keeps.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(dst)], check=False, capture_output=True)


def _build_cpu(client: docker.DockerClient, force: bool) -> BuildReport:
    started = time.monotonic()
    base = current_base(client)
    if base is None:
        raise ImageError(f"cannot build 'cpu': no base image: {_FIX}")
    tag = cpu_tag(base)
    if not force and _exists(client, tag):
        return BuildReport("cpu", tag, "skipped", time.monotonic() - started, "up to date")
    folder = SANDBOX_IMAGES_DIR / "cpu"
    site_path = _SITE_DIRS["pulled" if base == pulled_base_tag() else "bootstrap"]
    env = cpu_env_tag(base)
    if force or not _exists(client, env):
        site = site_dir(folder / "requirements.txt")
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="ctx-cpu-", dir=CACHE_DIR) as tmp:
            context = Path(tmp)
            shutil.copy2(folder / "Dockerfile", context / "Dockerfile")
            _link_tree(site, context / "site")
            _docker_build(client, context, env, "cpu-env", {"BASE": base, "SITE_DIR": site_path})
        _known.discard(env)
    with tempfile.TemporaryDirectory(prefix="ctx-runner-") as tmp:
        context = Path(tmp) / "runner"
        _copy_runner(context)
        _docker_build(client, context, tag, "cpu", {"ENV": env, "SITE_DIR": site_path})
    _known.discard(tag)
    return BuildReport("cpu", tag, "built", time.monotonic() - started, f"from {env}")


def _build_cuda(client: docker.DockerClient, force: bool) -> BuildReport:
    started = time.monotonic()
    tag = cuda_tag()
    if not force and _exists(client, tag):
        return BuildReport("cuda", tag, "skipped", time.monotonic() - started, "up to date")
    folder = SANDBOX_IMAGES_DIR / "cuda"
    from_ref = next(line.split()[1] for line in (folder / "Dockerfile").read_text().splitlines()
                    if line.startswith("FROM "))
    if not _exists(client, from_ref) and _offline():
        return BuildReport("cuda", tag, "unavailable", time.monotonic() - started,
                           f"{from_ref} is not local and EVOFORGE_OFFLINE=1: build it on a host with a registry")
    if not _exists(client, from_ref):
        try:
            pulled = subprocess.run(["docker", "pull", "-q", from_ref], capture_output=True, timeout=PULL_TIMEOUT_S)
            ok = pulled.returncode == 0
        except (subprocess.TimeoutExpired, FileNotFoundError):
            ok = False
        if not ok:
            return BuildReport("cuda", tag, "unavailable", time.monotonic() - started,
                               f"{from_ref} cannot be pulled (no registry): build it on a host with a registry")
    with tempfile.TemporaryDirectory(prefix="ctx-cuda-") as tmp:
        context = Path(tmp)
        shutil.copy2(folder / "Dockerfile", context / "Dockerfile")
        shutil.copy2(folder / "requirements.txt", context / "requirements.txt")
        _copy_runner(context / "runner")
        _docker_build(client, context, tag, "cuda")
    _known.discard(tag)
    return BuildReport("cuda", tag, "built", time.monotonic() - started, f"from {from_ref}")


_BUILDERS: dict[str, Callable[[docker.DockerClient, bool], BuildReport]] = {
    "base": _build_base, "cpu": _build_cpu, "cuda": _build_cuda,
}


def build_images(names: Iterable[str] | None = None, force: bool = False,
                 client: docker.DockerClient | None = None) -> list[BuildReport]:
    """Build what changed among `names` (default: all; `cpu` implies `base`). Returns one
    report per image: built, skipped (up to date) or unavailable (with the reason)."""
    wanted = list(names) if names else list(IMAGE_NAMES)
    unknown = [n for n in wanted if n not in _BUILDERS]
    if unknown:
        raise ImageError(f"unknown image(s) {unknown}: choose from {', '.join(IMAGE_NAMES)}")
    if "cpu" in wanted and "base" not in wanted:
        wanted.insert(0, "base")
    client = client or docker_client(timeout=BUILD_TIMEOUT_S)
    reports = []
    for name in IMAGE_NAMES:
        if name in wanted:
            explicit = force and (names is None or name in names)
            reports.append(_BUILDERS[name](client, explicit))
    return reports


def list_images(client: docker.DockerClient | None = None) -> list[tuple[str, str, int, bool]]:
    """(tag, short id, size in bytes, is current) for every local evoforge/* image except
    per-candidate ones."""
    client = client or docker_client()
    current = set()
    for name in ("base", "cpu", "cuda"):
        try:
            current.add(resolve_image(name, client))
        except ImageError:
            pass
    rows = []
    for image in client.images.list(name="evoforge/*"):
        for tag in image.tags:
            if tag.startswith("evoforge/cand-"):
                continue
            rows.append((tag, image.short_id.split(":")[-1], int(image.attrs.get("Size", 0)), tag in current))
    return sorted(rows)


def _main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("build", "list"):
        print("usage: python -m orchestrator.sandbox.images build [IMAGE ...] [--force] | list", file=sys.stderr)
        return 2
    try:
        if argv[0] == "list":
            for tag, short, size, cur in list_images():
                print(f"{'*' if cur else ' '} {tag:<32} {short} {size / 1e6:8.0f} MB")
            return 0
        force = "--force" in argv
        names = [a for a in argv[1:] if not a.startswith("--")] or None
        for report in build_images(names, force=force):
            print(report.line(), flush=True)
    except ImageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
