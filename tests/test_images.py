"""Sandbox images: content-hashed tags, no-op rebuilds, per-candidate images that reproduce."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid

import pytest
from sandbox_contract import probe_job

from orchestrator import SANDBOX_IMAGES_DIR
from orchestrator.errors import ImageError
from orchestrator.sandbox import images
from orchestrator.sandbox.candidate_image import (
    build_candidate_image,
    candidate_tag,
    reproduce_from_image,
)

PROGRAM = "def main(seed=0):\n    return 2.5 * (seed + 1)\n"


@pytest.fixture
def images_copy(tmp_path):
    dst = tmp_path / "sandbox_images"
    shutil.copytree(SANDBOX_IMAGES_DIR, dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def test_tags_are_content_hashes(images_copy):
    base = images.base_tag(images_copy)
    assert base == images.base_tag() and base.startswith("evoforge/base:")
    cpu, env = images.cpu_tag(base, images_copy), images.cpu_env_tag(base, images_copy)
    assert cpu == images.cpu_tag(base)

    with open(images_copy / "runner" / "evoforge_runner" / "result.py", "a") as fh:
        fh.write("# changed\n")
    assert images.cpu_tag(base, images_copy) != cpu
    assert images.cpu_env_tag(base, images_copy) == env  # the 1 GB layer is not rebuilt

    with open(images_copy / "cpu" / "requirements.txt", "a") as fh:
        fh.write("# changed\n")
    assert images.cpu_env_tag(base, images_copy) != env
    assert images.cpu_tag("evoforge/base:other", images_copy) != images.cpu_tag(base, images_copy)

    with open(images_copy / "base" / "bootstrap.sh", "a") as fh:
        fh.write("# changed\n")
    assert images.base_tag(images_copy) != base


def test_candidate_tags_are_valid_docker_references():
    assert candidate_tag("circle_packing", "cand-0190f3a2b4c-1a2b3c4d") == \
        "evoforge/cand-circle_packing:cand-0190f3a2b4c-1a2b3c4d"
    assert candidate_tag("My Task", "CAND/1") == "evoforge/cand-my-task:cand-1"


@pytest.mark.docker
def test_second_build_is_a_noop(docker_client, sandbox_images):
    reports = images.build_images(["cpu"], client=docker_client)
    assert [(r.image, r.action) for r in reports] == [("base", "skipped"), ("cpu", "skipped")]
    assert reports[1].tag == sandbox_images["cpu"] == images.resolve_image("cpu", docker_client)


@pytest.mark.docker
def test_resolve_image_names_the_fix(docker_client):
    with pytest.raises(ImageError, match="unknown sandbox image"):
        images.resolve_image("gpu-xl", docker_client)
    with pytest.raises(ImageError, match="make images"):
        images.resolve_image("evoforge/cpu:does-not-exist", docker_client)


@pytest.mark.docker
def test_candidate_image_reproduces(docker_client, sandbox_images, fixture_task_dir):
    from orchestrator.sandbox.docker import DockerSandbox  # noqa: PLC0415

    sandbox = DockerSandbox(gc_on_start=False)
    original = asyncio.run(sandbox.run(probe_job(fixture_task_dir, PROGRAM, seed=1)))
    assert original.status == "ok" and original.score == 5.0
    cid = f"cand-test-{uuid.uuid4().hex[:8]}"
    tag = build_candidate_image(
        task_dir=fixture_task_dir, task_name="sandbox_probe", candidate_id=cid,
        files={"program.py": PROGRAM}, program="program.py", stage="quick", seed=1, scale=None,
        metrics={**original.metrics, "score": original.score}, parent_id="cand-parent",
        base_image=sandbox_images["cpu"],
    )
    try:
        assert tag == f"evoforge/cand-sandbox_probe:{cid}"
        done = subprocess.run(["docker", "run", "--rm", "--network", "none", tag],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        printed = json.loads(done.stdout.strip().splitlines()[-1])
        assert printed["status"] == "ok"
        assert printed["score"] == original.score and printed["metrics"] == original.metrics

        recorded, reproduced = reproduce_from_image(tag, timeout_s=30)
        assert recorded["score"] == original.score and recorded["seed"] == 1
        assert recorded["parent_id"] == "cand-parent" and recorded["base_image"] == sandbox_images["cpu"]
        assert reproduced.status == "ok"
        assert reproduced.score == original.score and reproduced.metrics == original.metrics
    finally:
        docker_client.images.remove(tag, force=True)


@pytest.mark.docker
def test_candidate_image_never_follows_symlinks_out_of_the_task(docker_client, sandbox_images,
                                                                 fixture_task_dir, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret 93ab")
    task = tmp_path / "task"
    shutil.copytree(fixture_task_dir, task)
    (task / "leak.txt").symlink_to(secret)
    tag = build_candidate_image(
        task_dir=task, task_name="sandbox_probe", candidate_id=f"cand-link-{uuid.uuid4().hex[:8]}",
        files={"program.py": PROGRAM}, program="program.py", stage="quick", seed=0, scale=None,
        metrics={"score": 2.5}, parent_id=None, base_image=sandbox_images["cpu"],
    )
    try:
        done = subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "cat", tag,
                               "/task/leak.txt"], capture_output=True, text=True, timeout=60)
        assert done.returncode != 0
        assert "93ab" not in done.stdout + done.stderr
    finally:
        docker_client.images.remove(tag, force=True)
    with pytest.raises(ImageError, match="not a plain relative path"):
        build_candidate_image(
            task_dir=task, task_name="sandbox_probe", candidate_id="cand-bad",
            files={"program.py": PROGRAM, "../x.py": "x = 1"}, program="program.py", stage="quick",
            seed=0, scale=None, metrics={}, parent_id=None, base_image=sandbox_images["cpu"],
        )
