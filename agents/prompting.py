"""Rendering the jinja2 prompts of `agents/prompts/` into chat messages, and hashing them.

Templates receive plain values (strings, numbers, small dicts), never live objects, so what a
prompt shows is decided here, in one place.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import jinja2

PROMPTS_DIR = Path(__file__).parent / "prompts"
EXCERPT_LINES = 60  # lines of an inspiration's EVOLVE block shown in the prompt
ERROR_TAIL_LINES = 8  # lines of a failure's error shown in the prompt

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(PROMPTS_DIR)),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=False,
    autoescape=False,  # prompts are plain text, not HTML
)


def render(template: str, **values: Any) -> str:
    return _env.get_template(template).render(**values).strip() + "\n"


def messages(prefix: str, **values: Any) -> list[dict[str, str]]:
    """[system, user] messages from `<prefix>_system.j2` and `<prefix>_user.j2`."""
    return [
        {"role": "system", "content": render(f"{prefix}_system.j2", **values)},
        {"role": "user", "content": render(f"{prefix}_user.j2", **values)},
    ]


def prompt_hash(msgs: list[dict[str, Any]]) -> str:
    """sha256 of the rendered prompt (the messages as canonical JSON)."""
    return hashlib.sha256(json.dumps(msgs, sort_keys=True).encode()).hexdigest()


def tail(text: str, lines: int = ERROR_TAIL_LINES) -> str:
    kept = [ln for ln in text.strip().splitlines() if ln.strip()]
    return "\n".join(kept[-lines:])


def excerpt(text: str, lines: int = EXCERPT_LINES) -> str:
    kept = text.strip("\n").splitlines()
    if len(kept) <= lines:
        return "\n".join(kept)
    return "\n".join(kept[:lines] + [f"# ... ({len(kept) - lines} more lines)"])


def fmt_score(score: float | None) -> str:
    return "n/a" if score is None else f"{score:.6g}"
