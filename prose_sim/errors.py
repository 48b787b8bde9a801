"""Errors that the CLI turns into one clear line and exit code 2."""


class UsageError(Exception):
    """Bad input from the user: a scenario, a path, an option. Exit code 2."""
