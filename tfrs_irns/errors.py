"""One exception type for every mistake a user can make.

The CLI prints a ``UserError`` as a single line and exits with code 2; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input: a config key, a data file, a command-line argument."""


class ConfigError(UserError):
    """A config file or ``--set`` override is invalid (names the key)."""


class DataError(UserError):
    """A data source is missing or malformed (names the file and line)."""
