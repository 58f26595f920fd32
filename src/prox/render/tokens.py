"""Token ids of the prompts: tokenizer loading, the slow Llama tokenizer, and the fast path.

`SlowLlama` encodes like the slow ``LlamaTokenizer(legacy=False)`` the ProX doc prompts were
encoded with, on a fast ``tokenizers`` tokenizer. `LlamaLayout` holds the checked facts about a
Llama-2 tokenizer that let the renderer encode long prompts piecewise (and chunk prompts from
their lines' ids) with exactly the ids of one whole-string encode; without them the renderer
encodes whole prompts. The reference vectors check both ways id for id (tests/test_render.py).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from tokenizers import Tokenizer, normalizers

from prox.render.presets import RenderError

SPIECE_UNDERLINE = "\u2581"  # "▁": SentencePiece's word-start mark
# Doc prompts longer than this many characters per allowed id are encoded head first (speed
# only: Llama-2 averages ~4 characters per id on web text; the ids are exact either way).
DOC_HEAD_CHARS_PER_ID = 8


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    with path.open(encoding="utf-8") as fh:
        data = json.load(fh)
    return data if isinstance(data, dict) else {}


def load_tokenizer_dir(path: str | Path) -> tuple[Tokenizer, dict]:
    """``tokenizer.json`` plus the config (tokenizer_config.json over special_tokens_map.json)."""
    root = Path(path)
    tok_file = root / "tokenizer.json" if root.is_dir() else root
    if not tok_file.is_file():
        raise RenderError(f"no tokenizer.json in {root} (a Hugging Face fast-tokenizer file is needed)")
    tokenizer = Tokenizer.from_file(str(tok_file))
    config: dict = {}
    if root.is_dir():
        config.update(_read_json(root / "special_tokens_map.json"))
        config.update(_read_json(root / "tokenizer_config.json"))
        template_file = root / "chat_template.jinja"
        if "chat_template" not in config and template_file.is_file():
            config["chat_template"] = template_file.read_text(encoding="utf-8")
    return tokenizer, config


def special_ids(tokenizer: Tokenizer) -> set[int]:
    return {i for i, tok in tokenizer.get_added_tokens_decoder().items() if tok.special}


class SlowLlama:
    """A Llama fast tokenizer made to encode like the slow ``LlamaTokenizer(legacy=False)``.

    The fast tokenizer.json prepends "▁" to every text segment, including segments after a
    special token; the slow one (which ProX used for doc prompts) prepends it only once, to the
    start of the whole text, and drops it again when a special token follows it.
    """

    def __init__(self, tokenizer: Tokenizer, space_id: int | None, special: set[int]) -> None:
        self.tokenizer, self.space_id, self.special = tokenizer, space_id, special

    @classmethod
    def detect(cls, tokenizer: Tokenizer) -> "SlowLlama | None":
        """The slow form of ``tokenizer``, or None when it is not of that Llama form."""
        spec = json.loads(tokenizer.to_str()).get("normalizer") or {}
        parts = spec.get("normalizers", []) if spec.get("type") == "Sequence" else []
        types = [(p.get("type"), p.get("prepend") or p.get("content")) for p in parts]
        if types != [("Prepend", SPIECE_UNDERLINE), ("Replace", SPIECE_UNDERLINE)]:
            return None
        if parts[1].get("pattern") != {"String": " "}:
            return None
        slow = Tokenizer.from_str(tokenizer.to_str())
        slow.normalizer = normalizers.Replace(" ", SPIECE_UNDERLINE)
        slow.post_processor = None
        return cls(slow, tokenizer.token_to_id(SPIECE_UNDERLINE), special_ids(tokenizer))

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Ids of each text: one "▁" before the whole text, dropped when a special token follows it."""
        out = []
        for enc in self.tokenizer.encode_batch([SPIECE_UNDERLINE + t if t else t for t in texts], add_special_tokens=False):
            ids = enc.ids
            if len(ids) > 1 and ids[0] == self.space_id and ids[1] in self.special:
                ids = ids[1:]
            out.append(ids)
        return out


class LlamaLayout:
    """Checked facts about a Llama-2 style tokenizer that let long prompts be encoded piecewise
    with exactly the ids of one whole-string encode:

    - no BPE merge and no vocabulary entry involves "\\n" (it is always the byte token
      <0x0A>), so every "\\n" splits the text into pieces that BPE encodes independently;
    - no merge involves an ASCII digit, so the "[" of a numbered line "[007]..." can only merge
      with a "▁" in front of it: the line's ids in context follow from its ids alone.

    ``detect`` returns None unless every fact holds; the renderer then encodes whole prompts.
    """

    def __init__(self, slow: SlowLlama, lead: list[int], newline: int, bracket: int,
                 space_bracket: int, added: list[str]) -> None:
        self.slow, self.base, self.lead, self.newline = slow, slow.tokenizer, lead, newline
        self.bracket, self.space_bracket = bracket, space_bracket
        self.added = added

    @classmethod
    def detect(cls, tokenizer: Tokenizer, slow: SlowLlama | None) -> "LlamaLayout | None":
        if slow is None:
            return None
        base = slow.tokenizer
        spec = json.loads(tokenizer.to_str())
        model = spec.get("model") or {}
        if spec.get("pre_tokenizer") is not None or model.get("type") != "BPE" or not model.get("byte_fallback"):
            return None
        if any("\n" in tok for tok in model.get("vocab", {})):
            return None
        for merge in model.get("merges", []):
            parts = merge.split(" ") if isinstance(merge, str) else merge
            if any("\n" in part or part == "<0x0A>" or any(c in "0123456789" for c in part) for part in parts):
                return None
        added = [t.content for t in tokenizer.get_added_tokens_decoder().values()]
        if any("\n" in a for a in added):
            return None
        ids = {t: tokenizer.token_to_id(t) for t in ("<0x0A>", "[", SPIECE_UNDERLINE + "[", "0", SPIECE_UNDERLINE)}
        if None in ids.values():
            return None
        nl, br, sbr, zero = ids["<0x0A>"], ids["["], ids[SPIECE_UNDERLINE + "["], ids["0"]
        fast = tokenizer.encode("[0").ids
        if (base.encode("\n").ids != [nl] or base.encode("[0").ids != [br, zero]
                or base.encode(SPIECE_UNDERLINE + "[0").ids != [sbr, zero] or fast[-2:] != [sbr, zero]):
            return None
        return cls(slow, fast[:-2], nl, br, sbr, added)

    def has_added_token(self, text: str) -> bool:
        return any(a in text for a in self.added)

    def in_context(self, line_ids: list[int]) -> list[int] | None:
        """Ids of a numbered line after a "\\n", from its stand-alone ids (lead + "▁[" ...)."""
        n = len(self.lead)
        if line_ids[:n] != self.lead or len(line_ids) <= n or line_ids[n] != self.space_bracket:
            return None
        return [self.bracket, *line_ids[n + 1 :]]

    def doc_ids(self, prompts: Sequence[str], max_ids: int | None) -> list[list[int]]:
        """Slow-tokenizer ids of each prompt. A long prompt is cut at a "\\n" into a head of
        about ``DOC_HEAD_CHARS_PER_ID * max_ids`` characters and the rest; the rest is encoded
        only when the head alone has no more than ``max_ids`` ids (the result is cut later)."""
        heads, rests = [], []
        for p in prompts:
            cut = p.rfind("\n", 0, DOC_HEAD_CHARS_PER_ID * max_ids) if max_ids and len(p) > DOC_HEAD_CHARS_PER_ID * max_ids else -1
            heads.append(p[:cut] if cut > 0 else p)
            rests.append(p[cut + 1 :] if cut > 0 else None)
        out = self.slow.encode_batch(heads)
        todo = [d for d, rest in enumerate(rests) if rest is not None and len(out[d]) <= max_ids]
        if todo:
            for d, enc in zip(todo, self.base.encode_batch([rests[d] for d in todo], add_special_tokens=False)):
                out[d] = [*out[d], self.newline, *enc.ids]
        return out
