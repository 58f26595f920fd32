"""Typed refiner options: a misspelt option is an error for every refiner, before any work."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from prox.cli import app
from prox.refiners import (REFINERS, UnknownOptionError, accepts_option, check_refiner_options, get_refiner,
                           refiner_options_class, refiner_stages)
from prox.refiners.builtin import BuiltinOptions
from prox.refiners.lm import OpenAIOptions, TransformersOptions, VLLMOptions
from prox.refiners.options import option_names, parse_options
from prox.refiners.rules import RuleOptions

SPECS = {"builtin": "builtin", "encoder": "encoder", "cascade": "cascade", "transformers": "transformers", "vllm": "vllm", "openai": "openai", "rules": "rules:c4"}


def test_every_registered_refiner_declares_typed_options():
    assert set(SPECS) == set(REFINERS)
    for spec in SPECS.values():
        assert refiner_options_class(spec) is not None, spec


@pytest.mark.parametrize("spec", sorted(SPECS.values()))
def test_a_misspelt_option_is_an_error_listing_the_valid_ones(spec):
    with pytest.raises(UnknownOptionError, match=r"unknown option\(s\) for the .*: line_treshold; valid options: "):
        check_refiner_options(spec, line_treshold=0.01)
    with pytest.raises(ValueError):  # what configuration checks catch
        refiner_stages(spec, line_treshold=0.01, model="m")
    with pytest.raises(TypeError):  # what a bad keyword argument raises
        check_refiner_options(spec, line_treshold=0.01)


def test_the_builtin_no_longer_ignores_a_misspelt_threshold():
    with pytest.raises(UnknownOptionError, match="valid options: doc_threshold, line_threshold, model, normalize, protect_math"):
        get_refiner("builtin", line_treshold=0.01)
    refiner = get_refiner("builtin", line_threshold="0.25", protect_math="false")  # strings from -O are converted
    assert refiner.line_threshold == 0.25 and refiner.protect_math is False
    with pytest.raises(ValueError, match="option protect_math: expected true or false"):
        get_refiner("builtin", protect_math="maybe")
    with pytest.raises(ValueError, match="option line_threshold: expected float"):
        get_refiner("builtin", line_threshold="high")


def test_values_are_converted_to_the_field_types():
    opts = parse_options(OpenAIOptions, {"concurrency": "4", "timeout_s": "2.5", "constrained": "yes", "api": "chat"},
                         refiner="openai")
    assert (opts.concurrency, opts.timeout_s, opts.constrained, opts.api) == (4, 2.5, True, "chat")
    with pytest.raises(ValueError, match="expected an integer"):
        parse_options(VLLMOptions, {"max_model_len": 1.5}, refiner="vllm")
    assert parse_options(RuleOptions, {"line_rules": None}, refiner="rules").line_rules is None
    # every LM refiner shares the common options; each adds its own
    common = set(option_names(TransformersOptions)) & set(option_names(VLLMOptions)) & set(option_names(OpenAIOptions))
    assert {"model", "doc_model", "chunk_model", "tokenizer", "preset", "batch_size", "constrained"} <= common
    assert "tensor_parallel_size" in option_names(VLLMOptions) and "device" in option_names(TransformersOptions)
    assert set(option_names(BuiltinOptions)) == {"model", "line_threshold", "doc_threshold", "protect_math", "normalize",
                                                 "rescue_margin"}


def test_pipeline_settings_stay_out_of_refiner_options():
    assert not accepts_option("builtin", "batch_size") and not accepts_option("rules:c4", "batch_size")
    assert accepts_option("transformers", "batch_size") and accepts_option("openai", "batch_size")


def test_prox_refine_refuses_a_misspelt_option_before_any_work(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "a", "text": "A paragraph of ordinary English text. " * 5}) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    bad = CliRunner().invoke(app, ["refine", str(src), "-o", str(out), "-O", "line_treshold=0.01"])
    assert bad.exit_code == 2 and "line_treshold" in bad.output and "valid options" in bad.output
    assert not (out / "kept").exists()  # nothing ran
    # --batch-size is the pipeline's batch: the builtin does not get it and runs
    ok = CliRunner().invoke(app, ["refine", str(src), "-o", str(out), "--batch-size", "7", "-O", "line_threshold=0.5"])
    assert ok.exit_code == 0, ok.output
    assert json.loads((out / ".prox" / "run.json").read_text())["refiner_options"] == {"line_threshold": 0.5}
