"""Run untrusted candidate code in a child process, away from the trusted evaluator.

Evaluators call these helpers so that the candidate never shares a process (or a Python
object) with the code that computes its score:

- `call_candidate(program, "main", inputs=..., ...)` loads the candidate module in a child,
  calls one function with keyword inputs (numpy arrays and JSON values) and returns what it
  returned (numpy arrays or JSON values). Data crosses the process boundary as `.npz`
  (loaded with `allow_pickle=False`) and JSON: never pickle.
- `run_child([...])` runs any command (for example a trusted driver script of the task that
  imports the candidate and trains a model) with the same hygiene.

The child gets a clean environment (no secrets of the runner), its own process group (killed
whole on timeout), bounded stdout/stderr captured to files, and a private working folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TAIL_BYTES = 4000

#: cgroup files holding the count of OOM kills (v1 inside a container, then v2).
_OOM_FILES = ("/sys/fs/cgroup/memory/memory.oom_control", "/sys/fs/cgroup/memory.events")

_active_lock = threading.Lock()
_active_children = 0


def oom_kill_count() -> int:
    """How many processes the kernel OOM-killed in this cgroup so far (0 when unknown)."""
    for path in _OOM_FILES:
        try:
            with open(path) as fh:
                for line in fh:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return 0


def _reap_strays() -> None:
    """As PID 1 of a sandbox container, kill every other process once no candidate call is
    active: a candidate that escaped its process group (setsid, double fork) must not keep
    running, and tampering with the evaluator's files, while the evaluator scores it."""
    if os.getpid() != 1:
        return
    with _active_lock:
        if _active_children:
            return
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass

_BOOTSTRAP = r"""
import importlib.util, json, sys
import numpy as np
program, function, io_dir = sys.argv[1], sys.argv[2], sys.argv[3]
inputs = {}
try:
    with open(io_dir + "/inputs.json") as fh:
        inputs.update(json.load(fh))
except FileNotFoundError:
    pass
try:
    with np.load(io_dir + "/inputs.npz", allow_pickle=False) as npz:
        inputs.update({k: npz[k] for k in npz.files})
except FileNotFoundError:
    pass
spec = importlib.util.spec_from_file_location("candidate_program", program)
module = importlib.util.module_from_spec(spec)
sys.modules["candidate_program"] = module
spec.loader.exec_module(module)
fn = getattr(module, function, None)
if not callable(fn):
    sys.stderr.write(f"candidate program defines no function {function!r}\n")
    sys.exit(3)
out = fn(**inputs)
if isinstance(out, tuple):
    out = {f"out{i}": v for i, v in enumerate(out)}
if isinstance(out, np.ndarray):
    out = {"out0": out}
arrays = {}
plain = {}
if isinstance(out, dict):
    for k, v in out.items():
        if isinstance(v, np.ndarray) or (hasattr(v, "numpy") and hasattr(v, "detach")):
            arrays[str(k)] = np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v)
        else:
            plain[str(k)] = v
else:
    plain["out0"] = out
np.savez(io_dir + "/outputs.tmp.npz", **arrays)
with open(io_dir + "/outputs.tmp.json", "w") as fh:
    json.dump(plain, fh, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
import os
os.replace(io_dir + "/outputs.tmp.npz", io_dir + "/outputs.npz")
os.replace(io_dir + "/outputs.tmp.json", io_dir + "/outputs.json")
"""


class CandidateError(Exception):
    """The candidate crashed, timed out, or returned something unusable. `feedback` is a
    short text for the Researcher; `kind` is one of crash, timeout, oom, bad_output."""

    def __init__(self, message: str, *, kind: str = "crash", stdout_tail: str = "", stderr_tail: str = ""):
        super().__init__(message)
        self.kind = kind
        self.stdout_tail = stdout_tail
        self.stderr_tail = stderr_tail

    @property
    def feedback(self) -> str:
        text = str(self)
        if self.stderr_tail:
            text += "\n--- stderr (tail) ---\n" + self.stderr_tail[-1500:]
        return text


@dataclass(frozen=True)
class ChildResult:
    returncode: int
    timed_out: bool
    runtime_s: float
    stdout_tail: str
    stderr_tail: str


def child_env(threads: int = 1, extra: dict[str, str] | None = None, home: Path | None = None) -> dict[str, str]:
    """A minimal environment: no variables of the parent leak into the child."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home or "/tmp"),
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "OPENBLAS_NUM_THREADS": str(threads),
        "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
    }
    # The runner's own site-packages (e.g. /opt/evoforge/site in the image) must stay importable.
    if os.environ.get("EVOFORGE_CHILD_PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["EVOFORGE_CHILD_PYTHONPATH"]
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"):
        if key in os.environ:
            env[key] = os.environ[key]
    if extra:
        env.update(extra)
    return env


def _tail(path: Path, limit: int = TAIL_BYTES) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def run_child(
    argv: list[str],
    *,
    workdir: Path,
    timeout_s: float,
    threads: int = 1,
    env: dict[str, str] | None = None,
) -> ChildResult:
    """Run `argv` in `workdir` with a clean environment; kill its whole process group when it
    outlives `timeout_s`. stdout/stderr go to files in `workdir` and come back as tails."""
    global _active_children
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = workdir / ".child.stdout", workdir / ".child.stderr"
    start = time.monotonic()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        with _active_lock:
            _active_children += 1
        proc = subprocess.Popen(
            argv,
            cwd=workdir,
            env=child_env(threads, env, home=workdir),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            close_fds=True,
        )
        timed_out = False
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            # The group may hold grandchildren even after the leader exits.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
            with _active_lock:
                _active_children -= 1
            _reap_strays()
    return ChildResult(
        returncode=proc.returncode,
        timed_out=timed_out,
        runtime_s=time.monotonic() - start,
        stdout_tail=_tail(out_path),
        stderr_tail=_tail(err_path),
    )


def call_candidate(
    program_path: str | Path,
    function: str,
    *,
    workdir: str | Path,
    timeout_s: float,
    inputs: dict[str, Any] | None = None,
    threads: int = 1,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Call `function(**inputs)` of the candidate program in a child process.

    Returns a dict: array outputs as numpy arrays, the rest as JSON values. A single return
    value comes back under `out0`; a tuple as `out0`, `out1`, ... Raises `CandidateError`.
    """
    import numpy as np  # noqa: PLC0415 - the runner imports this module without numpy too

    io_dir = Path(workdir) / "io"
    io_dir.mkdir(parents=True, exist_ok=True)
    for name in ("outputs.npz", "outputs.json"):
        (io_dir / name).unlink(missing_ok=True)
    arrays = {k: v for k, v in (inputs or {}).items() if isinstance(v, np.ndarray)}
    plain = {k: v for k, v in (inputs or {}).items() if not isinstance(v, np.ndarray)}
    np.savez(io_dir / "inputs.npz", **arrays)
    (io_dir / "inputs.json").write_text(json.dumps(plain))
    ooms_before = oom_kill_count()
    result = run_child(
        [sys.executable, "-I", "-c", _BOOTSTRAP, str(Path(program_path).resolve()), function, str(io_dir)],
        workdir=Path(workdir),
        timeout_s=timeout_s,
        threads=threads,
        env=env,
    )
    if result.timed_out:
        raise CandidateError(
            f"candidate did not finish within {timeout_s:g} s",
            kind="timeout",
            stdout_tail=result.stdout_tail,
            stderr_tail=result.stderr_tail,
        )
    if result.returncode == -signal.SIGKILL and oom_kill_count() > ooms_before:
        raise CandidateError(
            "candidate was killed by the kernel: out of memory",
            kind="oom",
            stdout_tail=result.stdout_tail,
            stderr_tail=result.stderr_tail,
        )
    if result.returncode != 0:
        raise CandidateError(
            f"candidate exited with code {result.returncode}",
            kind="crash",
            stdout_tail=result.stdout_tail,
            stderr_tail=result.stderr_tail,
        )
    try:
        plain_out = json.loads((io_dir / "outputs.json").read_text())
        with np.load(io_dir / "outputs.npz", allow_pickle=False) as npz:
            arrays_out = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise CandidateError(f"candidate produced no readable output: {exc}", kind="bad_output",
                             stdout_tail=result.stdout_tail, stderr_tail=result.stderr_tail) from exc
    plain_out.update(arrays_out)
    return plain_out
