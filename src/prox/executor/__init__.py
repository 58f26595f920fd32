"""Execute a ProX program on a document: ``execute(text, program, stage=, mode=)``.

Two modes:
  * ``strict`` (default): programs parsed by `prox.parse` (literals may hold any
    character), the paper's thresholds, documented edge cases; fast.
  * ``reference``: byte-identical output to the ProX reference implementation, quirks
    and error counts included; a reference exception becomes ``result.failed``.
Both are pure functions of (text, program, options).
"""
from __future__ import annotations


from prox.executor.options import DEFAULT_OPTIONS, DROP_RATIO, KEEP_RATIO, MAX_ERRORS, MIN_WORDS, ExecOptions
from prox.executor.reference import execute_reference
from prox.executor.result import ExecutionResult
from prox.executor.strict import execute_strict
from prox.program import STAGES, Program

MODES = ("strict", "reference")


def execute(text: str, program: str | Program, *, stage: str = "chunk", mode: str = "strict",
            options: ExecOptions | None = None) -> ExecutionResult:
    """Run ``program`` on ``text``; never raises on any string text/program.

    Raises ValueError/TypeError only for bad arguments (unknown stage or mode, non-str text).
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be str, not {type(text).__name__}")
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, not {stage!r}")
    opts = options if options is not None else DEFAULT_OPTIONS
    if mode == "strict":
        return execute_strict(text, program, stage, opts)
    if mode == "reference":
        return execute_reference(text, program, stage, opts)
    raise ValueError(f"mode must be one of {MODES}, not {mode!r}")



__all__ = [
    "execute",
    "ExecOptions",
    "ExecutionResult",
    "DEFAULT_OPTIONS",
    "DROP_RATIO",
    "KEEP_RATIO",
    "MAX_ERRORS",
    "MIN_WORDS",
    "MODES",
]
