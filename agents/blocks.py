"""EVOLVE blocks: the regions of a program between `# EVOLVE-BLOCK-START` and `# EVOLVE-BLOCK-END`.

A program without markers is evolvable as a whole. Spans are half-open line ranges
(0-based) of the lines *between* the markers, and half-open character ranges of the same text,
so both line-level (offline operators) and character-level (diff application) code can ask
"is this edit inside a block?".
"""

from __future__ import annotations

from dataclasses import dataclass

EVOLVE_START = "# EVOLVE-BLOCK-START"
EVOLVE_END = "# EVOLVE-BLOCK-END"


@dataclass(frozen=True)
class Block:
    """Lines [line_start, line_end) and characters [char_start, char_end) of one block body."""

    line_start: int
    line_end: int
    char_start: int
    char_end: int


def has_blocks(code: str) -> bool:
    return EVOLVE_START in code


def find_blocks(code: str) -> list[Block]:
    """The EVOLVE block bodies of `code`; the whole program when it has no markers.

    An unterminated START runs to the end of the program (the same reading OpenEvolve has).
    """
    lines = code.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    if not has_blocks(code):
        return [Block(0, len(lines), 0, len(code))]
    blocks: list[Block] = []
    start: int | None = None
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(EVOLVE_START):
            start = i + 1
        elif stripped.startswith(EVOLVE_END) and start is not None:
            blocks.append(Block(start, i, offsets[start], offsets[i]))
            start = None
    if start is not None:
        blocks.append(Block(start, len(lines), offsets[start], len(code)))
    return blocks


def evolvable_lines(code: str) -> set[int]:
    """0-based indices of the lines an operator may change."""
    return {i for b in find_blocks(code) for i in range(b.line_start, b.line_end)}


def outside_text(code: str) -> list[str]:
    """The text outside the blocks (markers included), one entry per gap, trailing spaces
    stripped per line, so two programs can be compared for "same frame, new block bodies"."""
    if not has_blocks(code):
        return []
    parts: list[str] = []
    pos = 0
    for b in find_blocks(code):
        parts.append(code[pos : b.char_start])
        pos = b.char_end
    parts.append(code[pos:])
    return ["\n".join(ln.rstrip() for ln in p.strip("\n").splitlines()) for p in parts]


def block_bodies(code: str) -> list[str]:
    return [code[b.char_start : b.char_end] for b in find_blocks(code)]


def frame_violation(parent: str, child: str) -> str | None:
    """Why `child` may not replace `parent` (it changed code outside the EVOLVE blocks), or None."""
    if not has_blocks(parent):
        return None
    if not has_blocks(child):
        return "the new program dropped the EVOLVE-BLOCK markers"
    before, after = outside_text(parent), outside_text(child)
    if len(before) != len(after):
        return (
            f"the new program has {len(after) - 1} EVOLVE blocks, the parent has "
            f"{len(before) - 1}: keep the markers as they are"
        )
    for i, (a, b) in enumerate(zip(before, after, strict=True)):
        if a != b:
            where = "before the first block" if i == 0 else f"after EVOLVE block {i}"
            first = next(
                (
                    x
                    for x, y in zip(a.splitlines() + [""], b.splitlines() + [""], strict=False)
                    if x != y
                ),
                "",
            )
            return (
                f"code outside the EVOLVE blocks changed ({where}, near {first.strip()[:80]!r}): "
                "only edit between # EVOLVE-BLOCK-START and # EVOLVE-BLOCK-END"
            )
    return None


def splice_single_block(parent: str, body: str) -> str | None:
    """Put `body` into the parent's only EVOLVE block; None when it has not exactly one."""
    blocks = find_blocks(parent)
    if not has_blocks(parent) or len(blocks) != 1:
        return None
    b = blocks[0]
    if body and not body.endswith("\n"):
        body += "\n"
    return parent[: b.char_start] + body + parent[b.char_end :]
