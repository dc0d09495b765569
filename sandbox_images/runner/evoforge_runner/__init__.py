"""The trusted in-sandbox runner: starts a task's evaluator on a candidate and reports one result.

It is baked into the sandbox images (on PYTHONPATH) and used as-is by the process sandbox.
Evaluators import `evoforge_runner.child` to keep candidate code out of their own process.
"""
