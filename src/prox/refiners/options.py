"""Typed refiner options: each refiner declares a dataclass, and keyword options are checked
against it before any work starts.

An unknown or misspelt option is an error naming the valid ones (``line_treshold`` must not
silently keep the default threshold), and values arriving as strings from the command line
(``-O line_threshold=0.3``) are converted to the field's type. A factory exposes its class as
``factory.options`` so `prox.refiners.check_refiner_options` can validate a spec without
building the refiner (no model is loaded).
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Mapping, TypeVar

T = TypeVar("T")


class UnknownOptionError(TypeError, ValueError):
    """An option the refiner does not have (a TypeError like a bad keyword argument, and a
    ValueError so that configuration checks report it as a bad setting)."""


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    """``value`` as the field type; None stays None for optional fields."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(name, value, inner[0]) if len(inner) == 1 else value
    if annotation is bool:
        if isinstance(value, str):
            low = value.strip().lower()
            if low in _TRUE or low in _FALSE:
                return low in _TRUE
            raise ValueError(f"option {name}: expected true or false, got {value!r}")
        return bool(value)
    if annotation in (int, float):
        if isinstance(value, bool):
            raise ValueError(f"option {name}: expected a number, got {value!r}")
        try:
            number = annotation(value)
        except (TypeError, ValueError):
            raise ValueError(f"option {name}: expected {annotation.__name__}, got {value!r}") from None
        if annotation is int and isinstance(value, float) and number != value:
            raise ValueError(f"option {name}: expected an integer, got {value!r}")
        return number
    if annotation is str and not isinstance(value, str):
        return str(value)
    return value


def option_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def parse_options(cls: type[T], options: Mapping[str, Any], *, refiner: str) -> T:
    """An instance of the options dataclass ``cls`` from keyword ``options``.

    Raises `UnknownOptionError` for a key ``cls`` does not have (listing the valid ones) and
    ValueError for a value that cannot be converted to its field's type.
    """
    names = option_names(cls)
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise UnknownOptionError(
            f"unknown option(s) for the {refiner} refiner: {', '.join(unknown)}; valid options: {', '.join(sorted(names))}")
    hints = typing.get_type_hints(cls)
    return cls(**{key: _coerce(key, value, hints[key]) for key, value in options.items()})


def given(opts: Any, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options that were given, with their converted values (for code that reads a dict)."""
    return {key: getattr(opts, key) for key in options}
