"""Test helpers that need no test framework: the loopback chat server and the tiny model.

They live in the package (not in tests/) because ``bench ratelimits`` runs
against the chat server and the example plugins' tests may use them; nothing
in a run imports them.
"""
