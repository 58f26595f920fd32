"""`prox refine`: the two-stage ProX pipeline on datatrove.

Steps (usable in your own datatrove pipelines): ProxReader (`reader`), ProxDocStage and
ProxChunkStage (`stages`), ProxOutcomeWriter (`writer`). The run folder and the output record:
`layout`. Driver: RefineConfig + run_refine (`run`).

    pipeline = [ProxReader(["data/"]), ProxDocStage("builtin"), ProxChunkStage("builtin"), ProxOutcomeWriter("out/")]
    LocalPipelineExecutor(pipeline, tasks=4, logging_dir="out/.prox/logs").run()
"""
from __future__ import annotations

from prox.pipeline.inputs import InputError, resolve_inputs
from prox.pipeline.reader import ProxReader
from prox.pipeline.run import RefineConfig, RunError, build_pipeline, run_refine
from prox.pipeline.stages import ProxChunkStage, ProxDocStage
from prox.pipeline.writer import ProxOutcomeWriter

__all__ = [
    "InputError", "RunError", "RefineConfig", "run_refine", "build_pipeline", "resolve_inputs",
    "ProxReader", "ProxDocStage", "ProxChunkStage", "ProxOutcomeWriter",
]
