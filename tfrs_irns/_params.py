"""Parameter fields that carry their own rules, for the frozen parameter objects.

A setting (say GCBS's ``neighbors``) is one field of one frozen dataclass
owned by the library layer that uses it (``batching/params.py`` for GCBS):
its default, its one-line help, its range rule and, for a choice, its
allowed values sit together there. The library checks an object when it is
built (``ValueError`` naming the argument); config loading
(:mod:`tfrs_irns.config`) uses the same dataclass as its section type and
asks the same rule (``ConfigError`` naming the dotted key and the file). So
each rule is written once and a library never needs YAML names.

Layer 0, no TensorFlow: ``import tfrs_irns.config`` loads every
``*/params.py`` module and must stay cheap.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from typing import Any, Callable, Literal, Optional

# A range rule: (predicate on a present value, the rule in words, e.g. "must be > 0").
Check = tuple[Callable[[Any], bool], str]

POSITIVE: Check = (lambda v: v > 0, "must be > 0")
NON_NEGATIVE: Check = (lambda v: v >= 0, "must be >= 0")
AT_LEAST_ONE: Check = (lambda v: v >= 1, "must be >= 1")
FRACTION: Check = (lambda v: 0 < v < 1, "must be in (0, 1)")


def param(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    factory: Any = None,
    check: Optional[Check] = None,
    path: bool = False,
    column: bool = False,
    experimental: Optional[str] = None,
) -> Any:
    """A parameter field: its default (or ``factory``), a one-line ``help``
    for the config reference, its range rule ``check``, ``path=True`` for file
    paths the config makes absolute, ``column=True`` for column names that may
    be 0-based positions (an integer in YAML is read as its string), and
    ``experimental``: the key under the config's ``experimental`` section
    that sets it (it is then no key of its own section)."""
    metadata: dict[str, Any] = {"help": help}
    for key, value in (("check", check), ("path", path), ("column", column), ("experimental", experimental)):
        if value:
            metadata[key] = value
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def type_name(tp: Any) -> str:
    """A type in words, as error messages and the config reference say it."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        args = [repr(a) for a in typing.get_args(tp)]
        return " or ".join(args) if len(args) == 2 else "one of " + ", ".join(args)
    if origin is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return type_name(args[0]) + " or null"
    if origin is list:
        return "a list of " + type_name(typing.get_args(tp)[0])
    if origin is dict:
        key_tp, value_tp = typing.get_args(tp)
        return f"a mapping of {type_name(key_tp)} to {type_name(value_tp)}"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


@functools.lru_cache(maxsize=None)
def type_hints(cls: type) -> dict[str, Any]:
    """``typing.get_type_hints`` of a dataclass, resolved once."""
    return typing.get_type_hints(cls)


def _choices(tp: Any) -> Optional[tuple]:
    """The allowed values of a ``Literal`` (or ``Optional[Literal]``) type, else None."""
    if typing.get_origin(tp) is typing.Union:
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = inner[0] if len(inner) == 1 else tp
    return typing.get_args(tp) if typing.get_origin(tp) is Literal else None


def range_problem(f: dataclasses.Field, value: Any) -> Optional[str]:
    """Field ``f``'s range rule in words (``"must be > 0"``) when ``value``
    breaks it, else None; ``None`` (an optional setting left unset) passes."""
    check = f.metadata.get("check")
    if check is not None and value is not None and not check[0](value):
        return str(check[1])
    return None


def field_problem(cls: type, f: dataclasses.Field, value: Any) -> Optional[str]:
    """What is wrong with ``value`` for field ``f`` of ``cls`` (its choices,
    then its range rule), in words ending ``got <value>``; None when fine."""
    choices = _choices(type_hints(cls)[f.name])
    if choices is not None and value is not None and value not in choices:
        return f"expected {type_name(Literal[choices])}, got {value!r}"
    words = range_problem(f, value)
    return None if words is None else f"{words}, got {value!r}"


def check_fields(obj: Any) -> None:
    """Raise :class:`ValueError` naming the first field of dataclass ``obj``
    out of its choices or range (``"neighbors: must be > 0, got 0"``)."""
    for f in dataclasses.fields(obj):
        problem = field_problem(type(obj), f, getattr(obj, f.name))
        if problem is not None:
            raise ValueError(f"{f.name}: {problem}")


class Params:
    """Base of the parameter dataclasses: checks every field when built.

    Subclasses are ``@dataclass(frozen=True)``: a parameter object is a value
    (change one with ``dataclasses.replace``), so what the library checked at
    construction stays true.
    """

    def __post_init__(self) -> None:
        check_fields(self)
