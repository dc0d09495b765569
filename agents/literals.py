"""Mutable sites of a program: numeric literals and declared alternatives inside EVOLVE blocks.

A site is a literal the offline operators may change:
- a numeric literal (int or float) on an evolvable line, except inside a subscript (`x[0]`);
- the literal of a line that ends with `# evolve: choices [a, b, c]` (a Python list literal),
  which is swapped for another choice.
A line with `# evolve: fixed` is left alone; `# evolve: range [lo, hi]` bounds its numbers.

Sites are named after the assignment, keyword or dict key they sit in ("THRESHOLD", "lr",
"L12" when there is none), and `literal_edits` describes how two programs differ in these
names ("THRESHOLD 0.3->0.42"), which the offline Analyzer aggregates.
"""

from __future__ import annotations

import ast
import difflib
import io
import keyword
import re
import tokenize
from dataclasses import dataclass, replace
from typing import Any, Literal

from agents.blocks import evolvable_lines

SiteKind = Literal["int", "float", "choice"]

_DIRECTIVE = re.compile(r"#\s*evolve:\s*(choices|range|fixed)\b\s*(.*)$")
_NUMBER = re.compile(
    r"(?<![\w.])(?:\d[\d_]*\.?[\d_]*(?:[eE][+-]?\d+)?|\.\d[\d_]*(?:[eE][+-]?\d+)?)(?![\w.])"
)
_DIRECT_NAME = re.compile(r"([A-Za-z_][\w.]*)\s*(?::\s*[\w.\[\], |]+)?\s*=\s*-?\s*$")
_DIRECT_KEY = re.compile(r"[\"']([\w\-. ]+)[\"']\s*:\s*-?\s*$")
_STATEMENT_TARGET = re.compile(r"\s*([A-Za-z_][\w.]*)\s*(?::[^=]*)?(?:[+\-*/]?=)(?!=)")
_CONSTANT_LINE = re.compile(
    r"^\s*[A-Za-z_][\w.]*\s*(?::[^=]+)?=\s*-?\s*[\d.][\w.+-]*\s*,?\s*(?:#.*)?$"
)
_DICT_ENTRY = re.compile(r"^\s*[\"'][\w\-. ]+[\"']\s*:\s*-?\s*[\d.][\w.+-]*\s*,?\s*(?:#.*)?$")
_DEF_LINE = re.compile(r"^\s*(?:async\s+)?def\s")
_STRUCTURAL_KEYWORDS = {"axis", "dim", "ndim", "keepdims", "ord", "endpoint", "ndmin", "axes"}
_STRING = re.compile(r"(?:[rbuRBU]{0,2})(\"[^\"\n]*\"|'[^'\n]*')")


@dataclass(frozen=True)
class Site:
    line: int  # 0-based
    col: int
    end_col: int
    text: str
    kind: SiteKind
    name: str
    choices: tuple[Any, ...] = ()
    bounds: tuple[float, float] | None = None
    negated: bool = False  # a unary minus precedes the literal
    weight: float = 1.0  # how often operators pick it (tunable constants over plumbing)


@dataclass(frozen=True)
class Directive:
    kind: str  # "choices" | "range" | "fixed"
    value: Any = None


@dataclass(frozen=True)
class Edit:
    """One literal that differs between two programs."""

    name: str
    old: Any
    new: Any

    @property
    def numeric(self) -> bool:
        return all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in (self.old, self.new)
        )

    def __str__(self) -> str:
        return f"{self.name} {self.old!r}->{self.new!r}"


def directives(line: str) -> Directive | None:
    """The `# evolve: ...` directive of a line, or None (malformed ones are ignored)."""
    m = _DIRECTIVE.search(line)
    if m is None:
        return None
    kind, rest = m.group(1), m.group(2).strip()
    if kind == "fixed":
        return Directive("fixed")
    try:
        value = ast.literal_eval(rest)
    except (ValueError, SyntaxError):
        return None
    if kind == "choices" and isinstance(value, list | tuple) and len(value) >= 2:
        return Directive("choices", tuple(value))
    if (
        kind == "range"
        and isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int | float) for v in value)
        and value[0] < value[1]
    ):
        return Directive("range", (float(value[0]), float(value[1])))
    return None


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _name_for(prefix: str, line_no: int) -> str:
    """What a literal is called: the keyword or target right before it (`alpha=`, `X = `), the
    dict key right before it, the target of its statement, else its line ("L12")."""
    for pattern in (_DIRECT_NAME, _DIRECT_KEY):
        m = pattern.search(prefix)
        if m:
            return m.group(1)
    m = _STATEMENT_TARGET.match(prefix)
    return m.group(1) if m else f"L{line_no + 1}"


def _numeric_kind(text: str) -> SiteKind | None:
    low = text.lower().replace("_", "")
    if low.endswith("j") or low.startswith(("0x", "0o", "0b")):
        return None
    if "." in low or "e" in low:
        return "float"
    if len(low) > 1 and low.startswith("0"):
        return None
    return "int"


def _tokens(code: str) -> list[tokenize.TokenInfo] | None:
    try:
        return list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None


def _choice_site(line: str, line_no: int, choices: tuple[Any, ...]) -> Site | None:
    code_part = line[: _DIRECTIVE.search(line).start()]  # type: ignore[union-attr]
    spans = [(m.start(), m.end()) for m in _STRING.finditer(code_part)]
    spans += [(m.start(), m.end()) for m in _NUMBER.finditer(code_part)]
    spans += [(m.start(), m.end()) for m in re.finditer(r"\b(True|False|None)\b", code_part)]
    for start, end in sorted(spans):
        try:
            value = ast.literal_eval(code_part[start:end])
        except (ValueError, SyntaxError):
            continue
        if any(_same(value, c) for c in choices):
            return Site(
                line_no,
                start,
                end,
                code_part[start:end],
                "choice",
                _name_for(code_part[:start], line_no),
                choices,
            )
    return None


def find_sites(code: str) -> list[Site]:
    """Every mutable site of `code`, in reading order, inside the EVOLVE blocks only."""
    lines = code.splitlines()
    allowed = evolvable_lines(code)
    notes = {i: directives(lines[i]) for i in allowed if i < len(lines) and "evolve:" in lines[i]}
    sites: list[Site] = []
    for i, note in notes.items():
        if note is not None and note.kind == "choices":
            site = _choice_site(lines[i], i, note.value)
            if site is not None:
                sites.append(site)
    skip = {i for i, n in notes.items() if n is not None and n.kind in ("choices", "fixed")}
    toks = _tokens(code)
    numbers: list[
        tuple[int, int, int, str, bool, str]
    ] = []  # line, col, end, text, negated, prev op
    if toks is not None:
        stack: list[bool] = []  # per open bracket: is it a subscript?
        prev: tokenize.TokenInfo | None = None
        prev2: tokenize.TokenInfo | None = None
        for tok in toks:
            if tok.type == tokenize.OP and tok.string in "([{":
                sub = (
                    tok.string == "["
                    and prev is not None
                    and (
                        (prev.type == tokenize.NAME and not keyword.iskeyword(prev.string))
                        or prev.type == tokenize.STRING
                        or prev.string in (")", "]")
                    )
                )
                stack.append(sub)
            elif tok.type == tokenize.OP and tok.string in ")]}" and stack:
                stack.pop()
            elif tok.type == tokenize.NUMBER and not (stack and stack[-1]):
                negated = (
                    prev is not None
                    and prev.string == "-"
                    and (
                        prev2 is None
                        or prev2.type == tokenize.OP
                        or prev2.string in ("return", "in", "else")
                    )
                )
                before = prev2 if negated else prev
                op = before.string if before is not None and before.type == tokenize.OP else ""
                numbers.append(
                    (tok.start[0] - 1, tok.start[1], tok.end[1], tok.string, negated, op)
                )
            if tok.type not in (
                tokenize.NL,
                tokenize.NEWLINE,
                tokenize.COMMENT,
                tokenize.INDENT,
                tokenize.DEDENT,
            ):
                prev2, prev = prev, tok
    else:  # not Python: plain scan of number-looking words
        for i, line in enumerate(lines):
            for m in _NUMBER.finditer(line.split("#", 1)[0]):
                numbers.append((i, m.start(), m.end(), m.group(0), False, ""))
    for line_no, col, end, text, negated, op in numbers:
        if line_no not in allowed or line_no in skip:
            continue
        kind = _numeric_kind(text)
        if kind is None:
            continue
        note = notes.get(line_no)
        bounds = note.value if note is not None and note.kind == "range" and not negated else None
        name = _name_for(lines[line_no][:col], line_no)
        weight = 1.0 if bounds is not None else _site_weight(lines[line_no], name, text, op)
        if weight <= 0:
            continue
        sites.append(
            Site(
                line_no,
                col,
                end,
                text,
                kind,
                name,
                bounds=bounds,
                negated=negated,
                weight=weight,
            )
        )
    sites.sort(key=lambda s: (s.line, s.col))
    return _unique_names(sites)


def _site_weight(line: str, name: str, text: str, op: str) -> float:
    """Tunable constants (`NAME = 0.3`, a config dict entry) are picked far more often than
    literals inside expressions (`2 * n`, `x ** 2`, `1 - p`); `axis=1` and the like never."""
    if name.split("#")[0] in _STRUCTURAL_KEYWORDS or _DEF_LINE.match(line):
        return 0.0  # default arguments are the program's interface, not its knobs
    try:
        tiny = 0 < abs(float(text.replace("_", ""))) < 1e-6
    except ValueError:
        tiny = False
    if tiny:
        return 0.05  # a numerical guard (1e-12), rarely a knob
    if _CONSTANT_LINE.match(line) or _DICT_ENTRY.match(line):
        return 1.0
    if op == "**" or (op not in ("=", ":") and text in ("0", "1", "2", "0.0", "1.0", "2.0")):
        return 0.05
    if op == ":" and not name.startswith("L"):  # an entry of an inline config dict
        return 0.8
    return 0.3 if op == "=" else 0.15


def _unique_names(sites: list[Site]) -> list[Site]:
    seen: dict[str, int] = {}
    out = []
    for s in sites:
        seen[s.name] = seen.get(s.name, 0) + 1
        if seen[s.name] > 1:
            s = replace(s, name=f"{s.name}#{seen[s.name]}")
        out.append(s)
    return out


def literal_value(site: Site) -> Any:
    try:
        return ast.literal_eval(site.text.replace("_", "") if site.kind != "choice" else site.text)
    except (ValueError, SyntaxError):
        return site.text


def skeleton(line: str) -> str:
    """A line with its literals blanked, for aligning two versions of a program."""
    note = directives(line)
    if note is not None and note.kind == "choices":
        line = _STRING.sub("'_'", line)
        line = re.sub(r"\b(True|False|None)\b", "_", line)
    return _NUMBER.sub("0", line).rstrip()


def literal_edits(old: str, new: str) -> list[Edit]:
    """How `new` differs from `old` in named literals (structural changes are not listed)."""
    old_lines, new_lines = old.splitlines(), new.splitlines()
    old_sites, new_sites = _by_line(find_sites(old)), _by_line(find_sites(new))
    matcher = difflib.SequenceMatcher(
        a=[skeleton(x) for x in old_lines], b=[skeleton(x) for x in new_lines], autojunk=False
    )
    edits: list[Edit] = []
    for tag, i1, i2, j1, _j2 in matcher.get_opcodes():
        if tag != "equal":
            continue
        for k in range(i2 - i1):
            a, b = i1 + k, j1 + k
            if old_lines[a] == new_lines[b]:
                continue
            sa, sb = old_sites.get(a, []), new_sites.get(b, [])
            if len(sa) != len(sb):
                continue
            for x, y in zip(sa, sb, strict=True):
                vx, vy = literal_value(x), literal_value(y)
                if x.negated and isinstance(vx, int | float):
                    vx = -vx
                if y.negated and isinstance(vy, int | float):
                    vy = -vy
                if not _same(vx, vy):
                    edits.append(Edit(y.name, vx, vy))
    return edits


def _by_line(sites: list[Site]) -> dict[int, list[Site]]:
    out: dict[int, list[Site]] = {}
    for s in sites:
        out.setdefault(s.line, []).append(s)
    return out
