"""One driver per run: an exclusive `flock` on `<run_dir>/<run_id>.lock`.

The kernel drops the lock when the process dies (SIGKILL included), so a crashed run never
leaves a stale lock behind, and a second `evolve run --resume` of a live run is refused.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from orchestrator.errors import RunLockedError


class RunLock:
    def __init__(self, run_dir: Path, run_id: str):
        self.path = Path(run_dir) / f"{run_id}.lock"
        self.run_id = run_id
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = ""
            try:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
            except OSError:
                pass
            os.close(fd)
            who = f" (pid {holder})" if holder else ""
            raise RunLockedError(
                f"run {self.run_id} is already being driven by another process{who}: "
                f"wait for it to finish or stop it (Ctrl-C) before resuming"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
