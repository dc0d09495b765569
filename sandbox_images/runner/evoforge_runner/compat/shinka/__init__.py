"""evoforge's stand-in for the parts of ShinkaEvolve that evaluators import.

The real package pulls in LLM clients, hydra, pandas and plotting; `evaluate.py` scripts only
need `shinka.core.run_shinka_eval` (and `shinka.core.wrap_eval`'s helpers), provided here.
"""

__version__ = "0.0.0+evoforge-compat"
