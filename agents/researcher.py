"""The Researcher: turns a parent program (plus inspirations, insights and recent failures) into
a proposed candidate program.

`LLMResearcher` asks a model for SEARCH/REPLACE edits (or a full rewrite), applies them with
the EVOLVE-block frame enforced, and re-asks with the reason when they do not apply or do not
compile. `OfflineResearcher` (agents/offline.py) needs no model. `make_researcher` picks one.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from agents import prompting
from agents.blocks import block_bodies, has_blocks
from agents.diff import apply_reply
from agents.errors import AgentError, DiffError, LLMError, ProposalError
from cognition.records import Candidate, Evaluation, Insight, LLMCall

if TYPE_CHECKING:
    from agents.llm import LLMClient, ReplayClient
    from orchestrator.task import Task

log = logging.getLogger("evoforge.agents")

MAX_FAILURES_SHOWN = 3
MAX_INSPIRATIONS_SHOWN = 3


@dataclass(frozen=True)
class ResearchContext:
    task: Task
    run_id: str
    iteration: int
    rng_seed: int
    parent: Candidate
    inspirations: list[Candidate]
    insights: list[Insight]
    failures: list[tuple[Candidate, Evaluation]]  # recent failures of the run, for the prompt
    parent_feedback: str = ""  # evaluator feedback of the parent
    parent_metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Proposal:
    code: str
    parent_id: str | None
    inspiration_ids: list[str]
    origin: str  # "model:<name>" | "offline:mutate" | "offline:crossover" | ...
    summary: str
    prompt_hash: str | None
    llm_calls: list[LLMCall]


class Researcher(Protocol):
    offline: bool

    async def propose(self, ctx: ResearchContext) -> Proposal: ...

    async def repair(self, ctx: ResearchContext, code: str, error: str) -> Proposal | None: ...


def _language(task: Task) -> str:
    return "python" if _is_python(task) else ""


def _is_python(task: Task) -> bool:
    return str(getattr(task, "program_name", "program.py")).endswith(".py")


def _task_values(task: Task, code: str) -> dict[str, Any]:
    return {
        "task_name": task.name,
        "description": task.spec.description.strip(),
        "metric_key": task.spec.metric.key,
        "direction": task.spec.metric.direction,
        "has_blocks": has_blocks(code),
        "language": _language(task),
    }


def researcher_messages(ctx: ResearchContext, edit_mode: str) -> list[dict[str, str]]:
    """The [system, user] prompt for one proposal."""
    inspirations = [
        {
            "id": c.id,
            "score": prompting.fmt_score(c.score),
            "summary": c.summary[:200],
            "excerpt": prompting.excerpt("\n".join(block_bodies(c.code))),
        }
        for c in ctx.inspirations[:MAX_INSPIRATIONS_SHOWN]
    ]
    failures = [
        {
            "id": c.id,
            "summary": c.summary[:200],
            "status": ev.status,
            "error_tail": prompting.tail(ev.error or ev.feedback or "(no error text)"),
        }
        for c, ev in ctx.failures[-MAX_FAILURES_SHOWN:]
    ]
    insights = [
        {"source": i.source, "confidence": i.confidence, "text": i.text} for i in ctx.insights
    ]
    return prompting.messages(
        "researcher",
        **_task_values(ctx.task, ctx.parent.code),
        parent_code=ctx.parent.code.rstrip("\n"),
        parent_score=prompting.fmt_score(ctx.parent.score),
        parent_metrics=ctx.parent_metrics,
        parent_feedback=ctx.parent_feedback.strip(),
        inspirations=inspirations,
        insights=insights,
        failures=failures,
        edit_mode=edit_mode,
    )


_SUMMARY = re.compile(r"^\s*\**SUMMARY\**\s*:\s*(.+)$", re.I | re.M)


def reply_summary(reply: str) -> str:
    """The model's `SUMMARY:` line, else its first line of prose outside code and diffs."""
    found = _SUMMARY.search(reply)
    if found:
        return found.group(1).strip()[:300]
    in_code = False
    for line in reply.splitlines():
        if line.startswith("```") or line.lstrip().startswith("<<<<<<<"):
            in_code = not in_code if line.startswith("```") else True
            continue
        if not in_code and line.strip():
            return line.strip()[:300]
    return ""


def program_problem(parent: str, code: str, python: bool) -> str | None:
    """Why an applied edit is still unusable (no change, does not compile), or None."""
    if code.strip() == parent.strip():
        return "the edit leaves the program unchanged: propose an actual change"
    if python:
        try:
            compile(code, "program.py", "exec")
        except SyntaxError as exc:
            return f"the edited program does not compile: {exc.msg} at line {exc.lineno}: {(exc.text or '').strip()!r}"
    return None


class LLMResearcher:
    """Proposes candidates with a model; re-asks (at most `max_diff_retries` times) with the
    reason when a reply does not apply, changes nothing, or does not compile.

    `edit_mode` is "diff" (SEARCH/REPLACE), "full" (whole program) or "task" (the task's own
    `edit_mode`). Both kinds of reply are accepted whatever was asked for."""

    offline = False

    def __init__(
        self,
        client: LLMClient | ReplayClient,
        *,
        edit_mode: str = "diff",
        max_diff_retries: int = 2,
    ):
        if edit_mode not in ("diff", "full", "task"):
            raise AgentError(f"edit_mode must be 'diff', 'full' or 'task', got {edit_mode!r}")
        self.client = client
        self.edit_mode = edit_mode
        self.max_diff_retries = max_diff_retries

    def _mode(self, ctx: ResearchContext) -> str:
        return ctx.task.spec.edit_mode if self.edit_mode == "task" else self.edit_mode

    async def propose(self, ctx: ResearchContext) -> Proposal:
        mode = self._mode(ctx)
        msgs = researcher_messages(ctx, mode)
        return await self._converse(ctx, msgs, ctx.parent.code, mode, kind="propose")

    async def repair(self, ctx: ResearchContext, code: str, error: str) -> Proposal | None:
        """A fixed version of `code` (which failed with `error`). Raises ProposalError when no
        usable fix came back."""
        msgs = prompting.messages(
            "repair",
            **_task_values(ctx.task, code),
            code=code.rstrip("\n"),
            error=prompting.tail(error, 30),
        )
        return await self._converse(ctx, msgs, code, "diff", kind="repair")

    async def _converse(
        self, ctx: ResearchContext, msgs: list[dict[str, str]], base: str, mode: str, *, kind: str
    ) -> Proposal:
        first_hash = prompting.prompt_hash(msgs)
        calls: list[LLMCall] = []
        problem = ""
        for _attempt in range(self.max_diff_retries + 1):
            try:
                reply, call = await self.client.chat(msgs, role="researcher", run_id=ctx.run_id)
            except LLMError as exc:
                exc.llm_calls = calls + exc.llm_calls
                raise
            calls.append(call)
            try:
                code, _how = apply_reply(base, reply)
                found = program_problem(base, code, _is_python(ctx.task))
            except DiffError as exc:
                found = str(exc)
            if found is None:
                summary = reply_summary(reply)
                return Proposal(
                    code=code,
                    parent_id=ctx.parent.id,
                    inspiration_ids=[c.id for c in ctx.inspirations[:MAX_INSPIRATIONS_SHOWN]],
                    origin=f"model:{call.model}",
                    summary=f"repair: {summary}" if kind == "repair" else summary,
                    prompt_hash=first_hash,
                    llm_calls=calls,
                )
            problem = found
            log.info("researcher reply unusable (%s), re-asking: %s", kind, problem)
            msgs = msgs + [
                {"role": "assistant", "content": reply},
                {
                    "role": "user",
                    "content": prompting.render("retry_user.j2", reason=problem, edit_mode=mode),
                },
            ]
        raise ProposalError(
            f"no usable {kind} from the model after {len(calls)} replies; last problem: {problem}",
            calls,
        )


def make_researcher(llm: str, *, client: Any = None, seed: int = 0) -> Researcher:
    """ "offline" -> OfflineResearcher (says plainly that no LLM is used); anything else needs
    an LLMClient or ReplayClient in `client`."""
    if llm == "offline":
        from agents.offline import OfflineResearcher  # noqa: PLC0415

        log.warning(
            "Researcher runs WITHOUT an LLM (--llm offline): candidates come from mutating "
            "numeric literals and declared choices inside the EVOLVE blocks, and crossover"
        )
        return OfflineResearcher(seed)
    if client is None:
        raise AgentError(
            f"--llm {llm} needs an LLM client: configure a base_url/model, or use --llm offline"
        )
    return LLMResearcher(client)
