"""Hostile candidates against the DockerSandbox. Each candidate is a program whose `main()` the
probe evaluator calls in a child process (`evoforge_runner.child.call_candidate`); it returns
what it observed (metrics["out"]). Every test ends with a clear status, the host untouched
(sentinel file intact, no container left) and the next job still working.
"""

from __future__ import annotations

import asyncio
import textwrap
import warnings

import pytest
from sandbox_contract import probe_job

from orchestrator.sandbox.base import TAIL_CHARS, Limits

pytestmark = pytest.mark.docker

LIMITS = Limits(cpus=1, memory_mb=256, pids=64, timeout_s=15, scratch_mb=32, output_kb=64)
RUN_ID = "hostile"
SENTINEL_TEXT = "host secret 7d1f"


@pytest.fixture(scope="module")
def sandbox(docker_client):
    from orchestrator.sandbox.docker import DockerSandbox  # noqa: PLC0415

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        backend = DockerSandbox()
    yield backend
    asyncio.run(backend.close())


@pytest.fixture
def sentinel(tmp_path):
    path = tmp_path / "sentinel.txt"
    path.write_text(SENTINEL_TEXT)
    return path


@pytest.fixture
def hostile(sandbox, fixture_task_dir, docker_client, sentinel):
    """Run one hostile candidate, then check the host and the next job."""

    async def run(body: str, *, limits: Limits = LIMITS, env: dict[str, str] | None = None):
        code = "import os, sys, socket, signal, subprocess\n\ndef main(seed=0):\n" + textwrap.indent(
            textwrap.dedent(body), "    ")
        result = await sandbox.run(probe_job(fixture_task_dir, code, limits=limits, env=env, run_id=RUN_ID))
        assert result.status in ("ok", "error", "timeout", "oom", "invalid"), result
        assert len(result.stdout_tail) <= TAIL_CHARS and len(result.stderr_tail) <= TAIL_CHARS
        left = docker_client.api.containers(all=True, filters={"label": f"evoforge.run={RUN_ID}"})
        assert left == [], "a sandbox container was left behind"
        assert sentinel.read_text() == SENTINEL_TEXT
        after = await sandbox.run(probe_job(fixture_task_dir, run_id=RUN_ID))
        assert after.status == "ok" and after.score == 1.0, after
        return result

    return run


async def test_network_egress_is_blocked(hostile):
    result = await hostile("""
        out = {}
        for host, port in (("1.1.1.1", 53), ("127.0.0.1", 2375), ("172.17.0.1", 2375)):
            try:
                socket.create_connection((host, port), timeout=2).close()
                out[host] = "reached"
            except OSError as exc:
                out[host] = type(exc).__name__
        out["interfaces"] = sorted(os.listdir("/sys/class/net"))
        return out
    """)
    assert result.status == "ok", result
    out = result.metrics["out"]
    assert "reached" not in out.values()
    assert out["interfaces"] == ["lo"]


async def test_writes_outside_scratch_fail(hostile):
    result = await hostile("""
        wrote = []
        for path in ("/evil", "/etc/evil", "/task/evil", "/task/evaluate.py", "/input/program.py",
                     "/input/evil", "/usr/local/lib/python3.11/dist-packages/numpy.py",
                     "/usr/local/lib/python3.11/dist-packages/evoforge_runner/result.py"):
            try:
                with open(path, "a") as fh:
                    fh.write("x")
                wrote.append(path)
            except OSError:
                pass
        with open("/scratch/ok", "w") as fh:
            fh.write("scratch is writable")
        return wrote
    """)
    assert result.status == "ok", result
    assert result.metrics["out"] == []


async def test_host_files_are_out_of_reach(hostile, sentinel):
    result = await hostile(f"""
        seen = []
        for path in ({str(sentinel)!r}, "/root/.bashrc", "/etc/shadow", "/proc/1/environ", "/proc/1/mem"):
            try:
                with open(path, "rb") as fh:
                    seen.append((path, fh.read(200).decode(errors="replace")))
            except OSError:
                pass
        return seen
    """)
    assert result.status == "ok", result
    assert result.metrics["out"] == []
    assert SENTINEL_TEXT not in result.model_dump_json()


async def test_docker_socket_is_absent(hostile):
    result = await hostile("""
        found = [p for p in ("/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock")
                 if os.path.exists(p)]
        return found
    """)
    assert result.status == "ok", result
    assert result.metrics["out"] == []


async def test_fork_bomb_is_contained(hostile):
    result = await hostile("""
        while True:
            try:
                os.fork()
            except OSError:
                pass
    """, env={"PROBE_CHILD_TIMEOUT": "3"})
    assert result.status in ("timeout", "error")


async def test_memory_bomb_is_oom(hostile):
    result = await hostile("""
        hog = []
        while True:
            hog.append(bytearray(16 * 1024 * 1024))
    """)
    assert result.status == "oom", result


async def test_filling_the_disk_hits_the_tmpfs_limit(hostile):
    result = await hostile("""
        out = {}
        for folder in ("/scratch", "/tmp"):
            written = 0
            try:
                with open(folder + "/fill", "wb") as fh:
                    while written < 1 << 30:
                        fh.write(b"x" * (1 << 20))
                        written += 1 << 20
                out[folder] = "no limit"
            except OSError as exc:
                out[folder] = exc.errno
            os.unlink(folder + "/fill")
        return out
    """)
    assert result.status == "ok", result
    assert result.metrics["out"] == {"/scratch": 28, "/tmp": 28}  # ENOSPC


async def test_endless_loop_times_out(hostile):
    limits = Limits(cpus=1, memory_mb=256, pids=64, timeout_s=2, scratch_mb=32, output_kb=64)
    result = await hostile("""
        while True:
            pass
    """, limits=limits, env={"PROBE_CHILD_TIMEOUT": "60"})
    assert result.status == "timeout"


async def test_100mb_of_stdout_stays_bounded(hostile):
    result = await hostile("""
        chunk = "z" * (1 << 20)
        for _ in range(100):
            sys.stdout.write(chunk)
            sys.stderr.write(chunk)
        return 5.0
    """)
    # The child's output goes to files in the 32 MB scratch tmpfs: it fills and the write fails.
    assert result.status in ("ok", "error")
    assert len(result.feedback) <= TAIL_CHARS


async def test_candidate_cannot_forge_its_score(hostile):
    result = await hostile("""
        forged = 'EVOFORGE-RESULT NONCE {"status":"ok","score":1e9,"metrics":{}}'
        attempts = {}
        for nonce in ("", "0" * 32, os.environ.get("EVOFORGE_NONCE", "none")):
            print(forged.replace("NONCE", nonce), flush=True)
            print(forged.replace("NONCE", nonce), file=sys.stderr, flush=True)
        for path in ("/proc/1/fd/1", "/proc/1/fd/2", "/dev/stdout", "/proc/self/fd/1"):
            try:
                with open(path, "w") as fh:
                    fh.write(forged.replace("NONCE", "x") + "\\n")
                attempts[path] = "wrote"
            except OSError as exc:
                attempts[path] = type(exc).__name__
        for path in ("/proc/1/environ", "/proc/1/cmdline"):
            try:
                with open(path, "rb") as fh:
                    attempts[path] = "EVOFORGE_NONCE" in fh.read().decode(errors="replace")
            except OSError as exc:
                attempts[path] = type(exc).__name__
        with open("/scratch/result.json", "w") as fh:
            fh.write('{"score": 1e9}')
        attempts["env_nonce"] = "EVOFORGE_NONCE" in os.environ
        return attempts
    """)
    assert result.status == "ok", result
    assert result.score == 0.0  # main() returned no number: the evaluator's verdict stands
    out = result.metrics["out"]
    assert out["/proc/1/fd/1"] != "wrote" and out["/proc/1/fd/2"] != "wrote"
    assert out["/proc/1/environ"] is not True
    assert out["env_nonce"] is False


async def test_killing_the_parent_does_not_stop_scoring(hostile):
    result = await hostile("""
        out = {}
        for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGKILL"):
            for pid in (os.getppid(), 1):
                try:
                    os.kill(pid, getattr(signal, name))
                    out[f"{name}->{pid}"] = "sent"
                except OSError as exc:
                    out[f"{name}->{pid}"] = type(exc).__name__
        return 4.0
    """)
    assert result.status == "ok", result
    assert result.score == 4.0


async def test_setuid_and_privileges_are_useless(hostile):
    result = await hostile("""
        status = open("/proc/self/status").read()
        fields = dict(line.split(":\\t", 1) for line in status.splitlines() if ":\\t" in line)
        out = {"uid": os.getuid(), "nnp": fields["NoNewPrivs"].strip(), "capeff": fields["CapEff"].strip(),
               "capbnd": fields["CapBnd"].strip()}
        for argv in (["su", "-c", "id -u"], ["mount", "-t", "tmpfs", "none", "/scratch"], ["chroot", "/", "true"]):
            try:
                done = subprocess.run(argv, capture_output=True, timeout=5, text=True)
                out[argv[0]] = done.returncode
            except OSError as exc:
                out[argv[0]] = type(exc).__name__
        try:
            os.setuid(0)
            out["setuid0"] = "worked"
        except OSError as exc:
            out["setuid0"] = type(exc).__name__
        return out
    """)
    assert result.status == "ok", result
    out = result.metrics["out"]
    assert out["uid"] == 65534
    assert out["nnp"] == "1"
    assert out["capeff"] == out["capbnd"] == "0000000000000000"
    assert out["setuid0"] == "PermissionError"
    assert all(out[k] != 0 for k in ("su", "mount", "chroot"))
