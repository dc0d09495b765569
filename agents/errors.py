"""The agents' exception family."""

from __future__ import annotations

from typing import Any


class AgentError(Exception):
    """Base of every error the agents raise on purpose."""


class LLMError(AgentError):
    """The LLM endpoint failed after retries, or answered with something unusable.

    `llm_calls` holds the recorded calls (failed ones included, `error` set) that were spent
    before the failure, so the loop can store them even though no proposal came back.
    """

    def __init__(self, message: str, llm_calls: list[Any] | None = None):
        super().__init__(message)
        self.llm_calls: list[Any] = list(llm_calls or [])


class ProposalError(LLMError):
    """The model answered, but no usable program came out of it after the bounded re-asks."""


class DiffError(AgentError):
    """A SEARCH/REPLACE diff does not apply; the message says which block and why."""


class LLMBudgetExceeded(AgentError):
    """The token or dollar cap would be crossed by another call."""
