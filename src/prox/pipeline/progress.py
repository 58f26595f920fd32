"""A process-local progress hook: the outcome writer reports each routed document here.

The run driver installs a rich progress bar only when it runs the tasks in its own
process (local executor, one worker) and stderr is a terminal; otherwise nothing is shown.
"""
from __future__ import annotations

from typing import Callable

_hook: Callable[[int, str], None] | None = None


def set_hook(hook: Callable[[int, str], None] | None) -> None:
    global _hook
    _hook = hook


def advance(n: int, outcome: str) -> None:
    if _hook is not None:
        _hook(n, outcome)
