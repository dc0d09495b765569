"""structlog setup: JSON lines to a per-run file, a readable renderer on the console.

Run and candidate ids are bound from context (`structlog.contextvars`), so every line written
while an iteration is in flight carries them without passing a logger around.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import Any, TextIO

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class _Tee:
    """Sends each event to the console renderer and, when a run file is open, as JSON to it."""

    def __init__(self, console: TextIO, level: int):
        self.console = console
        self.level = level
        self.file: TextIO | None = None
        self._console_renderer = structlog.dev.ConsoleRenderer(colors=console.isatty())
        self._json_renderer = structlog.processors.JSONRenderer()

    def __call__(self, logger: Any, method: str, event: dict[str, Any]) -> str:
        if self.file is not None:
            try:
                self.file.write(self._json_renderer(logger, method, dict(event)) + "\n")
                self.file.flush()
            except OSError as exc:  # a full disk must not turn every log call into an error
                self.console.write(f"the run log cannot be written ({exc}): logging to the console only\n")
                with contextlib.suppress(OSError):
                    self.file.close()
                self.file = None
        if _LEVELS.get(method, logging.INFO) >= self.level:
            self.console.write(self._console_renderer(logger, method, dict(event)) + "\n")
            self.console.flush()
        raise structlog.DropEvent


_tee: _Tee | None = None


def configure(level: str = "info", console: TextIO | None = None) -> None:
    global _tee
    _tee = _Tee(console or sys.stderr, _LEVELS.get(level, logging.INFO))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _tee,
        ],
        cache_logger_on_first_use=False,
    )


def open_run_log(path: Path) -> None:
    """Also write every event, at every level, as JSON lines to `path` (appending on resume)."""
    if _tee is None:
        configure()
    assert _tee is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    close_run_log()
    _tee.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close_run_log


def close_run_log() -> None:
    if _tee is not None and _tee.file is not None:
        with contextlib.suppress(OSError):  # buffered lines on a full disk
            _tee.file.close()
        _tee.file = None


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
