"""The local executor of `prox refine`: datatrove's, with a quiet console.

datatrove logs every task at INFO to stderr: at the start of each task it adds a loguru sink on
the ``sys.stderr`` of that moment (``datatrove.utils.logging.add_task_logger``). While a task
runs, ``sys.stderr`` is a `ConsoleFilter` (``contextlib.redirect_stderr``), so that sink keeps
only ``console_level`` and up, one short line each. The full log still goes to
``.prox/logs/logs/task_XXXXX.log``. Nothing of datatrove is replaced.
"""
from __future__ import annotations

import io
import sys
import traceback
from contextlib import redirect_stderr
from typing import Any

from datatrove.executor import LocalPipelineExecutor
from loguru import logger

ERROR_LEVEL = 40  # loguru's ERROR


class ConsoleFilter(io.TextIOBase):
    """A text stream in front of ``stream`` that filters the loguru records written to it.

    A record (loguru passes a message that carries its ``record``) below ``level`` is left out;
    so is an error unless ``level`` is DEBUG or INFO (`prox refine` reports a failure in one
    line; the task log has the traceback). A kept record is written as
    ``LEVEL | task N | message``. Any other text passes through unchanged.
    """

    def __init__(self, stream: Any, level: str, rank: int | None = None):
        self.stream = stream
        self.min_level = logger.level(level).no
        self.quiet_errors = level not in ("DEBUG", "INFO")
        self.rank = rank

    def write(self, text: str) -> int:
        record = getattr(text, "record", None)
        if record is None:
            return self.stream.write(text)
        level = record["level"]
        if level.no < self.min_level or (self.quiet_errors and level.no >= ERROR_LEVEL):
            return len(text)
        task = f"task {self.rank} | " if self.rank is not None else ""
        line = f"{level.name} | {task}{record['message']}\n"
        if record["exception"] is not None:
            line += "".join(traceback.format_exception(*record["exception"]))
        self.stream.write(line)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()


class ProxLocalExecutor(LocalPipelineExecutor):
    """LocalPipelineExecutor whose console output is limited to warnings (or ``console_level``)."""

    def __init__(self, *args: Any, console_level: str = "WARNING", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.console_level = console_level

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1):
        console = ConsoleFilter(sys.stderr, self.console_level, rank)
        try:
            with redirect_stderr(console):
                return super()._run_for_rank(rank, local_rank, node_rank)
        finally:
            console.rank = None  # datatrove's default sink, re-added at the task's end, stays on it
