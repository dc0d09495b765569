"""The Analyzer: after a candidate is evaluated, compare it with its parent and the best, and
write reusable insights.

`OfflineAnalyzer` needs no model: it reads the literal edits of every (child, parent) pair of
the run's history ("THRESHOLD 0.3->0.42"), aggregates how each kind of edit moved the score,
and reports an edit only when the evidence is consistent (e.g. "raising THRESHOLD improved the
score in 5 of 6 children, mean +0.012"); it also reports failures that recur with the same
error line. At most MAX_INSIGHTS_PER_CALL per call, each re-stated only when its evidence has
doubled. `LLMAnalyzer` asks a model for JSON and parses it tolerantly.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from statistics import mean
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from agents import prompting
from agents.diff import unified_diff
from agents.errors import AgentError
from agents.literals import Edit, literal_edits
from cognition.records import Candidate, Evaluation, Insight, LLMCall, new_id

if TYPE_CHECKING:
    from orchestrator.task import Task

MAX_INSIGHTS_PER_CALL = 2
MIN_EVIDENCE = 3  # children with the same kind of edit before an effect is claimed
CONSISTENCY = 0.75  # share of those children that must agree on the direction
MIN_RECURRENCE = 2  # failures with the same error line before it is reported
MAX_LLM_INSIGHTS = 3
HISTORY_SHOWN = 8
_FAILED = ("error", "timeout", "oom", "invalid")


@dataclass(frozen=True)
class AnalysisContext:
    task: Task
    run_id: str
    candidate: Candidate
    evaluations: list[Evaluation]
    parent: Candidate | None
    best: Candidate | None
    history: list[Candidate]  # done candidates of the run, oldest first


@dataclass(frozen=True)
class Analysis:
    summary: str
    insights: list[Insight]
    llm_calls: list[LLMCall] = field(default_factory=list)


def _gain(task: Task, child: float, parent: float) -> float:
    """Positive when the child is better, whatever the metric's direction."""
    return child - parent if task.spec.metric.direction == "maximize" else parent - child


def _edit_key(edit: Edit) -> tuple[str, str]:
    """Edits of the same kind: ("THRESHOLD", "raise"), or ("MODE", "='margin'")."""
    if edit.numeric:
        return edit.name, "raise" if edit.new > edit.old else "lower"
    return edit.name, f"={edit.new!r}"


def error_line(evaluations: list[Evaluation]) -> str:
    """The last meaningful line of a failed evaluation's error, with volatile parts blanked."""
    for ev in evaluations:
        if ev.status in _FAILED:
            text = ev.error or ev.feedback or ev.status
            lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
            line = lines[-1] if lines else ev.status
            line = re.sub(r"0x[0-9a-f]+", "0x?", line)
            line = re.sub(r'File "[^"]+", line \d+', "File ?", line)
            return line[:200]
    return ""


def _summary(ctx: AnalysisContext, edits: list[Edit]) -> str:
    cand = ctx.candidate
    if cand.score is None or cand.status not in (None, "ok"):
        what = error_line(ctx.evaluations) or (cand.status or "no score")
        return f"{cand.id} failed ({cand.status}): {what}"
    parts = [f"{cand.id} scored {prompting.fmt_score(cand.score)}"]
    if ctx.parent is not None and ctx.parent.score is not None:
        parts.append(
            f"parent {prompting.fmt_score(ctx.parent.score)} ({_gain(ctx.task, cand.score, ctx.parent.score):+.4g})"
        )
    if ctx.best is not None and ctx.best.score is not None:
        parts.append(f"best {prompting.fmt_score(ctx.best.score)}")
    text = ", ".join(parts)
    if edits:
        text += "; edits: " + "; ".join(str(e) for e in edits[:5])
    return text


class OfflineAnalyzer:
    """Statistical insights from the run's history; no model. Keeps a little state (what it
    already said, which errors it saw) so it does not repeat itself."""

    def __init__(self) -> None:
        self._said: dict[tuple[str, ...], int] = {}  # insight key -> evidence count when said
        self._failures: dict[str, list[str]] = {}  # error line -> candidate ids
        # child id -> its literal edits against its parent, computed once: the history the
        # loop passes may carry records without code (a long run does not keep every program).
        self._edits: dict[str, list[Edit]] = {}

    def _edits_of(self, child: Candidate, parent: Candidate) -> list[Edit]:
        cached = self._edits.get(child.id)
        if cached is None:
            if not child.code or not parent.code:
                return []
            cached = self._edits[child.id] = literal_edits(parent.code, child.code)
        return cached

    def _worth_saying(self, key: tuple[str, ...], n: int) -> bool:
        before = self._said.get(key)
        return before is None or n >= before * 2

    async def analyze(self, ctx: AnalysisContext) -> Analysis:
        return self.analyze_sync(ctx)

    def analyze_sync(self, ctx: AnalysisContext) -> Analysis:
        edits = self._edits_of(ctx.candidate, ctx.parent) if ctx.parent is not None else []
        insights: list[Insight] = []
        failure = self._failure_insight(ctx)
        if failure is not None:
            insights.append(failure)
        insights += self._edit_insights(ctx, edits)[: MAX_INSIGHTS_PER_CALL - len(insights)]
        return Analysis(summary=_summary(ctx, edits), insights=insights, llm_calls=[])

    def _edit_effects(
        self, ctx: AnalysisContext
    ) -> dict[tuple[str, str], list[tuple[str, float, Edit]]]:
        by_id = {c.id: c for c in ctx.history}
        by_id[ctx.candidate.id] = ctx.candidate
        effects: dict[tuple[str, str], list[tuple[str, float, Edit]]] = {}
        for child in by_id.values():
            parent = by_id.get(child.parent_id or "")
            if parent is None or child.score is None or parent.score is None:
                continue
            if child.status not in (None, "ok"):
                continue
            gain = _gain(ctx.task, child.score, parent.score)
            for edit in self._edits_of(child, parent):
                effects.setdefault(_edit_key(edit), []).append((child.id, gain, edit))
        return effects

    def _edit_insights(self, ctx: AnalysisContext, edits: list[Edit]) -> list[Insight]:
        effects = self._edit_effects(ctx)
        found: list[tuple[float, Insight]] = []
        for key in dict.fromkeys(_edit_key(e) for e in edits):
            rows = effects.get(key, [])
            n = len(rows)
            better = sum(1 for _, g, _ in rows if g > 0)
            worse = sum(1 for _, g, _ in rows if g < 0)
            if n < MIN_EVIDENCE or not self._worth_saying(("edit",) + key, n):
                continue
            if better / n >= CONSISTENCY:
                verdict, k = "improved", better
            elif worse / n >= CONSISTENCY:
                verdict, k = "worsened", worse
            else:
                continue
            name, how = key
            gains = [g for _, g, _ in rows]
            if how in ("raise", "lower"):
                values = sorted(e.new for _, _, e in rows)
                what = f"{'raising' if how == 'raise' else 'lowering'} {name} (to {values[0]:.4g}..{values[-1]:.4g})"
            else:
                what = f"setting {name} to {how[1:]}"
            text = (
                f"{what} {verdict} the score in {k} of {n} children, mean {mean(gains):+.4g} "
                f"({ctx.task.spec.metric.key}, {ctx.task.spec.metric.direction})"
            )
            confidence = round((k + 1) / (n + 2), 3)
            self._said[("edit",) + key] = n
            found.append(
                (
                    confidence,
                    Insight(
                        id=new_id("ins"),
                        text=text,
                        claim=f"{how} {name}: {verdict}",
                        task=ctx.task.name,
                        source="analyzer",
                        evidence=[cid for cid, _, _ in rows][-12:],
                        confidence=confidence,
                        run_id=ctx.run_id,
                        tags=["offline", "edit-effect", name],
                    ),
                )
            )
        found.sort(key=lambda x: -x[0])
        return [ins for _, ins in found]

    def _failure_insight(self, ctx: AnalysisContext) -> Insight | None:
        line = error_line(ctx.evaluations)
        if not line:
            return None
        ids = self._failures.setdefault(line, [])
        if ctx.candidate.id not in ids:
            ids.append(ctx.candidate.id)
        n = len(ids)
        if n < MIN_RECURRENCE or not self._worth_saying(("fail", line), n):
            return None
        self._said[("fail", line)] = n
        common = ""
        if ctx.parent is not None:
            names = [e.name for e in self._edits_of(ctx.candidate, ctx.parent)]
            if names:
                common = f"; the latest came after editing {', '.join(names[:3])}"
        return Insight(
            id=new_id("ins"),
            text=f"the failure {line!r} recurred in {n} candidates{common}",
            claim=f"recurring failure: {line}",
            task=ctx.task.name,
            source="analyzer",
            evidence=ids[-12:],
            confidence=round(min(0.95, 1 - 1 / (n + 1)), 3),
            run_id=ctx.run_id,
            tags=["offline", "failure"],
        )


class _LLMInsight(BaseModel):
    model_config = ConfigDict(extra="ignore")
    claim: str
    evidence: str = ""
    confidence: float = 0.5

    @field_validator("evidence", mode="before")
    @classmethod
    def _text(cls, v: Any) -> str:
        if isinstance(v, list):
            return "; ".join(str(x) for x in v)
        return "" if v is None else str(v)

    @field_validator("confidence", mode="before")
    @classmethod
    def _clip(cls, v: Any) -> float:
        try:
            x = float(v)
        except (TypeError, ValueError):
            return 0.5
        if x > 1 and x <= 100:  # a percentage
            x /= 100
        return min(max(x, 0.0), 1.0)


class _LLMReply(BaseModel):
    model_config = ConfigDict(extra="ignore")
    summary: str = ""
    insights: list[_LLMInsight] = []


def _json_object(text: str) -> dict[str, Any] | None:
    """The JSON object of a reply: a fenced ```json block, the whole reply, or the outermost
    {...} in it."""
    fenced = re.search(r"```(?:json)?\s*\n(.*?)```", text, re.S)
    tries = [fenced.group(1)] if fenced else []
    tries.append(text)
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        tries.append(text[start : end + 1])
    for t in tries:
        try:
            value = json.loads(t)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def parse_analysis(text: str) -> tuple[str, list[_LLMInsight], str]:
    """(summary, insights, problem) from a model reply; problem is "" when it parsed."""
    obj = _json_object(text)
    if obj is None:
        return "", [], "the reply was not a JSON object"
    items = obj.get("insights")
    if isinstance(items, list):
        obj["insights"] = [
            {"claim": x} if isinstance(x, str) else x for x in items if isinstance(x, dict | str)
        ]
    try:
        reply = _LLMReply.model_validate(obj)
    except ValidationError as exc:
        return "", [], f"the JSON did not have the expected fields ({exc.error_count()} problems)"
    return reply.summary, [i for i in reply.insights if i.claim.strip()], ""


class LLMAnalyzer:
    """Insights written by a model from the experiment and the run's recent history."""

    def __init__(self, client: Any):
        self.client = client

    def messages(self, ctx: AnalysisContext) -> list[dict[str, str]]:
        cand = ctx.candidate
        parent_code = ctx.parent.code if ctx.parent is not None else ""
        return prompting.messages(
            "analyzer",
            task_name=ctx.task.name,
            metric_key=ctx.task.spec.metric.key,
            direction=ctx.task.spec.metric.direction,
            candidate_id=cand.id,
            status=cand.status or "n/a",
            score=prompting.fmt_score(cand.score),
            parent_score=prompting.fmt_score(ctx.parent.score if ctx.parent else None),
            best_score=prompting.fmt_score(ctx.best.score if ctx.best else None),
            summary=cand.summary[:300],
            diff=prompting.excerpt(cand.diff or unified_diff(parent_code, cand.code), 120),
            evaluations=[
                {
                    "stage": ev.stage,
                    "seed": ev.seed,
                    "status": ev.status,
                    "score": prompting.fmt_score(ev.score),
                    "metrics": {k: v for k, v in list(ev.metrics.items())[:8]},
                    "feedback": prompting.tail(ev.feedback, 5),
                    "error": prompting.tail(ev.error, 5),
                }
                for ev in ctx.evaluations
            ],
            history=[
                {
                    "id": h.id,
                    "status": h.status or "n/a",
                    "score": prompting.fmt_score(h.score),
                    "summary": h.summary[:120],
                }
                for h in ctx.history[-HISTORY_SHOWN:]
            ],
        )

    async def analyze(self, ctx: AnalysisContext) -> Analysis:
        msgs = self.messages(ctx)
        text, call = await self.client.chat(
            msgs, role="analyzer", run_id=ctx.run_id, candidate_id=ctx.candidate.id
        )
        summary, items, problem = parse_analysis(text)
        if problem:
            return Analysis(
                summary=f"analyzer reply unusable: {problem}", insights=[], llm_calls=[call]
            )
        known = {c.id for c in ctx.history} | {ctx.candidate.id}
        insights = []
        for item in items[:MAX_LLM_INSIGHTS]:
            cited = [
                cid
                for cid in re.findall(r"[a-z]+-[0-9a-f]{13}-[0-9a-f]{8}", item.evidence)
                if cid in known
            ]
            evidence = list(dict.fromkeys([ctx.candidate.id] + cited))
            text_ = item.claim.strip() + (
                f" (evidence: {item.evidence.strip()})" if item.evidence.strip() else ""
            )
            insights.append(
                Insight(
                    id=new_id("ins"),
                    text=text_,
                    claim=item.claim.strip(),
                    task=ctx.task.name,
                    source="analyzer",
                    evidence=evidence,
                    confidence=item.confidence,
                    run_id=ctx.run_id,
                    tags=["llm"],
                )
            )
        return Analysis(
            summary=summary.strip() or f"{len(insights)} insights",
            insights=insights,
            llm_calls=[call],
        )


def make_analyzer(llm: str, client: Any = None) -> OfflineAnalyzer | LLMAnalyzer:
    """ "offline" -> OfflineAnalyzer; anything else needs an LLMClient or ReplayClient."""
    if llm == "offline":
        return OfflineAnalyzer()
    if client is None:
        raise AgentError(f"--llm {llm} needs an LLM client for the Analyzer, or use --llm offline")
    return LLMAnalyzer(client)
