"""Process hygiene of the trusted runner: private result channel, bounded output capture,
non-dumpable, and killing every other process before the result is written.

Why each piece exists (the candidate runs as the same uid as the runner):
- the result goes to a private duplicate of the original stdout, not inherited by children,
  so candidate output can never land on the channel the host parses;
- `PR_SET_DUMPABLE 0` stops a same-uid process from reading `/proc/<runner>/environ`, `mem`
  or `fd/*` (where the per-job nonce and the private fd live) and from ptrace-attaching;
- `PR_SET_CHILD_SUBREAPER` keeps orphaned descendants (a candidate that double-forks or calls
  `setsid`) attached to the runner, so they can be found and killed before the result is written.
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def harden_self() -> bool:
    """Non-dumpable and child subreaper. Returns whether non-dumpable took effect."""
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    return _prctl(PR_SET_DUMPABLE, 0)


def private_stdout() -> int:
    """A non-inheritable duplicate of fd 1: the only channel the result is written to."""
    fd = os.dup(1)
    os.set_inheritable(fd, False)
    return fd


class TailPipe:
    """Redirect one of fds 1/2 into a pipe drained by a thread that keeps only the last
    `limit` bytes (memory stays bounded whatever is printed) and counts the total."""

    def __init__(self, target_fd: int, limit: int):
        self.limit = limit
        self.total = 0
        self._buf = bytearray()
        self._lock = threading.Lock()
        read_fd, write_fd = os.pipe()
        os.set_inheritable(read_fd, False)
        os.dup2(write_fd, target_fd)
        os.close(write_fd)
        self._read_fd = read_fd
        self._target_fd = target_fd
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self._read_fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            with self._lock:
                self.total += len(chunk)
                self._buf += chunk
                if len(self._buf) > self.limit:
                    del self._buf[: len(self._buf) - self.limit]

    def close(self, wait_s: float = 0.5) -> str:
        """Stop capturing (fd goes to /dev/null) and return the tail as text."""
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._target_fd)
        os.close(devnull)
        self._thread.join(wait_s)
        with self._lock:
            text = bytes(self._buf).decode("utf-8", errors="replace")
        if self.total > self.limit:
            text = f"[... {self.total - self.limit} earlier bytes dropped ...]\n" + text
        return text


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode(errors="replace")
        except OSError:
            continue
        # Fields after the parenthesised command name: state, ppid, ...
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            found.append(child)
            todo.append(child)
    return found


def kill_descendants(root: int, rounds: int = 5) -> None:
    """SIGKILL every descendant of `root` (repeated: a fork bomb keeps forking meanwhile)."""
    for _ in range(rounds):
        pids = _descendants(root)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.01)


def kill_everything_else() -> None:
    """Kill every other process this runner can reach before it writes its result.

    As PID 1 of a container `kill(-1)` reaches every other process of the namespace (and never
    PID 1 itself). Outside a container (process sandbox) only our own descendants are killed:
    they stay attached to us because we are a child subreaper."""
    if os.getpid() == 1:
        for _ in range(5):
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                break
            time.sleep(0.01)
    else:
        kill_descendants(os.getpid())
    # Reap what we can so zombies do not pile up against the pids limit.
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
