"""`evolve report RUN`: one self-contained HTML file that shows a run at a glance.

The page holds everything it needs: inline CSS, a small hand-written script and the run's data as
one JSON block (no CDN, nothing fetched, so it opens on an air-gapped cluster). The script draws
the plots and the lineage tree as SVG. Data reaches the page only as escaped JSON and the script
only ever writes it with `textContent`, so a candidate's code cannot inject markup or script.

    from orchestrator.report import write_report
    path = write_report(settings, run_id, out)      # run_id None: newest run; out None: run dir
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from orchestrator.config import Settings
from orchestrator.errors import EvoforgeError

ASSETS = Path(__file__).with_name("report_assets")
MAX_TEXT = 4000  # characters of an evaluation's error or feedback kept in the page
MAX_METRIC_CHARS = 300  # a non-scalar metric is shown as JSON cut to this length
MAX_PROMPT_SCAN = 200_000_000  # chars x insights beyond which retrieval counting is skipped
FAILURE_REASONS = 12  # rows of the failure table
TOP_K = 10
LANE_GAP = 2  # iterations kept free in a lane between two branches

_IDS = re.compile(r"\b(cand|run|ins|evt|eval)-[0-9a-f]{6,}(-[0-9a-f]+)?\b")
_NUMS = re.compile(r"\d+(\.\d+)?")
_PATHS = re.compile(r"(/[\w.\-]+)+")


@dataclass(frozen=True)
class Lane:
    """Where a candidate sits in the lineage tree: x = iteration, y = lane."""

    x: int
    y: int


# ---- entry point ---------------------------------------------------------------------------


def write_report(settings: Settings, run_id: str | None, out: Path | None = None) -> Path:
    """Write the HTML report of `run_id` (None: the newest run; a unique prefix works) to `out`
    (default `<run_dir>/<run id>/report.html`) and return its path."""
    from orchestrator.commands.views import _store, resolve_run  # noqa: PLC0415

    store = _store(settings)
    run = resolve_run(store, run_id)
    html = render_html(collect(store, run))
    path = Path(out) if out is not None else Path(settings.run_dir) / run.id / "report.html"
    if path.is_dir():
        path = path / f"report-{run.id}.html"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise EvoforgeError(f"cannot write the report to {path}: {exc}; pass --out PATH") from exc
    return path


def render_html(data: dict[str, Any]) -> str:
    """The page: the template with CSS, script and `data` (as escaped JSON) inlined."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(ASSETS), autoescape=True, undefined=jinja2.StrictUndefined
    )
    css = (ASSETS / "report.css").read_text(encoding="utf-8")
    js = (ASSETS / "report.js").read_text(encoding="utf-8")
    for name, text in (("report.css", css), ("report.js", js)):
        if "</s" in text.lower() or "<!--" in text:  # would end the inline block early
            raise EvoforgeError(f"{ASSETS / name} holds '</s' or '<!--': rewrite it (e.g. '<\\/')")
    return env.get_template("report.html.j2").render(
        run=data["run"], css=css, js=js, data_json=embed_json(data)
    )


def embed_json(data: Any) -> str:
    """JSON safe inside `<script type="application/json">`: no `<`, `>` or `&` survive, so
    no `</script>` or `<!--` in a candidate's code can end the block."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


# ---- data ----------------------------------------------------------------------------------


def collect(store: Any, run: Any) -> dict[str, Any]:
    """Everything the page shows, as plain JSON-able data (finite numbers only)."""
    direction = _direction(run)
    cands = store.candidates_of_run(run.id)
    evals = store.evaluations_of_run(run.id)
    calls = store.llm_calls_of(run.id)
    events = store.events_of(run.id)
    t0 = run.created_at
    evals_by_cand: dict[str, list[Any]] = defaultdict(list)
    for e in evals:
        evals_by_cand[e.candidate_id].append(e)
    lanes = lineage_layout(cands)
    given = _insights_given(events)
    codes: dict[str, int] = {}
    nodes = []
    for c in cands:
        lane = lanes[c.id]
        nodes.append({
            "id": c.id, "it": c.iteration, "p": c.parent_id, "s": _finite(c.score),
            "st": c.status, "state": c.state, "o": c.origin, "sum": c.summary, "isl": c.island,
            "stage": c.stage_reached, "t": round(c.created_at - t0, 3), "x": lane.x, "y": lane.y,
            "code": codes.setdefault(c.code, len(codes)), "diff": c.diff, "image": c.image,
            "insp": list(c.inspiration_ids), "ins": given.get(c.id),
            "evals": [_eval_row(e) for e in sorted(evals_by_cand.get(c.id, []),
                                                   key=lambda e: e.created_at)],
        })
    top = [c.id for c in store.top_candidates(run.id, TOP_K, direction=direction)]
    return {
        "run": _run_row(run),
        "direction": direction,
        "generated_at": time.time(),
        "cands": nodes,
        "codes": list(codes),
        "top": top,
        "failures": failure_breakdown(cands, evals_by_cand),
        "insights": _insights(store, run, calls, events),
        "cost": {
            "llm": [{"t": round(c.created_at - t0, 3), "usd": _finite(c.cost_usd) or 0.0,
                     "tok": c.prompt_tokens + c.completion_tokens, "role": c.role,
                     "model": c.model} for c in sorted(calls, key=lambda c: c.created_at)],
            "evals": [{"t": round(e.created_at - t0, 3), "run_s": _finite(e.runtime_s) or 0.0,
                       "usd": _finite(e.cost_usd) or 0.0, "gpu_s": _finite(e.gpu_seconds) or 0.0}
                      for e in sorted(evals, key=lambda e: e.created_at)],
        },
        "events": [{"t": round(e.created_at - t0, 3), "kind": e.kind,
                    "data": _clip_json(e.data, 400)} for e in events[-200:]],
    }


def _direction(run: Any) -> str:
    try:
        from orchestrator.task import load_task  # noqa: PLC0415

        return load_task(run.task_dir).spec.metric.direction
    except Exception:  # the task folder may be gone; the report still renders
        return str(run.config.get("direction", "maximize"))


def _run_row(run: Any) -> dict[str, Any]:
    row = run.model_dump(mode="json", exclude={"sampler_state", "config"})
    row["config"] = {k: _clip_json(v, 200) for k, v in sorted(run.config.items())}
    for key in ("best_score", "seed_score", "cost_usd", "gpu_seconds"):
        row[key] = _finite(row.get(key))
    return row


def _eval_row(e: Any) -> dict[str, Any]:
    return {
        "stage": e.stage, "seed": e.seed, "st": e.status, "s": _finite(e.score),
        "run_s": _finite(e.runtime_s), "backend": e.backend, "exit": e.exit_code,
        "metrics": {str(k): _metric(v) for k, v in list(e.metrics.items())[:40]},
        "error": _tail(e.error), "feedback": _tail(e.feedback),
    }


def _insights(store: Any, run: Any, calls: list[Any], events: list[Any]) -> dict[str, Any]:
    """Insights learned by this run, and those it could retrieve (priors, people, other runs),
    each with how often it reached the Researcher when that can be told."""
    every = store.insights(task=run.task)
    learned = [i for i in every if i.run_id == run.id]
    available = [i for i in every if i.run_id != run.id and i.created_at <= run.updated_at]
    counts, how = _retrieval_counts(every, calls, events)
    def row(i: Any) -> dict[str, Any]:
        return {"id": i.id, "text": i.text, "src": i.source, "conf": _finite(i.confidence),
                "evidence": list(i.evidence)[:50], "run": i.run_id,
                "t": round(i.created_at - run.created_at, 3), "used": counts.get(i.id)}
    return {"learned": [row(i) for i in learned], "available": [row(i) for i in available],
            "how": how}


def _insights_given(events: list[Any]) -> dict[str, list[str]]:
    """candidate id -> ids of the insights its proposal was given, from the loop's
    `insights_retrieved` events ({"candidate_id": ..., "insight_ids": [...]}) when it records them."""
    given: dict[str, list[str]] = {}
    for e in events:
        if e.kind == "insights_retrieved" and isinstance(e.data.get("candidate_id"), str):
            given[e.data["candidate_id"]] = [str(x) for x in e.data.get("insight_ids", [])][:50]
    return given


def _retrieval_counts(
    insights: list[Any], calls: list[Any], events: list[Any]
) -> tuple[dict[str, int], str]:
    """How many proposals saw each insight: from `insights_retrieved` events when the loop
    records them, else by finding the insight's text in the Researcher's prompts."""
    recorded = [e for e in events if e.kind == "insights_retrieved"]
    if recorded:
        counts: Counter[str] = Counter()
        for e in recorded:
            counts.update(str(x) for x in e.data.get("insight_ids", []))
        return dict(counts), "recorded"
    prompts = ["\n".join(str(m.get("content", "")) for m in c.prompt)
               for c in calls if c.role == "researcher"]
    if not prompts:
        return {}, "none"
    if sum(map(len, prompts)) * max(1, len(insights)) > MAX_PROMPT_SCAN:
        return {}, "skipped"
    return {i.id: sum(i.text in p for p in prompts) for i in insights if i.text}, "prompts"


def failure_breakdown(
    cands: list[Any], evals_by_cand: dict[str, list[Any]]
) -> list[dict[str, Any]]:
    """Failed and rejected candidates grouped by (kind, normalised reason), most common first."""
    groups: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for c in cands:
        if c.state == "rejected":
            groups[("rejected", "", _normalise(c.summary) or "rejected")].append(c.id)
            continue
        if c.status in (None, "ok"):
            continue
        bad = [e for e in evals_by_cand.get(c.id, []) if e.status != "ok"]
        last = bad[-1] if bad else None
        reason = _reason(last.error or last.feedback if last else "") or f"{c.status}"
        groups[(c.status, last.stage if last else (c.stage_reached or ""), reason)].append(c.id)
    rows = [{"kind": k, "stage": stage, "reason": reason, "n": len(ids), "ids": ids[:20]}
            for (k, stage, reason), ids in groups.items()]
    return sorted(rows, key=lambda r: (-r["n"], r["kind"], r["reason"]))


def _reason(text: str) -> str:
    """The line of an error that says what went wrong (a traceback's last line)."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return _normalise(lines[-1]) if lines else ""


def _normalise(line: str) -> str:
    line = _IDS.sub(lambda m: m.group(1) + "-…", line)
    line = _PATHS.sub("/…", line)
    return _NUMS.sub("N", line)[:160]


# ---- lineage layout --------------------------------------------------------------------------


def lineage_layout(cands: Iterable[Any]) -> dict[str, Lane]:
    """x = iteration; y = a lane, like a git graph: a node's largest child branch continues its
    lane, other branches take the free lane nearest their parent's, so the height is the number
    of branches alive at once, not the number of leaves. O(n * lanes)."""
    cands = list(cands)
    by_id = {c.id: c for c in cands}
    children: dict[str | None, list[Any]] = defaultdict(list)
    for c in cands:
        children[c.parent_id if c.parent_id in by_id else None].append(c)
    size: dict[str, int] = {}
    order: list[Any] = []  # pre-order, iteratively (lineages can be thousands deep)
    stack = sorted(children[None], key=lambda c: (c.iteration, c.id), reverse=True)
    while stack:
        c = stack.pop()
        order.append(c)
        stack.extend(sorted(children[c.id], key=lambda k: (k.iteration, k.id), reverse=True))
    for c in reversed(order):
        size[c.id] = 1 + sum(size[k.id] for k in children[c.id])
    heir = {c.id: max(children[c.id], key=lambda k: (size[k.id], -k.iteration)).id
            for c in order if children[c.id]}
    busy: list[list[tuple[int, int]]] = []  # per lane: occupied [start, end] iteration spans
    lanes: dict[str, Lane] = {}
    for c in order:
        parent = by_id.get(c.parent_id) if c.parent_id else None
        if parent is not None and heir.get(parent.id) == c.id:
            lanes[c.id] = Lane(c.iteration, lanes[parent.id].y)
            continue
        chain = [c]
        while chain[-1].id in heir:
            chain.append(by_id[heir[chain[-1].id]])
        # the branch holds its lane from just before its first node to its last one; the
        # gap keeps it from reading as the continuation of a branch that ended there
        span = (c.iteration - LANE_GAP, max(k.iteration for k in chain))
        want = lanes[parent.id].y if parent is not None else 0
        y = _free_lane(busy, span, want)
        lanes[c.id] = Lane(c.iteration, y)
    for c in cands:  # unreachable from a root (a parent cycle in damaged data): own lane
        if c.id not in lanes:
            lanes[c.id] = Lane(c.iteration, _free_lane(busy, (c.iteration - LANE_GAP, c.iteration), 0))
    return lanes


def _free_lane(busy: list[list[tuple[int, int]]], span: tuple[int, int], want: int) -> int:
    lo, hi = span
    for dist in range(len(busy) + 1):
        for y in (want + dist, want - dist) if dist else (want,):
            if 0 <= y < len(busy) and all(hi < a or lo > b for a, b in busy[y]):
                busy[y].append(span)
                return y
    busy.append([span])
    return len(busy) - 1


# ---- small helpers -------------------------------------------------------------------------


def _finite(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return float(x) if math.isfinite(x) else None


def _tail(text: str) -> str:
    return text if len(text) <= MAX_TEXT else "…" + text[-MAX_TEXT:]


def _metric(v: Any) -> Any:
    if isinstance(v, bool) or v is None or isinstance(v, str) and len(v) <= MAX_METRIC_CHARS:
        return v
    if isinstance(v, int | float):
        return _finite(v) if isinstance(v, float) else v
    return _clip_json(v, MAX_METRIC_CHARS)


def _clip_json(v: Any, limit: int) -> Any:
    """Scalars as they are (non-finite floats as None); anything else as JSON text, cut."""
    if isinstance(v, float):
        return _finite(v)
    if v is None or isinstance(v, bool | int) or isinstance(v, str) and len(v) <= limit:
        return v
    text = v if isinstance(v, str) else json.dumps(v, default=str)
    return text if len(text) <= limit else text[:limit] + "…"
