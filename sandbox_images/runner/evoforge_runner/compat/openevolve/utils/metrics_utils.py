"""`safe_numeric_average` and `get_fitness_score` with OpenEvolve's semantics: combined_score
when present, otherwise the mean of the numeric metrics (NaN skipped)."""

from __future__ import annotations

from typing import Any


def _numeric(metrics: dict[str, Any]) -> list[float]:
    values = []
    for value in metrics.values():
        if isinstance(value, int | float):
            value = float(value)
            if value == value:  # not NaN
                values.append(value)
    return values


def safe_numeric_average(metrics: dict[str, Any]) -> float:
    values = _numeric(metrics or {})
    return sum(values) / len(values) if values else 0.0


def safe_numeric_sum(metrics: dict[str, Any]) -> float:
    return sum(_numeric(metrics or {}))


def get_fitness_score(metrics: dict[str, Any], feature_dimensions: list[str] | None = None) -> float:
    if not metrics:
        return 0.0
    combined = metrics.get("combined_score")
    if isinstance(combined, int | float):
        return float(combined)
    dims = set(feature_dimensions or [])
    rest = {k: v for k, v in metrics.items() if k not in dims}
    return safe_numeric_average(rest) if _numeric(rest) else safe_numeric_average(metrics)
