"""The Modal image must not drift from the sandbox images: same packages, same pins."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest

from orchestrator import SANDBOX_IMAGES_DIR
from orchestrator.sandbox.modal import _load_modal_app


def _pins(path: Path) -> dict[str, str]:
    """`name==version` lines of a requirements file, names normalised (PEP 503)."""
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if match is None:
            pytest.fail(f"{path}: {line!r} is not pinned exactly (name==version)")
        pins[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
    return pins


def _as_pins(specs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for spec in specs:
        name, _, version = spec.partition("==")
        out[re.sub(r"[-_.]+", "-", name).lower()] = version
    return out


def test_modal_packages_equal_the_cuda_image():
    app = _load_modal_app()
    cuda = _pins(SANDBOX_IMAGES_DIR / "cuda" / "requirements.txt")
    modal_pins = _as_pins(app.SANDBOX_PACKAGES)
    missing = sorted(set(cuda) - set(modal_pins))
    extra = sorted(set(modal_pins) - set(cuda))
    changed = sorted(f"{k}: cuda {cuda[k]} vs modal {modal_pins[k]}" for k in set(cuda) & set(modal_pins)
                     if cuda[k] != modal_pins[k])
    assert not (missing or extra or changed), (
        f"modal_app.SANDBOX_PACKAGES drifted from sandbox_images/cuda/requirements.txt: "
        f"missing {missing}, extra {extra}, changed {changed}; copy the pins over")


def test_modal_packages_equal_the_cpu_image_too():
    """The cpu image is what `evolve reproduce` rebuilds locally: same pins (torch's build aside)."""
    app = _load_modal_app()
    assert _as_pins(app.SANDBOX_PACKAGES) == _pins(SANDBOX_IMAGES_DIR / "cpu" / "requirements.txt")


def test_torch_is_pinned_to_the_project_version():
    app = _load_modal_app()
    assert _as_pins(app.SANDBOX_PACKAGES)["torch"] == "2.13.0"


def test_host_side_packages_match_this_venv():
    """The container validates results with the same pydantic as the host."""
    app = _load_modal_app()
    for name, version in _as_pins(app.HOST_SIDE_PACKAGES).items():
        installed = importlib.metadata.version(name)
        assert installed == version, f"modal_app pins {name}=={version}, the host has {installed}"
    assert not set(_as_pins(app.HOST_SIDE_PACKAGES)) & set(_as_pins(app.SANDBOX_PACKAGES))


def test_drift_check_notices_a_changed_pin(tmp_path):
    """The comparison above is able to fail: a requirements file with one changed pin differs."""
    app = _load_modal_app()
    changed = list(app.SANDBOX_PACKAGES)
    changed[0] = changed[0].split("==")[0] + "==0.0.1"
    (tmp_path / "requirements.txt").write_text("\n".join(changed) + "\n")
    assert _pins(tmp_path / "requirements.txt") != _as_pins(app.SANDBOX_PACKAGES)


def test_the_image_is_built_from_these_constants():
    """The constants are what the image installs (not a copy that nobody reads)."""
    source = Path(_load_modal_app().__file__).read_text()
    assert ".pip_install(*SANDBOX_PACKAGES, *HOST_SIDE_PACKAGES)" in source


#: Installed on the host but not in the Modal image: the container must not need them.
HOST_ONLY = ("structlog", "docker", "lmdb", "msgpack", "openai", "yaml", "agents", "cognition",
             "sentence_transformers", "numpy", "torch", "scipy")
CONTAINER_IMPORTS = r"""
import importlib.abc, sys
blocked = set(sys.argv[1].split(","))
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"{name} is not in the Modal image")
        return None
sys.meta_path.insert(0, Block())
sys.path.insert(0, sys.argv[2])
import modal_app  # what the container imports first
from orchestrator.sandbox import process, protocol  # what run_bundle imports
print("ok")
"""


def test_container_side_imports_only_what_the_image_has():
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    from orchestrator import REPO_ROOT  # noqa: PLC0415

    out = subprocess.run([sys.executable, "-c", CONTAINER_IMPORTS, ",".join(HOST_ONLY), str(REPO_ROOT)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
