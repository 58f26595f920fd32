"""datatrove executors for `prox refine`: local (quiet console), Slurm and Ray."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Any

from datatrove.executor import LocalPipelineExecutor


@contextmanager
def quiet_task_logs(console_level: str):
    """datatrove logs every task at INFO to stderr; keep only ``console_level`` and up there.

    The full log still goes to ``<logging_dir>/logs/task_XXXXX.log``.
    """
    import datatrove.executor.base as base
    from datatrove.utils.logging import logger

    original_add, original_close = base.add_task_logger, base.close_task_logger

    def add(logging_dir, rank, local_rank=0, node_rank=-1):
        logger.remove()
        logfile = logging_dir.open(f"logs/task_{rank:05d}.log", "w")
        # errors are left to the caller (`prox refine` prints one line); the file log has the traceback
        quiet = console_level not in ("DEBUG", "INFO")
        logger.add(sys.stderr, level=console_level if local_rank == 0 else "ERROR",
                   format="{level} | task {extra[rank]} | {message}",
                   filter=(lambda r: r["level"].no < 40) if quiet else None)
        logger.add(logfile, level="DEBUG")
        logger.configure(extra={"rank": rank})
        logger.info(f"Launching pipeline for {rank=}")
        return logfile

    def close(logfile):
        logger.complete()
        logger.remove()
        logger.add(sys.stderr, level=console_level, format="{level} | {message}")
        logfile.close()

    base.add_task_logger, base.close_task_logger = add, close
    try:
        yield
    finally:
        base.add_task_logger, base.close_task_logger = original_add, original_close


class ProxLocalExecutor(LocalPipelineExecutor):
    """LocalPipelineExecutor whose console output is limited to warnings (or ``console_level``)."""

    def __init__(self, *args: Any, console_level: str = "WARNING", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.console_level = console_level

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1):
        with quiet_task_logs(self.console_level):
            return super()._run_for_rank(rank, local_rank, node_rank)
