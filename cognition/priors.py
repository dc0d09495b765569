"""Import a task's `priors.md` (bullet points of human knowledge) as prior insights.

Each bullet becomes `Insight(source="prior")` with a stable id (hash of task and text), so
importing twice adds nothing. Continuation lines indented under a bullet belong to it.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING

from cognition.errors import StoreError
from cognition.records import Insight

if TYPE_CHECKING:
    from cognition.store import CognitionStore

PRIOR_CONFIDENCE = 0.7
_BULLET = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(.*\S)\s*$")


def parse_bullets(markdown: str) -> list[str]:
    """The text of each top-level bullet, continuation lines joined with spaces."""
    bullets: list[str] = []
    current: list[str] | None = None
    for line in markdown.splitlines():
        match = _BULLET.match(line)
        if match and (not line[:1].isspace() or current is None):
            current = [match.group(1)]
            bullets.append("")
        elif current is not None and line.strip() and line[:1].isspace():
            current.append(line.strip())
        else:
            current = None
            continue
        bullets[-1] = " ".join(current)
    return [b for b in bullets if b]


def prior_id(task: str, text: str) -> str:
    digest = hashlib.sha256(f"{task}\n{text}".encode()).hexdigest()[:20]
    return f"prior-{digest}"


def import_priors(store: CognitionStore, task_name: str, priors_md_path: str | Path) -> int:
    """Import the bullets of `priors_md_path` for `task_name`; returns how many were new."""
    path = Path(priors_md_path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StoreError(f"cannot read priors file {path}: {exc}") from exc
    added = 0
    with store.write() as w:
        for bullet in parse_bullets(text):
            iid = prior_id(task_name, bullet)
            if store.get_insight(iid) is not None:
                continue
            insight = Insight(
                id=iid,
                text=bullet,
                task=task_name,
                source="prior",
                confidence=PRIOR_CONFIDENCE,
                tags=["prior"],
            )
            if w.put_insight(insight) is not None:
                added += 1
    return added
