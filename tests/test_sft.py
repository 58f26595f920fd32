"""`prox train lm` mechanics on a tiny model built here (2-layer Llama, small BPE tokenizer
with a chat template): loss only on program tokens, LoRA merged before saving, chat
template saved, the output reloads in the transformers refiner and generates."""
from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")
pytest.importorskip("peft")

from conftest import BENCHMARKS
from prox.annotate.records import OutputFolder, SFTRecord, load_sft_records  # noqa: E402
from prox.annotate.run import AnnotateOptions, Annotator, Document  # noqa: E402
from prox.render import PromptRenderer  # noqa: E402
from prox.sft.data import tokenize_records  # noqa: E402
from prox.sft.train import TrainLMOptions, build_trainer, load_base, train_lm  # noqa: E402

LINES_TRAIN = BENCHMARKS / "lines-public-train.jsonl.gz"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CHUNK_BUDGET = 300  # small chunks keep the tiny model's sequences short


def _rows(n: int) -> list[dict]:
    if not LINES_TRAIN.exists():
        pytest.skip(f"shared benchmarks not found at {LINES_TRAIN}")
    with gzip.open(LINES_TRAIN, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in itertools.islice(fh, 40)]
    return [r for r in rows if r["view"] == "dclm" and len(r["text"]) < 6000][:n]


def _make_tiny(directory: Path, texts: list[str]) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts + ["remove_lines(line_start=0, line_end=3)\nskip_chunk()\nkeep_doc()\ndrop_doc()"], trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(directory)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
                         pad_token_id=fast.pad_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(model dir, gold-labelled sft.jsonl rendered with the tiny tokenizer's chat template)."""
    rows = _rows(4)
    root = tmp_path_factory.mktemp("tiny-sft")
    model_dir = _make_tiny(root / "base", [r["text"] for r in rows])
    renderer = PromptRenderer(model_dir, preset="model", chunk_budget=CHUNK_BUDGET, with_ids=False)
    docs = [Document(r["id"], r["text"], row={"noisy_lines": r["noisy_lines"]}) for r in rows]
    with OutputFolder(root / "gold") as out:
        Annotator(out, renderer, options=AnnotateOptions(task="chunk", source="gold")).run(docs)
    return model_dir, root / "gold" / "sft.jsonl", renderer


def test_collated_labels_mask_every_prompt_token(tiny, tmp_path):
    model_dir, data, _ = tiny
    model, tokenizer = load_base(model_dir)
    trainer, tokenized = build_trainer(data, model, tokenizer, tmp_path, TrainLMOptions(max_steps=1, batch_size=3))
    records = load_sft_records(data)
    assert tokenized.counts["examples"] == len(records) >= 4
    by_ids = {tuple(row["input_ids"]): row for row in tokenized.rows}
    completions = {r.completion for r in records}
    checked = 0
    for batch in itertools.islice(iter(trainer.get_train_dataloader()), 3):
        for ids, labels, mask in zip(batch["input_ids"], batch["labels"], batch["attention_mask"]):
            ids, labels = ids[mask.bool()].tolist(), labels[mask.bool()].tolist()
            row = by_ids[tuple(ids)]
            n_prompt = row["completion_mask"].index(1)
            assert all(label == -100 for label in labels[:n_prompt])  # the prompt: no loss
            assert labels[n_prompt:] == ids[n_prompt:]  # the program (+ EOS): loss
            text = tokenizer.decode(ids[n_prompt:])
            assert text.endswith(tokenizer.eos_token)
            assert text[: -len(tokenizer.eos_token)] in completions
            assert tokenizer.decode(ids[:n_prompt]).endswith("<|im_start|>assistant\n")
            checked += 1
        assert (batch["labels"][~batch["attention_mask"].bool()] == -100).all()  # padding: no loss
    assert checked >= 4


def test_cpu_loss_scores_only_program_positions_and_equals_the_full_scoring(tiny, tmp_path, monkeypatch):
    """The CPU speed-up (TRL scoring only unmasked positions) leaves the loss and its gradients as they were."""
    from trl.trainer import utils as trl_utils

    model_dir, data, _ = tiny
    model, tokenizer = load_base(model_dir)
    trainer, _ = build_trainer(data, model, tokenizer, tmp_path, TrainLMOptions(max_steps=1, batch_size=3, bf16=False))
    patched = trl_utils._use_triton
    assert patched(torch.device("cpu")) is True
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))

    def loss_and_grad():
        trainer.model.zero_grad()
        loss = trainer.compute_loss(trainer.model, dict(batch))
        loss.backward()
        grad = trainer.model.get_input_embeddings().weight.grad.clone()
        return loss.detach(), grad

    compact_loss, compact_grad = loss_and_grad()
    monkeypatch.setattr(trl_utils, "_use_triton", lambda device: False)  # TRL's own CPU path: every position
    full_loss, full_grad = loss_and_grad()
    assert torch.allclose(compact_loss, full_loss, rtol=1e-5, atol=1e-6)
    assert torch.allclose(compact_grad, full_grad, rtol=1e-4, atol=1e-6)


def test_too_long_examples_are_skipped_and_counted(tiny):
    model_dir, data, _ = tiny
    _, tokenizer = load_base(model_dir)
    records = load_sft_records(data)
    lengths = sorted(len(r.prompt) for r in records)
    tokenized = tokenize_records(records, tokenizer, max_length=64)
    assert tokenized.counts["skipped_too_long"] == len(records)
    assert tokenized.rows == []
    assert lengths[0] > 64  # every rendered prompt is longer than 64 characters, so > 64 tokens is plausible


def test_lora_train_merges_saves_and_reloads_for_refine(tiny, tmp_path):
    model_dir, data, renderer = tiny
    out = tmp_path / "student"
    summary = train_lm(data, model_dir, out, TrainLMOptions(lora=True, max_steps=2, batch_size=2, bf16=False))
    assert summary["steps"] == 2 and summary["train_loss"] > 0
    assert summary["render"] == [{"preset": "model", "chunk_budget": CHUNK_BUDGET}]
    files = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "prox_sft.json"} <= files
    assert "adapter_config.json" not in files  # merged: loads without peft
    saved_template = (out / "chat_template.jinja").read_text() if "chat_template.jinja" in files else \
        json.loads((out / "tokenizer_config.json").read_text())["chat_template"]
    assert saved_template == CHAT_TEMPLATE
    # LoRA changed the merged weights (B starts at zero, so 2 steps at lr 2e-4 move them a little)
    base = load_base(model_dir)[0].state_dict()
    tuned = load_base(out)[0].state_dict()
    key = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(base[key], tuned[key])

    from prox.refiners import get_refiner

    text = "Home | About | Contact\nThe bridge opened in 1932.\nIt carries two lanes."
    refiner = get_refiner("transformers", chunk_model=str(out), preset="model", chunk_budget=CHUNK_BUDGET,
                          chunk_max_new_tokens=8)
    programs = refiner.chunk_programs([text])
    assert len(programs) == 1 and len(programs[0]) == len(renderer.chunks(text)) == 1
    assert isinstance(programs[0][0], str)


def test_time_budget_stops_training_and_still_saves(tiny, tmp_path):
    """--max-minutes ends training after the first step past the budget; the model is saved."""
    model_dir, data, _ = tiny
    out = tmp_path / "budget"
    summary = train_lm(data, model_dir, out, TrainLMOptions(lora=True, max_steps=50, batch_size=1, max_minutes=1e-6,
                                                            bf16=False))
    assert summary["steps"] == 1 and summary["stopped_by_time_budget"] is True
    assert (out / "model.safetensors").exists()
    unbounded = train_lm(data, model_dir, tmp_path / "free", TrainLMOptions(lora=True, max_steps=2, batch_size=1,
                                                                           bf16=False))
    assert unbounded["steps"] == 2 and unbounded["stopped_by_time_budget"] is False


def test_bf16_autocast_trains_on_cpu_and_saves_float32(tiny, tmp_path):
    model_dir, data, _ = tiny
    out = tmp_path / "bf16"
    summary = train_lm(data, model_dir, out, TrainLMOptions(lora=True, max_steps=2, batch_size=1, bf16=True))
    assert summary["bf16"] is True and summary["steps"] == 2
    assert 0 < summary["train_loss"] < 50
    tuned = load_base(out)[0]
    assert all(p.dtype == torch.float32 for p in tuned.parameters())


def test_full_finetune_learns_the_program_and_generates_it(tiny, tmp_path):
    """A few dozen steps on one short record: the reloaded model reproduces its program greedily."""
    model_dir, _, renderer = tiny
    text = "Home | News | Sport\nThe bridge opened in 1932.\nIt carries two lanes of traffic."
    [prompt] = renderer.chunk_prompts(text)
    target = SFTRecord("short#chunk0", "short", "chunk", prompt.text, "remove_lines(line_start=0, line_end=0)")
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps(target.to_dict()) + "\n")
    out = tmp_path / "memorized"
    summary = train_lm(one, model_dir, out, TrainLMOptions(max_steps=40, batch_size=1, learning_rate=1e-2,
                                                           warmup_ratio=0.0, lr_scheduler="constant",
                                                           logging_steps=10, bf16=False))
    assert summary["last_logged_loss"] < summary["first_logged_loss"]

    from prox.generate.transformers_backend import TransformersGenerator

    generator = TransformersGenerator(str(out))
    [generated] = generator.generate([target.prompt], max_new_tokens=40)
    assert generated.strip() == target.completion


def test_cut_doc_prompts_train_on_the_ids_the_refiner_sees(tiny, tmp_path):
    # A doc prompt over the renderer's id limit is cut at refine time; its SFT record must carry
    # those cut ids, and training must use them rather than re-tokenizing the full text.
    model_dir, _, _ = tiny
    rows = _rows(3)
    renderer = PromptRenderer(model_dir, preset="model", doc_max_ids=40, with_ids=True)
    docs = [Document(r["id"], r["text"], row={"keep": i % 2 == 0}) for i, r in enumerate(rows)]
    with OutputFolder(tmp_path / "gold") as out:
        Annotator(out, renderer, options=AnnotateOptions(task="doc", source="gold")).run(docs)
    records = load_sft_records(tmp_path / "gold")
    assert len(records) == len(rows)
    expected = {d.text: p.token_ids for d, p in zip(docs, renderer.doc_prompts([d.text for d in docs]))}
    _, tokenizer = load_base(model_dir)
    tokenized = tokenize_records(records, tokenizer, max_length=10_000)
    for record, row in zip(records, tokenized.rows):
        assert record.prompt_token_ids is not None and len(record.prompt_token_ids) == 40
        n_prompt = row["completion_mask"].index(1)
        assert row["input_ids"][:n_prompt] == record.prompt_token_ids
    assert sorted(map(tuple, expected.values())) == sorted(tuple(r.prompt_token_ids) for r in records)
