"""evoforge cognition: the LMDB-backed store of candidates, results, insights and LLM calls."""
