"""evoforge's stand-in for the parts of OpenEvolve that evaluators import.

The real package's `__init__` imports its controller (openai, flask, dacite, ...); evaluators
only need `openevolve.evaluation_result` and a few helpers, provided here with the same names.
"""

__version__ = "0.0.0+evoforge-compat"
