"""Model replies as edits: SEARCH/REPLACE blocks (the aider / OpenEvolve format) or a fenced
full rewrite, applied to a program with the EVOLVE-block frame enforced.

    <<<<<<< SEARCH
    x = 1
    =======
    x = 2
    >>>>>>> REPLACE

`apply_search_replace` tries an exact match first, then a whitespace-tolerant line match
(trailing spaces ignored, indentation normalised and re-applied to the replacement). A block
that does not apply raises `DiffError` naming the block and why, so the Researcher can feed the
reason back to the model.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from agents.blocks import find_blocks, frame_violation, has_blocks, splice_single_block
from agents.errors import DiffError

_SEARCH = re.compile(r"^\s*<{5,9}\s*SEARCH\b.*$")
_DIVIDER = re.compile(r"^\s*={5,9}\s*$")
_REPLACE = re.compile(r"^\s*>{5,9}\s*REPLACE\b.*$")
_FENCE = re.compile(r"^```[ \t]*([\w+-]*)[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


@dataclass(frozen=True)
class EditBlock:
    search: str
    replace: str


def parse_blocks(reply: str) -> list[EditBlock]:
    """SEARCH/REPLACE blocks of a reply, in order. Raises DiffError on a block left open."""
    blocks: list[EditBlock] = []
    lines = reply.splitlines()
    i = 0
    while i < len(lines):
        if not _SEARCH.match(lines[i]):
            i += 1
            continue
        opened = i + 1
        j = opened
        while j < len(lines) and not _DIVIDER.match(lines[j]):
            j += 1
        k = j + 1
        while k < len(lines) and not _REPLACE.match(lines[k]):
            k += 1
        if j >= len(lines) or k >= len(lines):
            raise DiffError(
                f"block {len(blocks) + 1} (SEARCH at reply line {opened}) is not closed: "
                "each block needs a ======= line and a >>>>>>> REPLACE line"
            )
        search = "\n".join(lines[opened:j])
        replace = "\n".join(lines[j + 1 : k])
        blocks.append(EditBlock(search + "\n" if search else "", replace + "\n" if replace else ""))
        i = k + 1
    return blocks


def has_search_replace(reply: str) -> bool:
    return any(_SEARCH.match(line) for line in reply.splitlines())


def extract_code_block(reply: str) -> str | None:
    """The longest fenced code block of a reply (a full rewrite), or None."""
    found = [m.group(2) for m in _FENCE.finditer(reply)]
    return max(found, key=len) if found else None


def _inside(code: str, start: int, end: int) -> bool:
    if not has_blocks(code):
        return True
    return any(b.char_start <= start and end <= b.char_end for b in find_blocks(code))


def _exact_spans(code: str, search: str) -> list[tuple[int, int]]:
    spans, pos = [], code.find(search)
    while pos != -1:
        spans.append((pos, pos + len(search)))
        pos = code.find(search, pos + 1)
    return spans


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _fuzzy_match(code: str, search: str, replace: str) -> list[tuple[int, int, str]]:
    """Line-level matches ignoring trailing spaces and a uniform indentation shift.

    Returns (char_start, char_end, replacement re-indented to the matched text)."""
    code_lines = code.splitlines(keepends=True)
    want = [ln.rstrip() for ln in search.splitlines()]
    while want and not want[0].strip():
        want.pop(0)
    while want and not want[-1].strip():
        want.pop()
    if not want:
        return []
    offsets = [0]
    for ln in code_lines:
        offsets.append(offsets[-1] + len(ln))
    matches = []
    n = len(want)
    for i in range(len(code_lines) - n + 1):
        window = [ln.rstrip() for ln in code_lines[i : i + n]]
        if all(a.strip() == b.strip() for a, b in zip(window, want, strict=True)):
            # The same relative indentation, shifted: re-indent the replacement by the shift.
            have_ind, want_ind = _indent(window[0]), _indent(want[0])
            rel_ok = all(
                _indent(a)[len(have_ind) :] == _indent(b)[len(want_ind) :] or not b.strip()
                for a, b in zip(window, want, strict=True)
            )
            if not rel_ok:
                continue
            new_lines = []
            for ln in replace.splitlines():
                if ln.startswith(want_ind):
                    new_lines.append(have_ind + ln[len(want_ind) :])
                else:
                    new_lines.append(have_ind + ln.lstrip() if ln.strip() else "")
            text = "\n".join(new_lines) + ("\n" if new_lines else "")
            end = offsets[i + n]
            if not code_lines[i + n - 1].endswith("\n") and text.endswith("\n"):
                text = text[:-1]
            matches.append((offsets[i], end, text))
    return matches


def _closest_line(code: str, search: str) -> str:
    first = next((ln.strip() for ln in search.splitlines() if ln.strip()), "")
    pool = [ln.strip() for ln in code.splitlines() if ln.strip()]
    close = difflib.get_close_matches(first, pool, n=1, cutoff=0.5)
    hint = f"; the closest program line is {close[0]!r}" if close else ""
    return f"its first line {first[:100]!r} is not in the program{hint}"


def _apply_one(code: str, block: EditBlock, index: int, total: int) -> str:
    name = f"block {index} of {total}"
    if not block.search.strip():
        raise DiffError(
            f"{name} has an empty SEARCH section: copy the exact lines to replace into SEARCH "
            "(or send the whole program in one fenced code block)"
        )
    candidates = [(s, e, block.replace) for s, e in _exact_spans(code, block.search)]
    how = "exact"
    if not candidates:
        candidates = _fuzzy_match(code, block.search, block.replace)
        how = "whitespace-tolerant"
    if not candidates:
        raise DiffError(
            f"{name} does not apply: SEARCH text not found ({_closest_line(code, block.search)})"
        )
    inside = [c for c in candidates if _inside(code, c[0], c[1])]
    if not inside:
        raise DiffError(
            f"{name} edits code outside the EVOLVE blocks ({how} match at line "
            f"{code.count(chr(10), 0, candidates[0][0]) + 1}): only edit between "
            "# EVOLVE-BLOCK-START and # EVOLVE-BLOCK-END"
        )
    start, end, text = inside[0]
    return code[:start] + text + code[end:]


def apply_search_replace(code: str, reply: str) -> str:
    """Apply every SEARCH/REPLACE block of `reply` to `code`, in order.

    Raises DiffError when the reply has no blocks, a block does not match, or a block would
    edit outside the EVOLVE blocks (when the program has them)."""
    blocks = parse_blocks(reply)
    if not blocks:
        raise DiffError(
            "the reply has no SEARCH/REPLACE blocks: use <<<<<<< SEARCH / ======= / >>>>>>> REPLACE"
        )
    out = code
    for i, block in enumerate(blocks, start=1):
        out = _apply_one(out, block, i, len(blocks))
    reason = frame_violation(code, out)
    if reason is not None:
        raise DiffError(f"the edits together are refused: {reason}")
    return out


def apply_full_rewrite(parent: str, reply: str) -> str:
    """The program of a full-rewrite reply. When the parent has EVOLVE blocks, the rewrite must
    keep the frame; a body without markers is spliced into the parent's only block."""
    code = extract_code_block(reply)
    if code is None:
        raise DiffError(
            "the reply has no fenced code block (```python ... ```) to use as the program"
        )
    if has_blocks(parent) and not has_blocks(code):
        spliced = splice_single_block(parent, code)
        if spliced is None:
            raise DiffError(
                "the rewrite has no EVOLVE-BLOCK markers and the parent has several blocks: "
                "send the whole program with its markers"
            )
        return spliced
    reason = frame_violation(parent, code)
    if reason is not None:
        raise DiffError(f"the rewrite is refused: {reason}")
    return code


def apply_reply(parent: str, reply: str) -> tuple[str, str]:
    """(program, how) from a reply of either kind; how is "diff" or "full"."""
    if has_search_replace(reply):
        return apply_search_replace(parent, reply), "diff"
    if extract_code_block(reply) is not None:
        return apply_full_rewrite(parent, reply), "full"
    raise DiffError(
        "the reply has neither SEARCH/REPLACE blocks nor a fenced code block: answer in the "
        "requested format"
    )


def _lines(text: str) -> list[str]:
    return [ln if ln.endswith("\n") else ln + "\n" for ln in text.splitlines(keepends=True)]


def unified_diff(a: str, b: str, a_name: str = "parent", b_name: str = "candidate") -> str:
    """A unified diff of two programs (2 lines of context), "" when they are equal."""
    return "".join(difflib.unified_diff(_lines(a), _lines(b), a_name, b_name, n=2))
