"""The LLM client: one OpenAI-compatible endpoint, several weighted models, hard budget caps,
and a record (`LLMCall`) of every call so a run can be replayed without the model.

    client = LLMClient(base_url="http://localhost:8000/v1", api_key=None,
                       models=[ModelSpec("qwen2.5-coder")], budget=LLMBudget(max_usd=2.0))
    text, call = await client.chat(messages, role="researcher", run_id=run.id)

Retries (408/409/429/5xx, timeouts, connection errors, with backoff and Retry-After) are the
`openai` client's own; a failure after them raises `LLMError` carrying the recorded call.
`ReplayClient` answers the same calls from a recording.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

from agents.errors import LLMBudgetExceeded, LLMError
from cognition.records import LLMCall, new_id

# USD per million tokens (input, output), list prices as of mid-2025. A ModelSpec with its own
# prices overrides this; unknown models cost 0 (a local server).
_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "deepseek-chat": (0.27, 1.10),
    "deepseek-reasoner": (0.55, 2.19),
    "gemini-2.5-pro": (1.25, 10.00),
    "gemini-2.5-flash": (0.30, 2.50),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-opus-4": (15.00, 75.00),
}

_CHARS_PER_TOKEN = 4  # a rough prompt-size estimate for the budget check before a call


def price_table() -> dict[str, tuple[float, float]]:
    """Known models' USD per million (input, output) tokens."""
    return dict(_PRICES)


def _lookup_price(name: str) -> tuple[float, float]:
    """Exact name first, then the longest known prefix ("gpt-4o-mini-2024-07-18" -> gpt-4o-mini),
    ignoring a provider prefix such as "openai/"."""
    bare = name.rsplit("/", 1)[-1]
    if bare in _PRICES:
        return _PRICES[bare]
    prefixes = [k for k in _PRICES if bare.startswith(k)]
    return _PRICES[max(prefixes, key=len)] if prefixes else (0.0, 0.0)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    weight: float = 1.0
    price_in_per_mtok: float = 0.0
    price_out_per_mtok: float = 0.0
    temperature: float = 0.7
    max_tokens: int = 4096

    def prices(self) -> tuple[float, float]:
        if self.price_in_per_mtok or self.price_out_per_mtok:
            return self.price_in_per_mtok, self.price_out_per_mtok
        return _lookup_price(self.name)


@dataclass(frozen=True)
class LLMBudget:
    max_tokens: int | None = None
    max_usd: float | None = None


def estimate_tokens(messages: list[dict[str, Any]]) -> int:
    return sum(len(str(m.get("content", ""))) for m in messages) // _CHARS_PER_TOKEN + 4 * len(
        messages
    )


class LLMClient:
    """Chat completions against one OpenAI-compatible endpoint, with accounting and caps."""

    def __init__(
        self,
        *,
        base_url: str | None,
        api_key: str | None,
        models: list[ModelSpec],
        timeout_s: float = 120,
        max_retries: int = 5,
        budget: LLMBudget = LLMBudget(),
        seed: int = 0,
    ):
        if not models:
            raise LLMError(
                "no models configured: pass at least one ModelSpec (or use --llm offline)"
            )
        if sum(m.weight for m in models) <= 0:
            raise LLMError(
                f"model weights must sum to more than 0, got {[m.weight for m in models]}"
            )
        from openai import AsyncOpenAI  # noqa: PLC0415 - keeps `import agents` light

        self.base_url = base_url
        self.models = list(models)
        self.budget = budget
        # Local servers (vLLM, llama.cpp, Ollama) ignore the key but the client insists on one.
        key = api_key or os.environ.get("OPENAI_API_KEY") or "sk-no-key-needed"
        self._client = AsyncOpenAI(
            base_url=base_url, api_key=key, timeout=timeout_s, max_retries=max_retries
        )
        self._max_retries = max_retries
        self._rng = random.Random(seed)
        self._seq = 0
        self._reserved_tokens = 0
        self.tokens_used = 0
        self.cost_usd = 0.0
        self.calls = 0
        self.calls_log: list[LLMCall] = []

    def pick_model(self, name: str | None = None) -> ModelSpec:
        if name is not None:
            for m in self.models:
                if m.name == name:
                    return m
            return ModelSpec(name)
        return self._rng.choices(self.models, weights=[m.weight for m in self.models])[0]

    def _check_budget(self, messages: list[dict[str, Any]], spec: ModelSpec) -> int:
        estimate = estimate_tokens(messages)
        cap_tok, cap_usd = self.budget.max_tokens, self.budget.max_usd
        if cap_tok is not None and self.tokens_used + self._reserved_tokens + estimate > cap_tok:
            raise LLMBudgetExceeded(
                f"LLM token budget reached: {self.tokens_used} used (+{self._reserved_tokens} in "
                f"flight, ~{estimate} for this prompt) of a {cap_tok}-token cap; raise the cap to go on"
            )
        if cap_usd is not None:
            price_in, _ = spec.prices()
            next_cost = estimate * price_in / 1e6
            if self.cost_usd + next_cost > cap_usd or self.cost_usd >= cap_usd:
                raise LLMBudgetExceeded(
                    f"LLM dollar budget reached: ${self.cost_usd:.4f} spent of a ${cap_usd:.2f} cap "
                    f"(next prompt ~${next_cost:.4f} on {spec.name}); raise --budget-usd to go on"
                )
        return estimate

    async def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        role: str,
        run_id: str,
        candidate_id: str | None = None,
        model: str | None = None,
    ) -> tuple[str, LLMCall]:
        """One chat completion. Raises LLMBudgetExceeded before a call the caps forbid, and
        LLMError (with the recorded failed call) after the client's retries are spent."""
        import openai  # noqa: PLC0415

        spec = self.pick_model(model)
        estimate = self._check_budget(messages, spec)
        self._seq += 1
        seq = self._seq
        self._reserved_tokens += estimate
        started = time.monotonic()
        error, content, p_tok, c_tok = "", "", 0, 0
        try:
            resp = await self._client.chat.completions.create(
                model=spec.name,
                messages=messages,  # type: ignore[arg-type]
                temperature=spec.temperature,
                max_tokens=spec.max_tokens,
            )
            if resp.usage is not None:
                p_tok, c_tok = resp.usage.prompt_tokens or 0, resp.usage.completion_tokens or 0
            if not resp.choices or resp.choices[0].message.content is None:
                error = f"model {spec.name} returned no message content"
            else:
                content = resp.choices[0].message.content
        except openai.APIStatusError as exc:
            error = f"HTTP {exc.status_code} from {self.base_url}: {str(exc)[:300]}"
        except openai.APITimeoutError:
            error = f"timed out after {self._max_retries} retries talking to {self.base_url}"
        except openai.APIError as exc:
            error = f"{type(exc).__name__} talking to {self.base_url}: {str(exc)[:300]}"
        except asyncio.CancelledError:
            self._reserved_tokens -= estimate
            raise
        finally:
            latency = time.monotonic() - started
        self._reserved_tokens -= estimate
        price_in, price_out = spec.prices()
        cost = (p_tok * price_in + c_tok * price_out) / 1e6
        self.tokens_used += p_tok + c_tok
        self.cost_usd += cost
        self.calls += 1
        call = LLMCall(
            id=new_id("llm"),
            run_id=run_id,
            role=role,  # type: ignore[arg-type]
            model=spec.name,
            prompt=list(messages),
            response=content,
            prompt_tokens=p_tok,
            completion_tokens=c_tok,
            latency_s=latency,
            cost_usd=cost,
            error=error,
            seq=seq,
            candidate_id=candidate_id,
        )
        self.calls_log.append(call)
        if error:
            raise LLMError(f"LLM call failed ({spec.name}, {role}): {error}", [call])
        return content, call

    async def close(self) -> None:
        await self._client.close()


def _first_difference(recorded: list[dict[str, Any]], now: list[dict[str, Any]]) -> str:
    if len(recorded) != len(now):
        return f"{len(now)} messages now, {len(recorded)} recorded"
    for i, (a, b) in enumerate(zip(recorded, now, strict=True)):
        if a == b:
            continue
        ra, rb = str(a.get("content", "")), str(b.get("content", ""))
        at = next(
            (k for k, (x, y) in enumerate(zip(ra, rb, strict=False)) if x != y),
            min(len(ra), len(rb)),
        )
        return (
            f"message {i} ({b.get('role', '?')}) differs at char {at}: recorded "
            f"{ra[at : at + 40]!r}, now {rb[at : at + 40]!r}"
        )
    return "no difference"


class ReplayClient:
    """Answers `chat` from recorded LLMCalls, in `seq` order per role, without a server.

    A prompt that differs from the recording raises LLMError saying where (pass
    `check_prompts=False` to replay the replies regardless); a recorded failure is replayed as
    the same LLMError; running out of recorded calls raises LLMError."""

    def __init__(self, calls: list[LLMCall], *, check_prompts: bool = True):
        self._queues: dict[str, deque[LLMCall]] = defaultdict(deque)
        for call in sorted(calls, key=lambda c: (c.seq, c.created_at)):
            self._queues[call.role].append(call)
        self._used: dict[str, int] = defaultdict(int)
        self.check_prompts = check_prompts
        self._seq = 0
        self.tokens_used = 0
        self.cost_usd = 0.0
        self.calls = 0
        self.calls_log: list[LLMCall] = []

    async def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        role: str,
        run_id: str,
        candidate_id: str | None = None,
        model: str | None = None,
    ) -> tuple[str, LLMCall]:
        queue = self._queues.get(role)
        if not queue:
            raise LLMError(
                f"replay ran out of recorded {role} calls after {self._used[role]}: the replayed "
                "run asks more than the recorded one did (more iterations, or a different path)"
            )
        rec = queue.popleft()
        self._used[role] += 1
        if self.check_prompts and rec.prompt != list(messages):
            raise LLMError(
                f"replay: the prompt of {role} call #{self._used[role]} (recorded seq {rec.seq}) "
                f"differs from the recording: {_first_difference(rec.prompt, list(messages))}"
            )
        self._seq += 1
        self.calls += 1
        call = rec.model_copy(
            update={
                "id": new_id("llm"),
                "run_id": run_id,
                "candidate_id": candidate_id,
                "seq": self._seq,
                "latency_s": 0.0,
                "cost_usd": 0.0,
            }
        )
        self.calls_log.append(call)
        if rec.error:
            raise LLMError(
                f"replayed failure of {role} call (recorded seq {rec.seq}): {rec.error}", [call]
            )
        return rec.response, call

    async def close(self) -> None:
        return None
