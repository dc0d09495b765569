"""Live progress of `evolve run`: a rich panel on a terminal, plain lines otherwise."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table


class Progress:
    def __init__(self, console: Console, total: int | None = None):
        self.console = console
        self.total = total
        self.started = time.monotonic()
        self.state: dict[str, Any] = {}
        self.statuses: Counter[str] = Counter()
        self._live: Live | None = None

    def __enter__(self) -> Progress:
        if self.console.is_terminal:
            self._live = Live(self._render(), console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(None, None, None)
            self._live = None

    def update(self, info: dict[str, Any]) -> None:
        self.state = info
        self.total = info.get("total") or self.total
        if info.get("iteration", 0) > 0:
            self.statuses[str(info.get("status"))] += 1
        if self._live is not None:
            self._live.update(self._render())
        else:
            self.console.print(self._line(), highlight=False, soft_wrap=True)

    def _elapsed(self) -> float:
        return time.monotonic() - self.started

    def _eta(self) -> str:
        done = self.state.get("done", 0)
        if not self.total or not done:
            return "?"
        per = self._elapsed() / done
        return f"{max(0.0, per * (self.total - done)):.0f}s"

    def _gain(self) -> str:
        best, seed = self.state.get("best"), self.state.get("seed_score")
        if best is None or seed is None:
            return ""
        return f" (gain {best - seed:+.4g} over seed {seed:.4g})"

    def _line(self) -> str:
        s = self.state
        score = s.get("score")
        score_txt = f"{score:.5g}" if isinstance(score, float) else "-"
        best = s.get("best")
        best_txt = f"{best:.5g}" if isinstance(best, float) else "-"
        fails = ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items()) if k != "ok")
        return (
            f"[{s.get('done', 0)}{'/' + str(self.total) if self.total else ''}] iter {s.get('iteration')} "
            f"{s.get('candidate')} {s.get('origin')} -> {s.get('status')} score {score_txt} | "
            f"best {best_txt}{self._gain()} | in flight {s.get('in_flight', 0)}"
            f"{' | failures: ' + fails if fails else ''} | tokens {s.get('tokens', 0)} ${s.get('usd', 0)}"
            f" | {self._elapsed():.0f}s"
        )

    def _render(self) -> Table:
        s = self.state
        table = Table(title=f"evoforge run {s.get('run', '')}", show_header=False, expand=False)
        table.add_column("k", style="bold")
        table.add_column("v")
        total = f" of {self.total}" if self.total else ""
        table.add_row("iterations", f"{s.get('done', 0)}{total}")
        table.add_row("in flight", str(s.get("in_flight", 0)))
        best = s.get("best")
        table.add_row("best", (f"{best:.6g}" if isinstance(best, float) else "-") + self._gain())
        table.add_row("last", f"{s.get('candidate', '-')} {s.get('status', '')} {s.get('score')}")
        table.add_row("by status", ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items())) or "-")
        table.add_row("spent", f"{s.get('tokens', 0)} tokens, ${s.get('usd', 0)}")
        table.add_row("time", f"{self._elapsed():.0f}s elapsed, ~{self._eta()} left")
        return table
