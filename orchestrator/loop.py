"""The evolution loop: propose -> evaluate -> analyse -> commit, pipelined with asyncio.

Shape of one run, visible top to bottom here:

    proposers (K)  --bounded queue-->  evaluators (N slots)  --one txn per iteration-->  store

Determinism and crash safety come from three rules:

1. Iteration `i` chooses its parent from the candidates of iterations `<= i - LAG`, all of them
   finished, added to the sampler in iteration order, with an rng seeded by (run seed, i).
   Selection therefore does not depend on timing, and a resumed run makes the same choices.
2. Proposals are stored (with the LLM calls that made them) in iteration order, so what is
   stored is always a prefix; a proposal lost in a crash is made again, identically offline.
3. A candidate's evaluations, its final state, the insights about it and the run's counters
   commit in ONE transaction. A candidate stored as proposed but not finished is re-queued on
   resume; none is evaluated twice in the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.analyzer import AnalysisContext
from agents.diff import unified_diff
from agents.engineer import Engineer, EngineeringResult, mean_metrics
from agents.errors import LLMBudgetExceeded, LLMError, ProposalError
from agents.researcher import Proposal, ResearchContext
from cognition.records import Candidate, Evaluation, Event, Insight, Run, new_id
from orchestrator.budget import Budget, BudgetTracker, Usage
from orchestrator.errors import EvoforgeError, SandboxError
from orchestrator.log import get_logger
from orchestrator.sampling.base import Member
from orchestrator.task import Task

log = get_logger("evoforge.loop")

#: How many recent failures the Researcher is shown.
RECENT_FAILURES = 3
#: Offline proposals that are exact/near duplicates are retried this many times.
NOVELTY_RETRIES = 4
#: Evaluator workers per sandbox slot: while one worker analyses and commits its candidate,
#: another already occupies the slot (the slot semaphore still bounds concurrent jobs).
WORKERS_PER_SLOT = 2
#: Waiting for a lost Docker daemon before giving up on a run.
LOST_RETRY_DELAYS = (2, 5, 10, 20, 30)
#: Waiting for an LLM endpoint that is down (5xx, timeouts after the client's own retries):
#: the same iteration is asked again after each delay (about 37 minutes in all), while the
#: evaluators go on with what is queued; then the run stops, resumable.
LLM_OUTAGE_DELAYS = (5, 10, 20, 40, 60, 120, 240, 300, 300, 300, 300, 300)


@dataclass(frozen=True)
class Rejected:
    """Why an iteration produced nothing to evaluate, with the LLM calls it still cost."""

    reason: str
    llm_calls: tuple[Any, ...] = ()


@dataclass(frozen=True)
class LoopOptions:
    eval_concurrency: int = 2
    proposal_concurrency: int = 2
    num_inspirations: int = 2
    insights_k: int = 5
    repair_attempts: int = 1
    candidate_images: str = "best"  # all | improving | best | none

    @property
    def lag(self) -> int:
        return WORKERS_PER_SLOT * self.eval_concurrency + self.proposal_concurrency


class EvolutionLoop:
    """Drives one run. Build it with everything it needs; `await loop.run()`."""

    def __init__(
        self,
        *,
        store: Any,
        task: Task,
        run: Run,
        sandbox: Any,
        researcher: Any,
        analyzer: Any,
        sampler: Any,
        budget: Budget,
        options: LoopOptions,
        novelty: Any = None,
        image_builder: Callable[[Candidate, EngineeringResult], str | None] | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ):
        self.store = store
        self.task = task
        self.run_rec = run
        self.sandbox = sandbox
        self.researcher = researcher
        self.analyzer = analyzer
        self.sampler = sampler
        self.options = options
        self.novelty = novelty
        self.image_builder = image_builder
        self.on_progress = on_progress
        self.lag = int(run.config.get("lag", options.lag))

        used = Usage(
            iterations=0, wall_s=float(run.config.get("wall_s_used", 0.0)),
            tokens=run.tokens_used, usd=run.cost_usd, gpu_s=run.gpu_seconds,
        )
        self.budget = BudgetTracker(budget, used)
        self.total_iterations = budget.iterations
        self._slots = asyncio.Semaphore(options.eval_concurrency)
        self.engineer = Engineer(
            sandbox, task, run_id=run.id, run_seed=run.seed, slot=self._slot,
        )
        self._cond = asyncio.Condition()
        self._queue: asyncio.Queue[Candidate | None] = asyncio.Queue(maxsize=options.eval_concurrency)
        self._requeue: list[Candidate] = []
        self._next_iteration = 1
        self._selected_upto = 0
        self._stored_upto = 0
        # Finished candidates WITHOUT their code (a long run must not hold every program in
        # memory); full records are read back from the store when needed.
        self._finished: dict[int, Candidate] = {}
        self._by_id: dict[str, Candidate] = {}
        self._best_cand: Candidate | None = None
        self._done_iterations = 0
        self._fed_upto = -1
        self._failures: list[tuple[Candidate, Evaluation]] = []
        self._stopping = False
        self.stop_reason = ""
        self._fatal: BaseException | None = None
        self._started = time.monotonic()
        self._in_flight = 0
        #: Seconds evaluation slots were occupied, summed over slots (for bench/loop.py).
        self.slot_busy_s = 0.0

    # ----------------------------------------------------------------- slots and stop

    @contextlib.asynccontextmanager
    async def _slot(self):
        async with self._slots:
            self._in_flight += 1
            entered = time.monotonic()
            try:
                yield
            finally:
                self._in_flight -= 1
                self.slot_busy_s += time.monotonic() - entered

    def request_stop(self, reason: str = "interrupted") -> None:
        """Stop proposing; in-flight evaluations finish and commit. Safe from a signal handler."""
        if not self._stopping:
            log.info("stopping", reason=reason)
            self._stopping = True
            self.stop_reason = self.stop_reason or reason
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().create_task(self._wake())

    async def _wake(self) -> None:
        async with self._cond:
            self._cond.notify_all()

    # ----------------------------------------------------------------- prefix bookkeeping

    def _done_prefix(self) -> int:
        """The largest k such that every iteration 0..k is finished."""
        k = -1
        while (k + 1) in self._finished:
            k += 1
        return k

    def _feed_sampler(self, upto: int) -> None:
        while self._fed_upto < upto:
            nxt = self._fed_upto + 1
            cand = self._finished.get(nxt)
            if cand is None:
                break
            if cand.state == "done":
                self.sampler.add(_member(cand))
            self._fed_upto = nxt

    def _rng(self, iteration: int) -> np.random.Generator:
        return np.random.default_rng([self.run_rec.seed, iteration])

    # ----------------------------------------------------------------- start and resume

    async def _start(self) -> None:
        cands = self.store.candidates_of_run(self.run_rec.id)
        pending: list[Candidate] = []
        for c in cands:
            if c.state in ("done", "rejected"):
                self._remember(c)
            else:
                pending.append(c)
            if self.novelty is not None:
                self.novelty.add(c.id, c.code)
        max_iter = max((c.iteration for c in cands), default=-1)
        if max_iter < 0:
            seed = self._seed_candidate()
            with self.store.write() as w:
                w.put_candidate(seed)
                w.put_event(Event(id=new_id("evt"), run_id=self.run_rec.id, kind="run_started",
                                  data={"task": self.task.name, "lag": self.lag}))
            if self.novelty is not None:
                self.novelty.add(seed.id, seed.code)
            pending.append(seed)
            max_iter = 0
        # Replay selections so the sampler (and its visit counts) is exactly as it was.
        for i in range(1, max_iter + 1):
            self._feed_sampler(max(0, i - self.lag))
            if len(self.sampler) > 0:
                self.sampler.select(self._rng(i))
        self._selected_upto = self._stored_upto = max_iter
        self._next_iteration = max_iter + 1
        self._requeue = sorted(pending, key=lambda c: c.iteration)
        done_iters = self._done_iterations
        proposed_iters = max_iter
        self.budget.charge(iterations=proposed_iters)
        if cands:
            log.info("resuming", run=self.run_rec.id, done=done_iters, requeued=len(pending),
                     next_iteration=self._next_iteration)

    def _seed_candidate(self) -> Candidate:
        code = self.task.seed_code()
        return Candidate(
            id=new_id("cand"), run_id=self.run_rec.id, task=self.task.name, iteration=0,
            code=code, origin="seed", summary="the task's seed program",
        )

    # ----------------------------------------------------------------- proposers

    async def _proposer(self) -> None:
        """A proposer's failure (a store write on a full disk) stops the run like an evaluator's."""
        try:
            await self._propose_iterations()
        except Exception as exc:
            await self._fail(exc)

    async def _propose_iterations(self) -> None:
        while True:
            async with self._cond:
                if self._stopping or self._fatal is not None:
                    return
                reason = self.budget.exhausted()
                if reason:
                    # Not request_stop(): iterations already claimed are within budget and finish.
                    self.stop_reason = self.stop_reason or f"budget reached: {reason}"
                    return
                i = self._next_iteration
                self._next_iteration += 1
                self.budget.charge(iterations=1)
                # The seed must be finished before anything is selected: max(0, ...).
                await self._cond.wait_for(
                    lambda i=i: self._stopping
                    or (self._selected_upto == i - 1 and self._done_prefix() >= max(0, i - self.lag))
                )
                if self._stopping:
                    return  # not selected yet: nothing of iteration i exists anywhere
                self._feed_sampler(max(0, i - self.lag))
                selection = self.sampler.select(self._rng(i))
                self._selected_upto = i
                self._cond.notify_all()
            ctx = self._context(i, selection)
            proposal = await self._propose(ctx, attempt=0)
            async with self._cond:
                await self._cond.wait_for(lambda i=i: self._stored_upto == i - 1 or self._fatal is not None)
                if self._fatal is not None:
                    return
                # Novelty is judged against what is stored before i, in order: deterministic.
                proposal = await self._ensure_novel(ctx, proposal)
                cand = self._store_proposal(i, selection, proposal, ctx.insights)
                self._stored_upto = i
                self._cond.notify_all()
            if cand.state == "rejected":
                await self._finish(cand)
                continue
            while True:  # a bounded queue, but never wait on evaluators that are gone
                try:
                    self._queue.put_nowait(cand)
                    break
                except asyncio.QueueFull:
                    if self._fatal is not None:
                        return
                    await asyncio.sleep(0.02)

    def _parent_report(self, cid: str) -> tuple[str, dict[str, Any]]:
        """Feedback and mean metrics of a candidate's deepest stage, read from the store (a long
        run does not keep them in memory for every candidate)."""
        evs = self.store.evaluations_of(cid)
        if not evs:
            return "", {}
        last = [e for e in evs if e.stage == evs[-1].stage]
        feedback = "\n".join(e.feedback for e in last if e.feedback)[:2000]
        metrics = mean_metrics(last)  # type: ignore[arg-type]
        scores = [e.score for e in last if e.score is not None]
        if scores:
            metrics["score_mean"] = statistics.fmean(scores)
            metrics["score_std"] = statistics.pstdev(scores) if len(scores) > 1 else 0.0
        return feedback, metrics

    def _context(self, i: int, selection: Any) -> ResearchContext:
        parent = self._get(selection.parent_id)
        inspirations = [self._get(x) for x in selection.inspiration_ids]
        feedback, metrics = self._parent_report(parent.id)
        return ResearchContext(
            task=self.task, run_id=self.run_rec.id, iteration=i,
            rng_seed=self.run_rec.seed * 1_000_003,
            parent=parent, inspirations=inspirations, insights=self._retrieve_insights(parent),
            failures=list(self._failures[-RECENT_FAILURES:]),
            parent_feedback=feedback,
            parent_metrics=metrics,
        )

    async def _propose(self, ctx: ResearchContext, attempt: int) -> Proposal | Rejected:
        """A proposal, or why none could be made (recorded as a rejected candidate).

        While the LLM endpoint is down the same iteration is asked again after each of
        LLM_OUTAGE_DELAYS; the failed calls are kept and stored with what finally comes back."""
        if attempt:
            ctx = dataclasses.replace(ctx, rng_seed=ctx.rng_seed + attempt)
        failed: list[Any] = []
        waited = 0.0
        for delay in (*LLM_OUTAGE_DELAYS, None):
            try:
                proposal = await self.researcher.propose(ctx)
            except Exception as exc:  # an agent error is this candidate's loss, not the run's
                if isinstance(exc, LLMBudgetExceeded):
                    self.request_stop(f"budget reached: {exc}")
                spent = list(getattr(exc, "llm_calls", ()) or ())
                self._charge_llm(spent)
                failed += spent
                if not _endpoint_outage(exc):
                    return Rejected(f"researcher failed: {exc.__class__.__name__}: {exc}", tuple(failed))
                if delay is None or self._stopping:
                    if delay is None:
                        self.request_stop(
                            f"the LLM endpoint failed for {waited:.0f} s ({exc}): resume with "
                            f"`evolve run --resume {self.run_rec.id}` once it answers"
                        )
                    return Rejected(f"LLM endpoint unavailable: {exc}", tuple(failed))
                log.warning("LLM endpoint unavailable; backing off", iteration=ctx.iteration,
                            delay_s=delay, error=str(exc)[:300])
                self._record_event("llm_outage", {"iteration": ctx.iteration, "delay_s": delay,
                                                  "error": str(exc)[:500]})
                await self._sleep_unless_stopping(delay)
                waited += delay
                continue
            self._charge_llm(proposal.llm_calls)
            if failed:
                proposal = dataclasses.replace(proposal, llm_calls=[*failed, *proposal.llm_calls])
            return proposal
        raise AssertionError("unreachable: the last delay is None")

    async def _sleep_unless_stopping(self, seconds: float) -> None:
        async with self._cond:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._cond.wait_for(lambda: self._stopping), seconds)

    async def _ensure_novel(self, ctx: ResearchContext, proposal: Proposal | Rejected) -> Proposal | Rejected:
        """Near-duplicates of stored candidates are rejected before any evaluation is spent;
        the offline Researcher (free to ask again) retries with another rng stream."""
        if self.novelty is None or isinstance(proposal, Rejected):
            return proposal
        retries = NOVELTY_RETRIES if getattr(self.researcher, "offline", False) else 0
        for attempt in range(1, retries + 2):
            dup = self.novelty.is_duplicate(proposal.code)
            if dup is None:
                return proposal
            if attempt > retries:
                return Rejected(f"rejected before evaluation: near-duplicate of {dup}",
                                tuple(proposal.llm_calls))
            proposal = await self._propose(ctx, attempt)
            if isinstance(proposal, Rejected):
                return proposal
        return proposal

    def _charge_llm(self, calls: list[Any]) -> None:
        tokens = sum(c.prompt_tokens + c.completion_tokens for c in calls)
        usd = sum(c.cost_usd for c in calls)
        if tokens or usd:
            self.budget.charge(tokens=tokens, usd=usd)

    def _store_proposal(self, i: int, selection: Any, proposal: Proposal | Rejected,
                        insights: list[Insight]) -> Candidate:
        parent = self._get(selection.parent_id)
        if isinstance(proposal, Rejected):
            cand = Candidate(
                id=new_id("cand"), run_id=self.run_rec.id, task=self.task.name, iteration=i,
                code=parent.code, parent_id=parent.id, island=selection.island,
                origin="rejected", summary=proposal.reason, state="rejected",
            )
            calls: list[Any] = list(proposal.llm_calls)
        else:
            cand = Candidate(
                id=new_id("cand"), run_id=self.run_rec.id, task=self.task.name, iteration=i,
                code=proposal.code, parent_id=parent.id,
                inspiration_ids=list(selection.inspiration_ids), island=selection.island,
                origin=proposal.origin, prompt_hash=proposal.prompt_hash,
                summary=proposal.summary, diff=unified_diff(parent.code, proposal.code),
            )
            calls = list(proposal.llm_calls)
        usage = self.budget.usage()
        run = self.run_rec.model_copy(update={
            "tokens_used": usage.tokens, "cost_usd": usage.usd, "updated_at": time.time(),
        })
        with self.store.write() as w:
            w.put_candidate(cand)
            for call in calls:
                w.put_llm_call(call.model_copy(update={"candidate_id": cand.id}))
            if insights:
                w.put_event(Event(id=new_id("evt"), run_id=self.run_rec.id, kind="insights_retrieved",
                                  data={"candidate_id": cand.id, "insight_ids": [x.id for x in insights]}))
            w.put_run(run)
        self.run_rec = run
        if self.novelty is not None and cand.state != "rejected":
            self.novelty.add(cand.id, cand.code)
        return cand

    def _retrieve_insights(self, parent: Candidate) -> list[Insight]:
        k = self.options.insights_k
        if k <= 0:
            return []
        query = f"{self.task.spec.description[:300]}\n{parent.summary}"
        try:
            hits = self.store.search_insights(query, k, task=self.task.name)
        except Exception as exc:  # retrieval is a help, never a reason to stop
            log.warning("insight retrieval failed", error=str(exc))
            return []
        return [ins for ins, _score in hits]

    def _get(self, cid: str) -> Candidate:
        """The full record (with code) of a finished candidate."""
        found = self.store.get_candidate(cid)
        if found is None:
            raise EvoforgeError(f"candidate {cid} chosen as parent is not in the store")
        return found

    def _remember(self, cand: Candidate) -> None:
        slim = cand.model_copy(update={"code": "", "diff": "", "files": {}})
        if slim.iteration not in self._finished and slim.iteration > 0:
            self._done_iterations += 1
        self._finished[slim.iteration] = slim
        self._by_id[slim.id] = slim
        if slim.score is not None and (
            self._best_cand is None or self.task.better(slim.score, self._best_cand.score)
        ):
            self._best_cand = slim

    # ----------------------------------------------------------------- evaluators

    async def _next_candidate(self) -> Candidate | None:
        if self._requeue:
            return self._requeue.pop(0)
        return await self._queue.get()

    async def _evaluator(self) -> None:
        while True:
            cand = await self._next_candidate()
            if cand is None or self._fatal is not None:
                return  # a candidate left here stays `proposed` and is re-queued on resume
            try:
                await self._evaluate_and_commit(cand)
            except Exception as exc:
                await self._fail(exc)
                return

    async def _fail(self, exc: BaseException) -> None:
        exc = self._explain(exc)
        if self._fatal is None:
            self._fatal = exc
            self.stop_reason = f"error: {exc}"
            log.error("run stopped by an error", error=str(exc), kind=exc.__class__.__name__)
        self._stopping = True
        await self._wake()

    def _explain(self, exc: BaseException) -> BaseException:
        """A full disk says so, and how to go on; other errors pass unchanged."""
        if not _disk_full(exc):
            return exc
        err = EvoforgeError(
            f"no space left on the disk holding the store {self.store.path} or the run folder: "
            f"the run stopped; what was committed is kept. Free space, then "
            f"`evolve run --resume {self.run_rec.id}` ({exc.__class__.__name__}: {exc})"
        )
        err.__cause__ = exc
        return err

    async def _evaluate_and_commit(self, cand: Candidate) -> None:
        result = await self._evaluate_with_retry(cand)
        if result is None:
            return
        if (result.status == "error" and cand.iteration > 0 and self.options.repair_attempts > 0
                and not getattr(self.researcher, "offline", True)):
            cand, result = await self._repair(cand, result)
        await self._commit(cand, result)

    async def _evaluate_with_retry(self, cand: Candidate) -> EngineeringResult | None:
        for delay in (*LOST_RETRY_DELAYS, None):
            result = await self.engineer.evaluate(cand)
            if result.status != "lost":
                return result
            if delay is None:
                raise SandboxError(
                    f"the sandbox backend lost candidate {cand.id} {len(LOST_RETRY_DELAYS) + 1} times: "
                    "is the Docker daemon running? (`make docker-engine`); resume with --resume"
                )
            log.warning("sandbox lost an evaluation; retrying", candidate=cand.id, delay_s=delay)
            self._record_event("evaluation_lost", {"candidate_id": cand.id, "iteration": cand.iteration,
                                                   "retry_in_s": delay, "error": result.feedback[-500:]})
            await asyncio.sleep(delay)
        return None

    async def _repair(self, cand: Candidate, result: EngineeringResult) -> tuple[Candidate, EngineeringResult]:
        for attempt in range(self.options.repair_attempts):
            parent = self._get(cand.parent_id) if cand.parent_id else cand
            ctx = ResearchContext(
                task=self.task, run_id=self.run_rec.id, iteration=cand.iteration,
                rng_seed=self.run_rec.seed + attempt, parent=parent, inspirations=[], insights=[],
                failures=[], parent_feedback=self._parent_report(parent.id)[0],
            )
            try:
                fixed = await self.researcher.repair(ctx, cand.code, result.feedback)
            except Exception as exc:
                spent = list(getattr(exc, "llm_calls", ()) or ())
                self._charge_llm(spent)
                if spent:
                    with self.store.write() as w:
                        for call in spent:
                            w.put_llm_call(call.model_copy(update={"candidate_id": cand.id}))
                log.warning("repair failed", candidate=cand.id, error=str(exc))
                return cand, result
            if fixed is None:
                return cand, result
            self._charge_llm(fixed.llm_calls)
            repaired = cand.model_copy(update={
                "code": fixed.code, "origin": cand.origin + "+repair",
                "summary": (cand.summary + " | repaired: " + fixed.summary).strip(" |"),
                "diff": unified_diff(parent.code, fixed.code),
            })
            with self.store.write() as w:
                w.put_candidate(repaired)
                for call in fixed.llm_calls:
                    w.put_llm_call(call.model_copy(update={"candidate_id": cand.id}))
                w.put_event(Event(id=new_id("evt"), run_id=self.run_rec.id, kind="repair",
                                  data={"candidate": cand.id, "error": result.feedback[-500:]}))
            new_result = await self._evaluate_with_retry(repaired)
            if new_result is None:
                return cand, result
            cand, result = repaired, new_result
            if result.status != "error":
                break
        return cand, result

    async def _commit(self, cand: Candidate, result: EngineeringResult) -> None:
        done = cand.model_copy(update={
            "state": "done", "status": result.status, "score": result.score,
            "stage_reached": result.stage_reached, "features": result.features,
        })
        parent = self._get(done.parent_id) if done.parent_id else None
        best = self._best()
        history = [c for _, c in sorted(self._finished.items()) if c.state == "done"]
        analysis = None
        failed_calls: list[Any] = []
        seed_failed = done.iteration == 0 and done.score is None  # the run stops: spend nothing on it
        try:
            if not seed_failed:
                analysis = await self.analyzer.analyze(AnalysisContext(
                    task=self.task, run_id=self.run_rec.id, candidate=done,
                    evaluations=result.evaluations, parent=parent, best=best, history=history,
                ))
        except Exception as exc:
            log.warning("analyzer failed; committing without insights", candidate=cand.id, error=str(exc))
            failed_calls = list(getattr(exc, "llm_calls", ()) or ())
            self._charge_llm(failed_calls)
        if analysis is not None:
            self._charge_llm(analysis.llm_calls)
        self.budget.charge(gpu_s=result.gpu_seconds, usd=result.cost_usd)

        new_best = done.score is not None and (best is None or best.score is None
                                                or self.task.better(done.score, best.score))
        usage = self.budget.usage()
        run_update: dict[str, Any] = {
            "iterations_done": self._done_iterations + (1 if done.iteration > 0 else 0),
            "tokens_used": usage.tokens, "cost_usd": usage.usd, "gpu_seconds": usage.gpu_s,
            "updated_at": time.time(),
            "config": {**self.run_rec.config, "wall_s_used": usage.wall_s},
        }
        if new_best:
            run_update.update(best_candidate_id=done.id, best_score=done.score)
        if done.iteration == 0:
            run_update["seed_score"] = done.score
        with self.store.write() as w:
            evaluations = []
            for ev, (out, err) in zip(result.evaluations, result.tails or [], strict=False):
                evaluations.append(ev.model_copy(update={
                    "stdout_blob": w.put_blob(out.encode()) if out else None,
                    "stderr_blob": w.put_blob(err.encode()) if err else None,
                }))
            evaluations += result.evaluations[len(evaluations):]
            if analysis is not None:
                done = done.model_copy(update={"summary": done.summary or analysis.summary})
            w.put_candidate(done)
            for ev in evaluations:
                w.put_evaluation(ev)
            if analysis is not None:
                for ins in analysis.insights:
                    w.put_insight(ins)
            for call in (analysis.llm_calls if analysis is not None else failed_calls):
                w.put_llm_call(call.model_copy(update={"candidate_id": done.id}))
            self.run_rec = self.run_rec.model_copy(update=run_update)
            w.put_run(self.run_rec)
        await self._finish(done, result)
        if self.image_builder is not None and result.passed_all and done.score is not None:
            await self._maybe_build_image(done, result, parent, new_best)

    async def _maybe_build_image(self, cand: Candidate, result: EngineeringResult,
                                 parent: Candidate | None, new_best: bool) -> None:
        policy = self.options.candidate_images
        wanted = (
            policy == "all"
            or (policy == "best" and new_best)
            or (policy == "improving" and (parent is None or parent.score is None
                                           or self.task.better(cand.score, parent.score)))
        )
        if not wanted or self.image_builder is None:
            return
        try:
            tag = await asyncio.to_thread(self.image_builder, cand, result)
        except Exception as exc:
            log.warning("candidate image build failed", candidate=cand.id, error=str(exc))
            return
        if tag:
            with self.store.write() as w:
                w.put_candidate(cand.model_copy(update={"image": tag}))

    def _best(self) -> Candidate | None:
        return self._best_cand

    async def _finish(self, cand: Candidate, result: EngineeringResult | None = None) -> None:
        async with self._cond:
            self._remember(cand)
            if result is not None:
                if result.status != "ok" and result.evaluations:
                    self._failures.append((cand, result.evaluations[-1]))
                    del self._failures[:-RECENT_FAILURES * 3]
            self._cond.notify_all()
        if cand.iteration == 0 and cand.score is None:
            why = result.feedback if result is not None else cand.summary
            await self._fail(EvoforgeError(
                f"the seed program of task {self.task.name} does not pass its own evaluation "
                f"(status {cand.status}): {why[-800:]}\nfix {self.task.seed_path} or its evaluator"
            ))
        self._report(cand)

    def _report(self, cand: Candidate) -> None:
        best = self._best()
        info = {
            "run": self.run_rec.id, "iteration": cand.iteration, "candidate": cand.id,
            "status": cand.status or cand.state, "score": cand.score,
            "best": best.score if best else None, "seed_score": self.run_rec.seed_score,
            "done": self._done_iterations,
            "in_flight": self._in_flight, "origin": cand.origin,
            "tokens": self.budget.usage().tokens, "usd": round(self.budget.usage().usd, 4),
            "total": self.total_iterations, "slot_busy_s": round(self.slot_busy_s, 3),
        }
        if self.on_progress is not None:
            self.on_progress(info)
        log.info("iteration", **info)

    # ----------------------------------------------------------------- the run

    async def run(self) -> Run:
        await self._start()
        evaluators = [asyncio.create_task(self._evaluator(), name=f"eval-{k}")
                      for k in range(WORKERS_PER_SLOT * self.options.eval_concurrency)]
        # The seed (and any re-queued work) must be finished before the first selection.
        proposers = [asyncio.create_task(self._proposer(), name=f"propose-{k}")
                     for k in range(self.options.proposal_concurrency)]
        try:
            await asyncio.gather(*proposers)
            await self._close_queue(evaluators)
            await asyncio.gather(*evaluators)
        except asyncio.CancelledError:
            for t in (*proposers, *evaluators):
                t.cancel()
            await asyncio.gather(*proposers, *evaluators, return_exceptions=True)
            self.stop_reason = self.stop_reason or "cancelled"
            self._record_event("cancelled", {"in_flight": "re-queued on resume"})
            raise
        finally:
            self._close_run()
        if self._fatal is not None:
            raise self._fatal
        return self.run_rec

    async def _close_queue(self, evaluators: list[asyncio.Task]) -> None:
        """One end-of-work marker per evaluator still alive (the queue is bounded)."""
        sent = 0
        while sent < len(evaluators) and any(not t.done() for t in evaluators):
            try:
                self._queue.put_nowait(None)
                sent += 1
            except asyncio.QueueFull:
                await asyncio.sleep(0.02)

    def _record_event(self, kind: str, data: dict[str, Any]) -> None:
        try:
            with self.store.write() as w:
                w.put_event(Event(id=new_id("evt"), run_id=self.run_rec.id, kind=kind, data=data))
        except Exception as exc:
            log.warning("could not record event", kind=kind, error=str(exc))

    def _close_run(self) -> None:
        usage = self.budget.usage()
        pending = [c for c in self.store.candidates_of_run(self.run_rec.id)
                   if c.state in ("proposed", "evaluating")]
        if self._fatal is not None:
            status = "failed"
        elif pending or not self.stop_reason.startswith("budget"):
            status = "stopped"
        else:
            status = "finished"
        self.run_rec = self.run_rec.model_copy(update={
            "status": status, "stop_reason": self.stop_reason, "updated_at": time.time(),
            "config": {**self.run_rec.config, "wall_s_used": usage.wall_s},
        })
        try:
            with self.store.write() as w:
                w.put_run(self.run_rec)
                w.put_event(Event(id=new_id("evt"), run_id=self.run_rec.id, kind="run_" + status,
                                  data={"reason": self.stop_reason, "pending": len(pending)}))
        except Exception as exc:
            log.error("could not record the end of the run", error=str(exc))


def _endpoint_outage(exc: BaseException) -> bool:
    """The endpoint itself failed (its recorded call carries the error), as opposed to a model
    that answered with nothing usable or a replay that ran out of recorded calls."""
    if not isinstance(exc, LLMError) or isinstance(exc, ProposalError) or not exc.llm_calls:
        return False
    return bool(getattr(exc.llm_calls[-1], "error", ""))


def _disk_full(exc: BaseException | None) -> bool:
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return True
        if "No space left on device" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _member(c: Candidate) -> Member:
    score = c.score if c.status == "ok" else None
    return Member(id=c.id, score=score, island=c.island, parent_id=c.parent_id,
                  iteration=c.iteration, features=dict(c.features))
