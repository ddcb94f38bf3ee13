"""One exception type for every mistake a user can make.

The CLI prints a ``UserError`` as a single line and exits with code 2; anything
else is a bug and keeps its traceback.

A library names its own arguments in its errors (``split=random``, ``user_column``),
never a config key or a command-line flag: it cannot know how its caller was
driven. An error lists the arguments it names in ``arguments``, and the layer that
knows their spelling (``runs`` for config keys, ``cli`` for flags) rewords it with
:meth:`UserError.reworded`, so the user still reads one line in their own terms.
"""

from __future__ import annotations

import copy
import re
from typing import Iterable, Mapping

# YAML's spelling of the Python values an ``argument=value`` may name.
_YAML_VALUES = {"True": "true", "False": "false", "None": "null"}


def reword(message: str, arguments: Iterable[str], names: Mapping[str, str]) -> str:
    """``message`` with each of ``arguments`` spelled as ``names`` says.

    An argument is replaced where it stands as a whole word (not inside a path
    or another name). A flag (``--users``, ``-k``) is written ``--flag value``
    and a bare ``flag`` for ``=True``; a config key ``key=value``, with YAML's
    ``true``/``false``/``null``.
    """
    for argument in arguments:
        name = names.get(argument)
        if name is None:
            continue
        pattern = re.compile(rf"(?<![\w./\\-]){re.escape(argument)}(?![\w/\\-])(=(\S+?)(?=[\s,;:)]|$))?")

        def spell(match: re.Match, name: str = name) -> str:
            value = match.group(2)
            if value is None:
                return name
            if name.startswith("-"):
                return name if value == "True" else f"{name} {value}"
            return f"{name}={_YAML_VALUES.get(value, value)}"

        message = pattern.sub(spell, message)
    return message


class UserError(Exception):
    """Bad input: a config key, a data file, a command-line argument.

    ``arguments``: the library arguments the message names, for :meth:`reworded`.
    """

    def __init__(self, *args: object, arguments: Iterable[str] = ()) -> None:
        super().__init__(*args)
        self.arguments = tuple(arguments)

    def reworded(self, names: Mapping[str, str]) -> "UserError":
        """The same error (same type and attributes) with its ``arguments`` spelled as ``names`` says."""
        if not self.arguments or not any(a in names for a in self.arguments):
            return self
        new = copy.copy(self)
        new.args = (reword(str(self), self.arguments, names),)
        new.arguments = tuple(a for a in self.arguments if a not in names)
        return new


class ConfigError(UserError):
    """A setting is invalid: a config key or ``--set`` override (named as such), or a
    library argument a config sets (named as the argument, reworded by ``runs``)."""


class DataError(UserError):
    """A data source is missing or malformed (names the file and line)."""


class DivergedError(UserError):
    """Numbers that must be finite are NaN or inf: training diverged (the caller who knows
    the settings says which one to change)."""
