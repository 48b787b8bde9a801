"""``python -m benchmarks``: the project's throughput and cost benchmarks.

Each suite measures side by side in one run (these machines are noisy, so
only ratios measured together are compared), prints a table, and writes
JSON and Markdown under ``benchmarks/results/``.
"""
