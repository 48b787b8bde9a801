"""Core run output: the results collector (``results.csv``, the summary) and the smoke notice.

Kept out of ``report/`` so the runtime never imports presentation code; ``report/`` reads these.
"""
