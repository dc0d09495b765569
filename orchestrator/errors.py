"""The orchestrator's exception family: every message names the thing and the fix."""


class EvoforgeError(Exception):
    """Base of every error the orchestrator raises on purpose."""


class ConfigError(EvoforgeError):
    """A configuration value is unknown, mistyped or contradictory."""


class TaskError(EvoforgeError):
    """A task folder is missing, malformed or cannot be evaluated."""


class SandboxError(EvoforgeError):
    """A sandbox backend cannot run jobs at all (daemon down, image missing)."""


class ImageError(SandboxError):
    """A sandbox image cannot be built or found."""


class BudgetExhausted(EvoforgeError):
    """A run budget (iterations, time, tokens, dollars, GPU-seconds) is spent."""


class RunLockedError(EvoforgeError):
    """Another process is already driving this run."""
