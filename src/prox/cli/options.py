"""`-O KEY=VALUE` refiner options, shared by the commands that build a refiner."""
from __future__ import annotations

from typing import Any

import typer

REFINER_OPTION_HELP = "Extra refiner option KEY=VALUE (repeatable), e.g. -O preset=model -O chunk_max_new_tokens=128."


def parse_refiner_options(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--option")
        out[key.strip().replace("-", "_")] = coerce_option_value(value)
    return out


def coerce_option_value(value: str) -> Any:
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value
