"""SEARCH/REPLACE application: exact, whitespace-tolerant, failures with reasons, EVOLVE frame."""

from __future__ import annotations

import pytest
from agents_support import SEED

from agents.diff import (
    apply_full_rewrite,
    apply_reply,
    apply_search_replace,
    extract_code_block,
    parse_blocks,
    unified_diff,
)
from agents.errors import DiffError


def sr(search: str, replace: str) -> str:
    return f"<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"


def test_exact_blocks_apply_in_order() -> None:
    reply = (
        "SUMMARY: tune\n"
        + sr("THRESHOLD = 0.3", "THRESHOLD = 0.42")
        + "\nand\n"
        + sr("STEPS = 100", "STEPS = 120")
    )
    out = apply_search_replace(SEED, reply)
    assert "THRESHOLD = 0.42\n" in out and "STEPS = 120\n" in out
    assert "THRESHOLD = 0.3\n" not in out
    assert out.replace("0.42", "0.3").replace("120", "100") == SEED


def test_multiline_block_and_deletion() -> None:
    reply = sr(
        "def shape(x):\n    return x[0] * 2.0 + x[1]", "def shape(x):\n    return x[0] - x[1]"
    )
    out = apply_search_replace(SEED, reply)
    assert "    return x[0] - x[1]\n" in out
    deleted = apply_search_replace(SEED, sr('CONFIG = {"width": 64, "depth": 3}', ""))
    assert "CONFIG" not in deleted and "KEEP = 7" in deleted


def test_whitespace_tolerant_match_reindents_replacement() -> None:
    # The model lost the indentation and added trailing spaces.
    reply = sr(
        "def shape(x):   \nreturn x[0] * 2.0 + x[1]", "def shape(x):\nreturn x[0] * 3.0 + x[1]"
    )
    with pytest.raises(DiffError):  # relative indentation differs: refused, not guessed
        apply_search_replace(SEED, reply)
    reply = sr("  return x[0] * 2.0 + x[1]  ", "  y = x[0] * 3.0\n  return y + x[1]")
    out = apply_search_replace(SEED, reply)
    assert "    y = x[0] * 3.0\n    return y + x[1]\n" in out
    compile(out, "p.py", "exec")


def test_failing_block_is_named_with_reason() -> None:
    reply = sr("THRESHOLD = 0.3", "THRESHOLD = 0.4") + sr(
        "LEARNING_RATE = 0.01", "LEARNING_RATE = 0.1"
    )
    with pytest.raises(DiffError) as err:
        apply_search_replace(SEED, reply)
    msg = str(err.value)
    assert "block 2 of 2" in msg and "not found" in msg
    assert "LR = 0.01" in msg  # the closest line is suggested


def test_edit_outside_evolve_blocks_is_refused() -> None:
    with pytest.raises(DiffError) as err:
        apply_search_replace(SEED, sr("HEADER = 3", "HEADER = 4"))
    assert "outside the EVOLVE blocks" in str(err.value)
    with pytest.raises(DiffError) as err:
        apply_search_replace(SEED, sr("# EVOLVE-BLOCK-END", ""))
    assert "outside the EVOLVE blocks" in str(err.value)


def test_program_without_blocks_is_editable_everywhere() -> None:
    code = "A = 1\nB = 2\n"
    assert apply_search_replace(code, sr("A = 1", "A = 5")) == "A = 5\nB = 2\n"


def test_ambiguous_match_prefers_inside_block() -> None:
    code = "X = 1\n# EVOLVE-BLOCK-START\nX = 1\n# EVOLVE-BLOCK-END\n"
    out = apply_search_replace(code, sr("X = 1", "X = 2"))
    assert out == "X = 1\n# EVOLVE-BLOCK-START\nX = 2\n# EVOLVE-BLOCK-END\n"


def test_malformed_replies() -> None:
    with pytest.raises(DiffError, match="not closed"):
        parse_blocks("<<<<<<< SEARCH\nA = 1\n=======\nA = 2\n")
    with pytest.raises(DiffError, match="no SEARCH/REPLACE"):
        apply_search_replace(SEED, "I think you should raise the threshold.")
    with pytest.raises(DiffError, match="empty SEARCH"):
        apply_search_replace(SEED, sr("", "X = 1"))
    with pytest.raises(DiffError, match="neither"):
        apply_reply(SEED, "no code here")


def test_full_rewrite_keeps_frame_or_is_spliced() -> None:
    body = 'THRESHOLD = 0.5\nLR = 0.02\nSTEPS = 10\nMODE = "margin"\n'
    out, how = apply_reply(SEED, f"SUMMARY: simpler\n```python\n{body}```\n")
    assert how == "full"
    assert out.startswith(SEED.split("# EVOLVE-BLOCK-START")[0])
    assert "# EVOLVE-BLOCK-START\n" + body + "# EVOLVE-BLOCK-END" in out
    whole = SEED.replace("LR = 0.01", "LR = 0.05")
    assert apply_full_rewrite(SEED, f"```python\n{whole}```") == whole
    bad = whole.replace("HEADER = 3", "HEADER = 9")
    with pytest.raises(DiffError, match="outside the EVOLVE blocks"):
        apply_full_rewrite(SEED, f"```python\n{bad}```")


def test_extract_code_block_takes_longest() -> None:
    reply = "```\nshort\n```\ntext\n```python\nlonger\nblock\n```\n"
    assert extract_code_block(reply) == "longer\nblock\n"


def test_unified_diff() -> None:
    assert unified_diff(SEED, SEED) == ""
    d = unified_diff("a\nb\n", "a\nc")
    assert "-b\n" in d and "+c\n" in d and d.startswith("--- parent\n+++ candidate\n")
