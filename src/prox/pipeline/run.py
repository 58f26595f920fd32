"""The `prox refine` run driver: config -> datatrove pipeline -> executor -> stats.json.

The run folder (OUTDIR) is laid out by `prox.pipeline.layout`.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from datatrove.pipeline.base import PipelineStep

from prox.executor import MODES
from prox.pipeline.inputs import InputError, resolve_inputs
from prox.pipeline.layout import OUTPUT_FORMATS, RunLayout
from prox.pipeline.reader import ProxReader
from prox.pipeline.stages import DEFAULT_BATCH_SIZE, DEFAULT_MAX_CHARS, DEFAULT_MAX_LINES, ProxChunkStage, ProxDocStage
from prox.pipeline.stats import build_run_stats, write_json_atomic
from prox.pipeline.writer import ProxOutcomeWriter
from prox.program import STAGES
from prox.records import count_records

EXECUTORS = ("local", "slurm", "ray")
# Settings that change what a task produces: a rerun into the same OUTDIR must match them.
_RUN_IDENTITY = ("inputs", "refiner", "refiner_options", "stages", "mode", "text_field", "id_field",
                 "limit", "output_format", "max_chars", "max_lines", "tasks")
# Identity settings added after some run.json files were written: their value in those runs.
_IDENTITY_BEFORE = {"max_lines": DEFAULT_MAX_LINES}


class RunError(Exception):
    """A configuration problem reported as one line, before any work starts."""


@dataclass
class RefineConfig:
    inputs: list[str]
    output_dir: str
    # A spec ("builtin", "rules:c4", "module:factory"), an already built Refiner object (Python API;
    # it is shared, not rebuilt, in this process), or None: no refining at all (no stages run; every
    # readable document is kept unchanged, with the usual layout and stats).
    refiner: Any = "builtin"
    refiner_options: dict[str, Any] = field(default_factory=dict)
    stages: tuple[str, ...] = STAGES
    mode: str = "strict"
    text_field: str = "text"
    id_field: str = "id"
    limit: int | None = None
    output_format: str = "jsonl"
    batch_size: int = DEFAULT_BATCH_SIZE
    max_chars: int = DEFAULT_MAX_CHARS
    max_lines: int = DEFAULT_MAX_LINES
    executor: str = "local"
    tasks: int = 1
    workers: int = 1
    slurm: dict[str, Any] = field(default_factory=dict)   # partition, time, cpus_per_task, mem_per_cpu_gb, job_name, qos, ...
    ray: dict[str, Any] = field(default_factory=dict)     # cpus_per_task, mem_per_cpu_gb, gpus_per_task, ...
    progress: bool | None = None   # None: only on a terminal, local executor, one worker
    overwrite: bool = False
    console_level: str = "WARNING"

    def validate(self) -> None:
        if self.refiner is None:
            self.stages = ()
        elif not self.stages or any(s not in STAGES for s in self.stages):
            raise RunError(f"--stages must be a non-empty subset of {','.join(STAGES)}, got {','.join(self.stages) or '(none)'}")
        self.stages = tuple(s for s in STAGES if s in (self.stages or ()))
        if self.mode not in MODES:
            raise RunError(f"--mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.executor not in EXECUTORS:
            raise RunError(f"--executor must be one of {', '.join(EXECUTORS)}, got {self.executor!r}")
        if self.output_format not in OUTPUT_FORMATS:
            raise RunError(f"--output-format must be one of {', '.join(OUTPUT_FORMATS)}, got {self.output_format!r}")
        if self.max_chars < 1 or self.max_lines < 1:
            raise RunError("--max-chars and --max-lines must be at least 1")
        if self.tasks < 1 or self.workers < 1 or self.batch_size < 1:
            raise RunError("--tasks, --workers and --batch-size must be at least 1")
        if self.limit is not None and self.limit < 0:
            raise RunError("--limit must be >= 0")
        if self.executor == "slurm" and not self.slurm.get("partition"):
            raise RunError("--executor slurm needs --slurm-partition")
        if self.slurm.get("venv_path"):
            self.slurm["venv_path"] = _activate_script(self.slurm["venv_path"])
        if isinstance(self.refiner, str):
            _check_refiner_spec(self.refiner)
        if self.refiner is not None:
            self._check_stages()

    def _check_stages(self) -> None:
        """Refuse, before any work, a stage the refiner cannot run (else every document would fail)."""
        from prox.refiners import refiner_stages

        try:
            available = refiner_stages(self.refiner, **self.refiner_options)
        except ValueError as exc:
            raise RunError(f"refiner {refiner_label(self.refiner)!r}: {exc}") from None
        missing = [s for s in self.stages if s not in available]
        if missing:
            can = [s for s in self.stages if s in available] or list(available)
            raise RunError(
                f"refiner {refiner_label(self.refiner)!r} cannot run the {' and '.join(missing)} stage "
                f"(it has no {'/'.join(missing)} model; it can run: {','.join(available) or 'nothing'}); "
                f"pass --stages {','.join(can)}, or give it a {missing[0]} model (--{missing[0]}-model or --model)"
            )


def refiner_label(refiner: Any) -> str | None:
    """What run.json and stats.json record for the refiner: the spec, or an object's name."""
    if refiner is None or isinstance(refiner, str):
        return refiner
    return str(getattr(refiner, "name", None) or f"{type(refiner).__module__}.{type(refiner).__qualname__}")


def _activate_script(venv: str) -> str:
    """The script the Slurm jobs source (datatrove runs ``source VENV_PATH``): a venv folder means its
    ``bin/activate``. A path that is neither is refused here, not in every job."""
    path = os.path.abspath(venv)
    if os.path.isdir(path):
        path = os.path.join(path, "bin", "activate")
    if not os.path.isfile(path):
        raise RunError(f"--slurm-venv {venv}: no venv activate script at {path}")
    return path


def _check_refiner_spec(spec: str) -> None:
    from prox.refiners import check_refiner_spec

    try:
        check_refiner_spec(spec)
    except ValueError as exc:
        raise RunError(str(exc)) from None


def build_pipeline(config: RefineConfig, files: list[str], layout: RunLayout) -> list:
    stage_args = dict(batch_size=config.batch_size, cache_dir=layout.cache_dir, mode=config.mode,
                      max_chars=config.max_chars, max_lines=config.max_lines)
    pipeline: list = [ProxReader(files, text_field=config.text_field, id_field=config.id_field, limit=config.limit)]
    if "doc" in config.stages:
        pipeline.append(ProxDocStage(config.refiner, config.refiner_options, **stage_args))
    if "chunk" in config.stages:
        pipeline.append(ProxChunkStage(config.refiner, config.refiner_options, **stage_args))
    pipeline.append(ProxOutcomeWriter(layout.output_dir, output_format=config.output_format, work_dir=layout.work_dir))
    return pipeline


def _prepare_output(config: RefineConfig, identity: dict[str, Any], layout: RunLayout) -> None:
    run_file = layout.run_file
    outputs = layout.user_outputs()
    if os.path.exists(run_file):
        with open(run_file, encoding="utf-8") as handle:
            previous = json.load(handle)
        changed = [k for k in _RUN_IDENTITY if previous.get(k, _IDENTITY_BEFORE.get(k)) != identity.get(k)]
        if changed and not config.overwrite:
            raise RunError(
                f"{config.output_dir} holds a run with different settings ({', '.join(changed)}); "
                "rerun with the same settings to resume, or pass --overwrite, or choose another -o"
            )
        if not changed:
            return  # resume
    elif any(os.path.exists(p) for p in outputs) and not config.overwrite:
        raise RunError(f"{config.output_dir} already holds outputs not made by prox refine; pass --overwrite or choose another -o")
    if config.overwrite:
        for path in outputs + [layout.work_dir]:
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)
    os.makedirs(layout.work_dir, exist_ok=True)
    write_json_atomic(run_file, identity)


def run_refine(config: RefineConfig) -> dict[str, Any]:
    """Run (or resume) a refine job. Returns the stats written to ``OUTDIR/stats.json``.

    Raises InputError / RunError with a one-line message for bad inputs or settings.
    With ``executor="slurm"`` the jobs are submitted and a placeholder is returned; a
    dependent one-task job writes stats.json when they finish.
    """
    config.validate()
    files = resolve_inputs(config.inputs)
    config.output_dir = os.path.abspath(config.output_dir)
    layout = RunLayout(config.output_dir)
    identity = {**{k: getattr(config, k) for k in _RUN_IDENTITY}, "inputs": files, "stages": list(config.stages),
                "refiner": refiner_label(config.refiner)}
    _prepare_output(config, identity, layout)
    pipeline = build_pipeline(config, files, layout)
    run_info = _run_info(config, files)
    logging_dir = layout.logs_dir

    if config.executor == "slurm":
        return _submit_slurm(config, pipeline, layout, run_info)

    _quiet_main_logger(config.console_level)
    started = time.time()
    if config.executor == "ray":
        from datatrove.executor import RayPipelineExecutor

        executor = RayPipelineExecutor(pipeline, tasks=config.tasks, workers=config.workers if config.workers > 1 else -1,
                                       logging_dir=logging_dir, skip_completed=True, **config.ray)
        executor.run()
    else:
        from prox.pipeline.executors import ProxLocalExecutor

        executor = ProxLocalExecutor(pipeline, tasks=config.tasks, workers=config.workers, logging_dir=logging_dir,
                                     skip_completed=True, console_level=config.console_level)
        show = config.progress if config.progress is not None else sys.stderr.isatty()
        if show and config.workers == 1:
            _run_with_progress(executor, config, files, layout)
        else:
            executor.run()
    wall = time.time() - started
    return finish_stats(layout, world_size=config.tasks, wall_s=wall, run_info=run_info)


def finish_stats(layout: RunLayout, *, world_size: int, wall_s: float | None, run_info: dict[str, Any]) -> dict[str, Any]:
    """Merge the tasks' stats into OUTDIR/stats.json (and return it)."""
    stats = build_run_stats(layout, world_size=world_size, wall_s=wall_s, run_info=run_info)
    stats["complete"] = stats["tasks"]["reported"] == world_size
    names = sorted({t.get("refiner_name") for t in stats["tasks"]["per_task"] if t.get("refiner_name")})
    if "refiner" in stats:
        stats["refiner"] = {"name": names[0] if len(names) == 1 else names or None, **stats["refiner"]}
    write_json_atomic(layout.stats_file, stats)
    return stats


def _run_info(config: RefineConfig, files: list[str]) -> dict[str, Any]:
    from prox import __version__

    return {
        "refiner": {"spec": refiner_label(config.refiner), "options": config.refiner_options},
        "settings": {
            "stages": list(config.stages), "mode": config.mode, "text_field": config.text_field,
            "id_field": config.id_field, "limit": config.limit, "batch_size": config.batch_size,
            "max_chars": config.max_chars, "max_lines": config.max_lines, "output_format": config.output_format,
            "executor": config.executor, "tasks": config.tasks, "workers": config.workers,
        },
        "inputs": files,
        "prox_version": __version__,
    }


def _quiet_main_logger(level: str) -> None:
    from datatrove.utils.logging import logger

    logger.remove()
    logger.add(sys.stderr, level=level, format="{level} | {message}")


def _run_with_progress(executor, config: RefineConfig, files: list[str], layout: RunLayout) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from prox.pipeline import progress

    total: int | None = None
    if sum(os.path.getsize(f) for f in files) < 2 * 1024**3:  # counting lines of bigger inputs costs too much
        counts = [count_records(f) for f in files]
        total = None if any(c is None for c in counts) else sum(counts)
        if total is not None and config.limit is not None:
            total = min(total, config.limit)
    done = 0
    for rank in range(config.tasks):
        task_file = layout.task_file(rank)
        if executor.is_rank_completed(rank) and os.path.exists(task_file):
            with open(task_file, encoding="utf-8") as handle:
                done += json.load(handle).get("docs_in", 0)
    columns = [TextColumn("[bold]refine"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]} docs/s"), TextColumn("kept {task.fields[kept]} dropped {task.fields[dropped]} failed {task.fields[failed]}"),
               TimeElapsedColumn(), TimeRemainingColumn()]
    started = time.time()
    outcomes = {"kept": 0, "dropped": 0, "failed": 0}
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task("refine", total=total, completed=done, rate="-", **outcomes)

        def hook(n: int, outcome: str) -> None:
            outcomes[outcome] += n
            elapsed = time.time() - started
            processed = sum(outcomes.values())
            bar.update(task, advance=n, rate=f"{processed / elapsed:,.0f}" if elapsed > 0 else "-", **outcomes)

        progress.set_hook(hook)
        try:
            executor.run()
        finally:
            progress.set_hook(None)


def _submit_slurm(config: RefineConfig, pipeline: list, layout: RunLayout, run_info: dict[str, Any]) -> dict[str, Any]:
    from datatrove.executor import SlurmPipelineExecutor

    slurm = dict(config.slurm)
    job_name = slurm.pop("job_name", "prox-refine")
    main = SlurmPipelineExecutor(pipeline, tasks=config.tasks, workers=config.workers if config.workers > 1 else -1,
                                 logging_dir=layout.logs_dir, skip_completed=True, job_name=job_name,
                                 time=slurm.pop("time", "24:00:00"), partition=slurm.pop("partition"), **slurm)
    merge = SlurmPipelineExecutor(
        [ProxStatsMerge(layout.output_dir, world_size=config.tasks, run_info=run_info, work_dir=layout.work_dir)],
        tasks=1, logging_dir=layout.merge_logs_dir, job_name=f"{job_name}-stats", depends=main,
        time="00:30:00", partition=config.slurm["partition"], cpus_per_task=1,
        # the merge job runs in the same environment as the tasks
        **{k: config.slurm[k] for k in ("venv_path", "qos") if config.slurm.get(k)},
    )
    merge.run()
    return {"submitted": True, "job_name": job_name, "logging_dir": layout.logs_dir}


class ProxStatsMerge(PipelineStep):
    """One-task step that merges per-task stats into stats.json (the Slurm follow-up job)."""

    name = "ProX stats merge"
    type = "Stats"

    def __init__(self, output_dir: str, *, world_size: int, run_info: dict[str, Any], work_dir: str | None = None):
        super().__init__()
        self.layout, self.world_size, self.run_info = RunLayout(output_dir, work_dir), world_size, run_info

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        if data:
            yield from data
        finish_stats(self.layout, world_size=self.world_size, wall_s=None, run_info=self.run_info)


__all__ = ["RefineConfig", "RunError", "InputError", "run_refine", "build_pipeline", "finish_stats", "ProxStatsMerge"]
