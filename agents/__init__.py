"""evoforge agents: Researcher, Engineer, Analyzer, the LLM client and the offline operators."""
