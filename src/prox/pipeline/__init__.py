"""`prox refine`: the two-stage ProX pipeline on datatrove.

Steps (usable in your own datatrove pipelines): ProxReader, ProxDocStage, ProxChunkStage,
ProxExecute, ProxOutcomeWriter. Driver: RefineConfig + run_refine.
"""
from __future__ import annotations

from prox.pipeline.inputs import InputError, resolve_inputs
from prox.pipeline.run import RefineConfig, RunError, build_pipeline, run_refine
from prox.pipeline.steps import ProxChunkStage, ProxDocStage, ProxExecute, ProxOutcomeWriter, ProxReader

__all__ = [
    "InputError", "RunError", "RefineConfig", "run_refine", "build_pipeline", "resolve_inputs",
    "ProxReader", "ProxDocStage", "ProxChunkStage", "ProxExecute", "ProxOutcomeWriter",
]
