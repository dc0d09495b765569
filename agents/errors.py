"""The agents' exception family."""


class AgentError(Exception):
    """Base of every error the agents raise on purpose."""


class LLMError(AgentError):
    """The LLM endpoint failed after retries, or answered with something unusable."""


class DiffError(AgentError):
    """A SEARCH/REPLACE diff does not apply; the message says which block and why."""


class LLMBudgetExceeded(AgentError):
    """The token or dollar cap would be crossed by another call."""
