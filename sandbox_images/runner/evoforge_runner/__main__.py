"""The trusted runner: `python3 -I -m evoforge_runner --task-dir /task --program /input/program.py
--stage quick --seed 0 [--scale gpu] [--timeout 60]`.

It imports the task's `evaluate.py` by path, calls `evaluate(program, stage=, seed=, workdir=)`
(plus `scale=` when the function takes it) and reports ONE result line on its original stdout:
`EVOFORGE-RESULT <nonce> <json>` when the host gave a nonce in `EVOFORGE_NONCE`, else the bare
JSON (a candidate image run by hand). Candidate code runs only in child processes
(`evoforge_runner.child`); see `guard.py` for why a candidate cannot write its own score.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from evoforge_runner import guard
from evoforge_runner.child import CandidateError, oom_kill_count
from evoforge_runner.peers import PEER_FORMATS, evaluate_peer
from evoforge_runner.result import RESULT_PREFIX, TEXT_LIMIT, encode, failure, from_evaluation

#: Bound on the result line; the host applies its own bound too.
DEFAULT_MAX_RESULT_BYTES = 256 * 1024


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="evoforge_runner", description=__doc__)
    parser.add_argument("--task-dir", required=True, type=Path)
    parser.add_argument("--program", required=True, type=Path)
    parser.add_argument("--stage", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", default=None)
    parser.add_argument("--timeout", type=float, default=0.0, help="seconds; 0 = no own deadline")
    parser.add_argument("--max-result-bytes", type=int, default=DEFAULT_MAX_RESULT_BYTES)
    parser.add_argument("--format", default="evoforge", choices=("evoforge", *PEER_FORMATS),
                        help="task folder format; peer formats run through evoforge_runner.peers")
    return parser.parse_args(argv)


class _Finisher:
    """Writes the one result line exactly once (main thread or deadline watchdog), then exits."""

    def __init__(self, result_fd: int, nonce: str, out: guard.TailPipe, err: guard.TailPipe,
                 started: float, max_bytes: int):
        self._fd = result_fd
        self._nonce = nonce
        self._out = out
        self._err = err
        self._started = started
        self._max_bytes = max_bytes
        self._lock = threading.Lock()

    def finish(self, record: dict[str, Any]) -> None:
        self._lock.acquire()  # never released: the process exits below
        runtime = time.monotonic() - self._started
        guard.kill_everything_else()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        record = dict(record)
        record["stdout_tail"] = self._out.close()
        record["stderr_tail"] = self._err.close()
        record["runtime_s"] = round(runtime, 4)
        body = encode(record, self._max_bytes)
        line = (f"{RESULT_PREFIX} {self._nonce} {body}\n" if self._nonce else body + "\n").encode()
        view = memoryview(line)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os._exit(0)


def _load_evaluate(task_dir: Path) -> Any:
    path = task_dir / "evaluate.py"
    if str(task_dir) not in sys.path:
        sys.path.insert(0, str(task_dir))  # helper modules next to evaluate.py (read-only mount)
    spec = importlib.util.spec_from_file_location("evoforge_task_evaluate", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["evoforge_task_evaluate"] = module
    spec.loader.exec_module(module)
    fn = getattr(module, "evaluate", None)
    if not callable(fn):
        raise ImportError(f"{path} defines no function evaluate(program_path, *, stage, seed, workdir)")
    return fn


def _accepts(fn: Any, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _tb() -> str:
    return traceback.format_exc()[-TEXT_LIMIT:]


def evaluate_once(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Run the task's evaluator once; every failure becomes a status, never an exception."""
    if args.format in PEER_FORMATS:
        return evaluate_peer(args.format, args.task_dir, args.program, args.stage, workdir, args.timeout)
    try:
        fn = _load_evaluate(args.task_dir)
    except BaseException:  # noqa: BLE001 - a broken evaluator is reported, not raised
        return failure("error", "could not import the task's evaluate.py:\n" + _tb())
    kwargs: dict[str, Any] = {"stage": args.stage, "seed": args.seed, "workdir": str(workdir)}
    if args.scale is not None and _accepts(fn, "scale"):
        kwargs["scale"] = args.scale
    ooms_before = oom_kill_count()
    try:
        returned = fn(str(args.program), **kwargs)
    except CandidateError as exc:
        status = {"timeout": "timeout", "oom": "oom"}.get(exc.kind, "error")
        if status == "error" and oom_kill_count() > ooms_before:
            status = "oom"
        return failure(status, f"{exc} ({exc.kind})", exc.feedback)
    except MemoryError:
        return failure("oom", "the evaluation ran out of memory:\n" + _tb())
    except BaseException:  # noqa: BLE001 - SystemExit/KeyboardInterrupt of an evaluator too
        status = "oom" if oom_kill_count() > ooms_before else "error"
        return failure(status, "evaluate() raised:\n" + _tb())
    return from_evaluation(returned)


def main(argv: list[str] | None = None) -> None:
    started = time.monotonic()
    args = _parse(argv)
    result_fd = guard.private_stdout()
    nonce = os.environ.pop("EVOFORGE_NONCE", "")
    guard.harden_self()
    # A candidate must not be able to interrupt the evaluator (SIGINT -> KeyboardInterrupt in
    # the middle of scoring); the host stops us with SIGKILL only.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    # Nothing importable may come from the (candidate-writable) working directory.
    cwd = os.getcwd()
    sys.path[:] = [p for p in sys.path if p not in ("", ".", cwd)]
    sys.dont_write_bytecode = True
    out = guard.TailPipe(1, TEXT_LIMIT)
    err = guard.TailPipe(2, TEXT_LIMIT)
    finisher = _Finisher(result_fd, nonce, out, err, started, args.max_result_bytes)

    if args.timeout > 0:
        def _deadline() -> None:
            time.sleep(max(0.0, started + args.timeout - time.monotonic()))
            finisher.finish(failure("timeout", f"evaluation did not finish within {args.timeout:g} s"))

        threading.Thread(target=_deadline, daemon=True).start()

    workdir = Path(cwd) / "work"
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        finisher.finish(failure("error", f"cannot create the work folder {workdir}: {exc}"))
    finisher.finish(evaluate_once(args, workdir))


if __name__ == "__main__":
    main()
