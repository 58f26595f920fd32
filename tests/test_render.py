"""Prompt rendering: every public ProX prompt vector, the chunker, and the model/plain formats."""
from __future__ import annotations

import gzip
import json
import random
import re
from pathlib import Path

import pytest

from conftest import BENCHMARKS, LLAMA2_TOKENIZER, REFERENCE
from prox.render import (
    CHUNK_TOKEN_BUDGET,
    DOC_PROMPT_MAX_IDS,
    PROX_SYSTEM_PROMPT,
    Chunk,
    PromptRenderer,
    RenderedPrompt,
    RenderError,
    greedy_chunks,
    llama2_chat,
    numbered_lines,
    wrap_chunk,
)

PROMPTS_FILE = REFERENCE / "prompts-public.jsonl.gz"
BENCH_DOCS = BENCHMARKS / "docs-public.jsonl.gz"


def _load_vectors() -> list[dict]:
    if not PROMPTS_FILE.is_file():
        return []
    with gzip.open(PROMPTS_FILE, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


VECTORS = _load_vectors()
needs_shared = pytest.mark.skipif(not VECTORS or not LLAMA2_TOKENIZER.is_dir(),
                                  reason="../shared fixtures (reference prompts, llama2 tokenizer) absent")


@pytest.fixture(scope="module")
def prox_renderer() -> PromptRenderer:
    if not LLAMA2_TOKENIZER.is_dir():
        pytest.skip("../shared/fixtures/llama2-tokenizer absent")
    return PromptRenderer(LLAMA2_TOKENIZER, "prox")


@pytest.fixture(scope="module")
def prox_untruncated() -> PromptRenderer:
    if not LLAMA2_TOKENIZER.is_dir():
        pytest.skip("../shared/fixtures/llama2-tokenizer absent")
    return PromptRenderer(LLAMA2_TOKENIZER, "prox", doc_max_ids=None)


@pytest.fixture(scope="module")
def rendered_vectors(prox_renderer):
    """All 73 documents rendered in one batch (the way the pipeline calls the renderer)."""
    texts = [v["text"] for v in VECTORS]
    return {
        "doc": prox_renderer.doc_prompts(texts),
        "chunks": prox_renderer.render_chunks_batch(texts),
        "counts": prox_renderer.line_token_counts_batch(texts),
    }


# ---------------------------------------------------------------------------------------------
# The ProX reference vectors, record by record


@needs_shared
def test_vector_file_is_the_documented_public_split():
    assert len(VECTORS) == 73
    assert sum(len(v["chunks"]) for v in VECTORS) == 173
    assert sum(v["doc_prompt_truncated"] for v in VECTORS) == 19


@needs_shared
@pytest.mark.parametrize("i", range(len(VECTORS)), ids=[v["id"] for v in VECTORS])
def test_doc_prompt_matches_reference(i, rendered_vectors, prox_untruncated):
    vec = VECTORS[i]
    got = rendered_vectors["doc"][i]
    assert isinstance(got, RenderedPrompt)
    assert got.text == vec["doc_prompt"]
    assert got.token_ids == vec["doc_prompt_ids"]
    assert got.truncated == vec["doc_prompt_truncated"]
    full = prox_untruncated.doc_prompt(vec["text"])
    assert len(full.token_ids) == vec["doc_prompt_untruncated_len"]
    assert full.token_ids[:DOC_PROMPT_MAX_IDS] == vec["doc_prompt_ids"]
    assert not full.truncated


@needs_shared
@pytest.mark.parametrize("i", range(len(VECTORS)), ids=[v["id"] for v in VECTORS])
def test_chunk_prompts_match_reference(i, rendered_vectors):
    vec = VECTORS[i]
    assert rendered_vectors["counts"][i] == vec["chunk_line_token_counts"]
    chunks, prompts = rendered_vectors["chunks"][i]
    assert len(chunks) == len(prompts) == len(vec["chunks"])
    for chunk, prompt, ref in zip(chunks, prompts, vec["chunks"]):
        assert isinstance(chunk, Chunk)
        assert (chunk.first_line, chunk.last_line) == (ref["first_line"], ref["last_line"])
        assert chunk.budget_tokens == ref["budget_tokens"]
        assert chunk.text == ref["chunk_text"]
        assert prompt.text == ref["prompt"]
        assert prompt.token_ids == ref["prompt_ids"]


@needs_shared
def test_single_document_api_equals_batch_api(prox_renderer, rendered_vectors):
    for i in (0, 30, 60):
        text = VECTORS[i]["text"]
        assert prox_renderer.chunks(text) == rendered_vectors["chunks"][i][0]
        assert prox_renderer.chunk_prompts(text) == rendered_vectors["chunks"][i][1]
        assert prox_renderer.doc_prompt(text) == rendered_vectors["doc"][i]
        assert prox_renderer.line_token_counts(text) == rendered_vectors["counts"][i]


@needs_shared
def test_chunks_partition_the_document(rendered_vectors):
    for vec, (chunks, _) in zip(VECTORS, rendered_vectors["chunks"]):
        n_lines = 0 if vec["text"] == "" else len(vec["text"].split("\n"))
        covered = [line for c in chunks for line in range(c.first_line, c.last_line + 1)]
        assert covered == list(range(n_lines))
        for c in chunks:
            assert c.budget_tokens <= CHUNK_TOKEN_BUDGET or c.first_line == c.last_line


@needs_shared
def test_over_1000_lines_number_with_four_digits(prox_renderer):
    vec = next(v for v in VECTORS if v["category"] == "over_1000_lines")
    chunks = prox_renderer.chunks(vec["text"])
    last = chunks[-1].text.split("\n")[-1]
    n = len(vec["text"].split("\n")) - 1
    assert last.startswith(f"[{n}]") and n >= 1000
    assert any(line.startswith("[999]") for c in chunks for line in c.text.split("\n"))


@needs_shared
def test_prox_chunk_ids_have_the_reference_double_bos(prox_renderer):
    prompt = prox_renderer.chunk_prompts("hello\nworld")[0]
    assert prompt.text.startswith("<s>[INST] <<SYS>>\n" + PROX_SYSTEM_PROMPT)
    assert prompt.token_ids[:2] == [1, 1]
    doc = prox_renderer.doc_prompt("hello\nworld")
    assert doc.token_ids[0] == 1 and doc.token_ids[1] != 1


@needs_shared
def test_doc_ids_match_sentencepiece_slow_tokenizer_on_real_pages(prox_untruncated):
    """Independent check of the slow-tokenizer emulation: sentencepiece itself, run the way
    transformers' LlamaTokenizer(legacy=False) runs it, on real pages and adversarial strings."""
    spm = pytest.importorskip("sentencepiece")
    if not BENCH_DOCS.is_file():
        pytest.skip("../shared/benchmarks absent")
    sp = spm.SentencePieceProcessor()
    sp.LoadFromSerializedProto(_without_dummy_prefix((LLAMA2_TOKENIZER / "tokenizer.model").read_bytes()))
    texts = []
    with gzip.open(BENCH_DOCS, "rt", encoding="utf-8") as fh:
        for line in fh:
            texts.append(json.loads(line)["text"][:4000])
            if len(texts) == 80:
                break
    rng = random.Random(7)
    alphabet = [" ", "  ", "\n", "\t", "\u2581", "<s>", "</s>", "<unk>", "<s", "[INST]", "a", "e\u0301",
                "\u3000", "\xa0", "\u2028", "\x85", "日本", "😀", "\x00", "\r", "<<SYS>>", "12"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 10))) for _ in range(400)]
    for text in texts:
        assert prox_untruncated._doc_ids([text])[0] == _slow_llama_ids(sp, text), repr(text[:80])


def _varint(buf, i):
    value, shift = 0, 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _without_dummy_prefix(model: bytes) -> bytes:
    """ModelProto with normalizer_spec.add_dummy_prefix = false (what transformers does for
    legacy=False), by editing the one varint in the serialized protobuf."""
    buf = bytearray(model)
    i = 0
    while i < len(buf):
        key, j = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, i = _varint(buf, j)
            continue
        assert wire == 2, wire
        length, start = _varint(buf, j)
        if field == 3:  # normalizer_spec
            p = start
            while p < start + length:
                key2, q = _varint(buf, p)
                if key2 & 7 == 0:
                    _, r = _varint(buf, q)
                    if key2 >> 3 == 3:  # add_dummy_prefix
                        buf[q] = 0
                    p = r
                else:
                    l2, r = _varint(buf, q)
                    p = r + l2
        i = start + length
    return bytes(buf)


def _slow_llama_ids(sp, text: str) -> list[int]:
    """transformers 4.39 LlamaTokenizer(legacy=False).encode(text, add_special_tokens=False)."""
    if not text:
        return []
    special = ("<unk>", "<s>", "</s>")
    unk_len = len(sp.encode("<unk>", out_type=str))
    pieces: list[str] = []
    for part in re.split("(<unk>|</s>|<s>)", "\u2581" + text.replace("\u2581", " ")):
        if part in special:
            pieces.append(part)
        elif part and not part.startswith(("\u2581", " ")):
            pieces.extend(sp.encode(part, out_type=str))
        elif part:
            pieces.extend(sp.encode("<unk>" + part, out_type=str)[unk_len:])
    if len(pieces) > 1 and pieces[0] == "\u2581" and pieces[1] in special:
        pieces = pieces[1:]
    return [sp.piece_to_id(p) for p in pieces]


# ---------------------------------------------------------------------------------------------
# Pure pieces


def test_greedy_chunks_rules():
    assert greedy_chunks([], 10) == []
    assert greedy_chunks([3, 3, 4], 10) == [(0, 2, 10)]  # exactly at the budget stays
    assert greedy_chunks([3, 3, 5], 10) == [(0, 1, 6), (2, 2, 5)]  # one over starts a new chunk
    assert greedy_chunks([12, 2, 2], 10) == [(0, 0, 12), (1, 2, 4)]  # over-budget line first
    assert greedy_chunks([2, 12, 2], 10) == [(0, 0, 2), (1, 1, 12), (2, 2, 2)]  # in the middle
    assert greedy_chunks([2, 2, 12], 10) == [(0, 1, 4), (2, 2, 12)]  # at the end
    assert greedy_chunks([10, 10, 1], 10) == [(0, 0, 10), (1, 1, 10), (2, 2, 1)]


def test_numbering_and_wrapping():
    assert numbered_lines("a\n\nb") == ["[000]a", "[001]", "[002]b"]
    assert numbered_lines("x\r\ny") == ["[000]x\r", "[001]y"]  # split on "\n" only
    lines = numbered_lines("\n" * 1000)
    assert lines[999] == "[999]" and lines[1000] == "[1000]"
    assert wrap_chunk("[000]a") == "[doc]\n[000]a\n[/doc]"


def test_llama2_chat_strips_the_whole_content():
    assert llama2_chat("  hi \xa0\n") == (
        "<s>[INST] <<SYS>>\n" + PROX_SYSTEM_PROMPT + "\n<</SYS>>\n\n  hi [/INST]")
    assert llama2_chat("\n\n") == "<s>[INST] <<SYS>>\n" + PROX_SYSTEM_PROMPT + "\n<</SYS>> [/INST]"
    assert llama2_chat(" q ", system=None) == "<s>[INST] q [/INST]"


# ---------------------------------------------------------------------------------------------
# Budget and doc length are configurable


@needs_shared
def test_smaller_budget_gives_more_chunks_within_budget():
    text = next(v["text"] for v in VECTORS if v["category"] == "single_chunk" and v["text"].count("\n") > 15)
    small = PromptRenderer(LLAMA2_TOKENIZER, "prox", chunk_budget=120)
    counts = small.line_token_counts(text)
    chunks = small.chunks(text)
    assert len(chunks) > 1
    for c in chunks:
        assert c.budget_tokens == sum(counts[c.first_line : c.last_line + 1])
        assert c.budget_tokens <= 120 or c.first_line == c.last_line
    # Each chunk is closed only because the next line would not fit.
    for c, nxt in zip(chunks, chunks[1:]):
        assert c.budget_tokens + counts[nxt.first_line] > 120


@needs_shared
def test_doc_max_ids_cuts_from_the_right():
    text = VECTORS[0]["text"]
    full = PromptRenderer(LLAMA2_TOKENIZER, "prox", doc_max_ids=None).doc_prompt(text)
    cut = PromptRenderer(LLAMA2_TOKENIZER, "prox", doc_max_ids=50).doc_prompt(text)
    assert cut.truncated and cut.token_ids == full.token_ids[:50]
    assert cut.text == full.text  # the string is never cut


@needs_shared
def test_without_ids_only_strings(prox_renderer):
    r = PromptRenderer(LLAMA2_TOKENIZER, "prox", with_ids=False)
    text = VECTORS[0]["text"]
    assert [p.text for p in r.chunk_prompts(text)] == [p.text for p in prox_renderer.chunk_prompts(text)]
    assert all(p.token_ids is None for p in r.chunk_prompts(text))
    assert r.doc_prompt(text).token_ids is None


def test_bad_options_raise_clear_errors(tmp_path):
    tok_dir = _tiny_tokenizer_dir(tmp_path, chat_template=None)
    with pytest.raises(RenderError, match="unknown preset"):
        PromptRenderer(tok_dir, "chatml")
    with pytest.raises(RenderError, match="chat_template"):
        PromptRenderer(tok_dir, "model")
    with pytest.raises(RenderError, match="chunk_budget"):
        PromptRenderer(tok_dir, "plain", chunk_budget=0)
    with pytest.raises(RenderError, match="no tokenizer.json"):
        PromptRenderer(tmp_path / "nowhere", "plain")
    with pytest.raises(RenderError, match="unknown stage"):
        PromptRenderer(tok_dir, "plain").render(["a"], "line")


# ---------------------------------------------------------------------------------------------
# The model's own chat template and the plain format, on a tiny tokenizer


CHATML = (
    "{% for message in messages %}\n"
    "<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}\n"
    "{% if add_generation_prompt %}\n"
    "<|im_start|>assistant\n"
    "{% endif %}"
)


def _tiny_tokenizer_dir(tmp_path: Path, chat_template: str | None = CHATML) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    specials = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    corpus = ["The quick brown fox jumps over the lazy dog.", "[doc]\n[000]line one\n[/doc]",
              "system user assistant helpful honest"] * 20
    tok.train_from_iterator(corpus, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    out = tmp_path / "tiny-tok"
    out.mkdir(exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    config = {"bos_token": "<s>", "eos_token": {"content": "<|im_end|>"}, "unk_token": "<unk>"}
    if chat_template is not None:
        config["chat_template"] = chat_template
    (out / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return out


def test_model_preset_renders_the_tokenizers_chat_template(tmp_path):
    tok_dir = _tiny_tokenizer_dir(tmp_path)
    r = PromptRenderer(tok_dir, "model", system_prompt="Be terse.")
    text = "The quick fox\n\njumps."
    expected_doc = ("<|im_start|>system\nBe terse.<|im_end|>\n"
                    f"<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n")
    doc = r.doc_prompt(text)
    assert doc.text == expected_doc  # trim_blocks + lstrip_blocks, as Hugging Face renders
    assert doc.token_ids == r.tokenizer.encode(expected_doc, add_special_tokens=False).ids
    assert doc.token_ids[0] == r.tokenizer.token_to_id("<|im_start|>")  # no BOS added twice
    [chunk] = r.chunk_prompts(text)
    assert chunk.text == expected_doc.replace(text, "[doc]\n[000]The quick fox\n[001]\n[002]jumps.\n[/doc]")
    assert chunk.token_ids == r.tokenizer.encode(chunk.text, add_special_tokens=False).ids


def test_model_preset_template_sees_special_tokens_and_no_system(tmp_path):
    template = "{{ bos_token }}{% for m in messages %}{{ m.role }}:{{ m.content }}{{ eos_token }}{% endfor %}"
    tok_dir = _tiny_tokenizer_dir(tmp_path, chat_template=template)
    r = PromptRenderer(tok_dir, "model", system_prompt=None)
    assert r.doc_prompt("fox").text == "<s>user:fox<|im_end|>"
    # chat_template.jinja is read when tokenizer_config.json has none
    (tok_dir / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<s>"}), encoding="utf-8")
    (tok_dir / "chat_template.jinja").write_text("[{{ messages[-1].content }}]", encoding="utf-8")
    assert PromptRenderer(tok_dir, "model").doc_prompt("dog").text == "[dog]"


def test_model_preset_raise_exception_reaches_the_caller(tmp_path):
    from jinja2.exceptions import TemplateError

    template = "{% if messages[0].role == 'system' %}{{ raise_exception('no system role') }}{% endif %}"
    tok_dir = _tiny_tokenizer_dir(tmp_path, chat_template=template)
    with pytest.raises(TemplateError, match="no system role"):
        PromptRenderer(tok_dir, "model").doc_prompt("x")
    assert PromptRenderer(tok_dir, "model", system_prompt=None).doc_prompt("x").text == ""


def test_plain_preset_is_the_user_message_with_default_special_tokens(tmp_path):
    tok_dir = _tiny_tokenizer_dir(tmp_path)
    r = PromptRenderer(tok_dir, "plain", chunk_budget=8)
    text = "The quick brown fox jumps over the lazy dog.\nline one\nline one"
    doc = r.doc_prompt(text)
    assert doc.text == text
    assert doc.token_ids == r.tokenizer.encode(text).ids and doc.token_ids[0] == 1
    chunks = r.chunks(text)
    assert len(chunks) >= 2  # the first line alone is over the tiny budget
    prompts = r.chunk_prompts(text)
    assert [p.text for p in prompts] == [wrap_chunk(c.text) for c in chunks]
    assert all(p.token_ids[0] == 1 for p in prompts)


LLAMA2_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}"
    "{% set system = messages[0]['content'] %}{% set turns = messages[1:] %}"
    "{% else %}{% set system = none %}{% set turns = messages %}{% endif %}\n"
    "{% for m in turns %}\n"
    "{% if loop.first and system is not none %}"
    "{% set content = '<<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' + m['content'] %}"
    "{% else %}{% set content = m['content'] %}{% endif %}\n"
    "{% if m['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% else %}{{ ' ' + content.strip() + ' ' + eos_token }}{% endif %}\n"
    "{% endfor %}"
)


@needs_shared
def test_model_preset_with_a_llama2_template_gives_the_reference_strings():
    """The jinja path, fed a Llama-2 template, agrees with the prox preset on every vector
    (Python str.strip semantics inside the sandbox included); its ids skip the extra BOS."""
    r = PromptRenderer(LLAMA2_TOKENIZER, "model", chat_template=LLAMA2_TEMPLATE)
    texts = [v["text"] for v in VECTORS]
    docs = r.doc_prompts(texts)
    chunk_prompts = r.chunk_prompts_batch(texts)
    for vec, doc, prompts in zip(VECTORS, docs, chunk_prompts):
        assert doc.text == vec["doc_prompt"]
        assert [p.text for p in prompts] == [c["prompt"] for c in vec["chunks"]]
        assert [p.token_ids for p in prompts] == [c["prompt_ids"][1:] for c in vec["chunks"]]


@needs_shared
def test_piecewise_ids_equal_whole_prompt_ids_on_real_pages():
    """The exact fast paths (chunk ids composed from line ids, doc ids encoded head first)
    against plain whole-prompt encoding, with a small budget and doc cut to exercise them."""
    if not BENCH_DOCS.is_file():
        pytest.skip("../shared/benchmarks absent")
    texts = []
    with gzip.open(BENCH_DOCS, "rt", encoding="utf-8") as fh:
        for line in fh:
            texts.append(json.loads(line)["text"])
            if len(texts) == 60:
                break
    texts += [v["text"] for v in VECTORS if v["category"] in ("special_tokens_in_text", "whitespace_edges")]
    texts += ["a\n" * 3000, "\n\n<s>\n[000]x\n", "x" * 5000 + "\ny", "日本語\n" * 900]
    opts = dict(chunk_budget=200, doc_max_ids=300)
    fast = PromptRenderer(LLAMA2_TOKENIZER, "prox", **opts)
    whole = PromptRenderer(LLAMA2_TOKENIZER, "prox", fast_path=False, **opts)
    assert fast._layout is not None and whole._layout is None
    assert fast.render_chunks_batch(texts) == whole.render_chunks_batch(texts)
    assert fast.doc_prompts(texts) == whole.doc_prompts(texts)
    assert sum(p.truncated for p in whole.doc_prompts(texts)) > 20
