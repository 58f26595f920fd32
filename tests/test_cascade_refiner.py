"""The cascade refiner's mechanics: the shipped builtin, a tiny encoder model built in the tests
(`tests/tiny_encoder.py`, fixtures `tiny_encoder` / `tiny_trained`; no downloads)."""
from __future__ import annotations

import random

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("sklearn")

from prox.parse import parse_program  # noqa: E402
from prox.program import RemoveLines  # noqa: E402
from prox.refiners import check_refiner_options, get_refiner  # noqa: E402
from prox.refiners.cascade import CascadeRefiner  # noqa: E402
from tiny_encoder import refine_tiny_pages, tiny_page  # noqa: E402

FORMULA_PAGE = "\n".join(["Home | About | Contact", "Reply", "$x^2 + y^2 = z^2$", "Reply", "$$", "a = b + c", "$$",
                          "Share on Facebook"])
FORMULA_LINES = {2, 4, 5, 6}


def _texts(seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    pages = [tiny_page(rng, rng.randint(2, 30))[0] for _ in range(12)]
    # no removable line at all: an empty page, blank lines only, formula lines only
    return pages + ["", "\n\n", "$$\na = b + c\n$$", FORMULA_PAGE, "Reply"]


def _removed(program: str) -> set[int]:
    prog = parse_program(program, stage="chunk")
    assert not prog.errors
    return {i for op in prog.operations if isinstance(op, RemoveLines) for i in range(op.start, op.end + 1)}


class Spy:
    """Wraps the cascade's encoder refiner: records every page it is asked to analyse."""

    def __init__(self, cascade: CascadeRefiner):
        self.pages: list[str] = []
        inner = cascade.encoder.analyze

        def analyze(texts):
            self.pages.extend(texts)
            return inner(texts)

        cascade.encoder.analyze = analyze


def _cascade(path, tiny_encoder, **options) -> CascadeRefiner:
    r = get_refiner(f"cascade:{path}", encoder=tiny_encoder, **options)
    assert isinstance(r, CascadeRefiner)
    return r


def test_margin_zero_is_the_builtin_and_never_calls_the_encoder(tiny_trained, tiny_encoder):
    _, path, _, _ = tiny_trained
    texts = _texts()
    r = _cascade(path, tiny_encoder, margin=0)
    spy = Spy(r)
    builtin = get_refiner("builtin")
    assert r.chunk_programs(texts) == builtin.chunk_programs(texts)
    assert r.noisy_lines(texts) == builtin.noisy_lines(texts)
    assert r.doc_programs(texts) == builtin.doc_programs(texts)
    assert spy.pages == [] and r.stats()["pages_to_encoder"] == 0 and r.stats()["lines_unsure"] == 0
    assert r.stats()["pages"] == 2 * len(texts) and r.stats()["lines"] > 0


def test_a_huge_margin_with_all_lines_is_the_encoder(tiny_trained, tiny_encoder):
    _, path, _, _ = tiny_trained
    texts = _texts()
    encoder = get_refiner(f"encoder:{path}", encoder=tiny_encoder)
    for margin in (float("inf"), 1e9):
        r = _cascade(path, tiny_encoder, margin=margin, encoder_lines="all")
        spy = Spy(r)
        assert r.chunk_programs(texts) == encoder.chunk_programs(texts)
        assert r.noisy_lines(texts) == encoder.noisy_lines(texts)
        assert r.doc_programs(texts) == encoder.doc_programs(texts)
        # every page with a removable line went to the encoder, the others did not
        assert set(spy.pages) == set(texts[:12]) | {"Reply", FORMULA_PAGE}
        assert r.stats()["lines_unsure"] == r.stats()["lines"]
    # the unsure-only cascade at an infinite margin decides every removable line by the encoder too
    r = _cascade(path, tiny_encoder, margin="inf")
    assert r.noisy_lines(texts) == encoder.noisy_lines(texts)


def test_only_pages_with_unsure_lines_go_to_the_encoder(tiny_trained, tiny_encoder):
    _, path, _, _ = tiny_trained
    texts = _texts()
    builtin = get_refiner("builtin")
    encoder = get_refiner(f"encoder:{path}", encoder=tiny_encoder)
    thr = builtin.line_threshold
    # per page, the smallest margin that makes one of its lines unsure; take one between two pages
    need = []
    for doc in builtin.analyze(texts[:12]):
        p = np.clip(doc.probs[doc.nonblank], 1e-6, 1 - 1e-6)
        need.append(float(np.abs(np.log(p / (1 - p)) - np.log(thr / (1 - thr))).min()))
    need.sort()
    margin = (need[5] + need[6]) / 2
    b_noisy, e_noisy = builtin.noisy_lines(texts), encoder.noisy_lines(texts)
    for lines in ("unsure", "all"):
        r = _cascade(path, tiny_encoder, margin=margin, encoder_lines=lines)
        spy = Spy(r)
        got = r.noisy_lines(texts)
        unsure = [r.unsure_lines(d) for d in builtin.analyze(texts)]
        sent = [t for t, u in zip(texts, unsure) if u.any()]
        assert 0 < len(sent) < 12 and spy.pages == sent  # one call, only the pages with an unsure line
        stats = r.stats()
        assert (stats["pages"], stats["pages_to_encoder"]) == (len(texts), len(sent))
        assert stats["lines_unsure"] == sum(int(u.sum()) for u in unsure) < stats["lines"]
        for u, g, b, e in zip(unsure, got, b_noisy, e_noisy):
            if not u.any():
                assert g == b  # the builtin's decision
            elif lines == "all":
                assert g == e
            else:  # the encoder's decision on the unsure lines, the builtin's elsewhere
                idx = set(np.flatnonzero(u).tolist())
                assert set(g) == (set(b) - idx) | (set(e) & idx)


def test_protected_lines_are_never_removed(tiny_trained, tiny_encoder):
    _, path, _, _ = tiny_trained
    for lines in ("unsure", "all"):
        for margin in (0.0, 2.0, float("inf")):
            r = _cascade(path, tiny_encoder, margin=margin, encoder_lines=lines, line_threshold=0.0,
                         builtin_threshold=0.0)
            removed = _removed(r.chunk_programs([FORMULA_PAGE])[0][0])
            assert removed and not removed & FORMULA_LINES, (margin, lines)
    unprotected = _cascade(path, tiny_encoder, margin="inf", line_threshold=0.0, protect_math=False)
    assert _removed(unprotected.chunk_programs([FORMULA_PAGE])[0][0]) & FORMULA_LINES


def test_options_are_typed_and_checked():
    check_refiner_options("cascade", margin="0.5", encoder_lines="all", builtin_threshold="0.3", protect_math="no")
    check_refiner_options("cascade", margin="inf")
    with pytest.raises(ValueError, match="valid options"):
        check_refiner_options("cascade", margn=1)
    with pytest.raises(ValueError, match="option margin: expected a number >= 0"):
        check_refiner_options("cascade", margin="-1")
    with pytest.raises(ValueError, match="option margin"):
        check_refiner_options("cascade", margin="nan")
    with pytest.raises(ValueError, match="option margin: expected float"):
        check_refiner_options("cascade", margin="wide")
    with pytest.raises(ValueError, match="option encoder_lines: expected one of unsure, all"):
        check_refiner_options("cascade", encoder_lines="some")


def test_prox_refine_with_the_cascade_refiner(tiny_trained, tiny_encoder, tmp_path):
    """Through the whole pipeline (spec + options, as `prox refine -O`): every document ends kept, dropped or failed."""
    _, path, _, _ = tiny_trained
    refiner = _cascade(path, tiny_encoder, margin="1.5")
    stats, n_docs = refine_tiny_pages(refiner, tmp_path)
    docs = stats["documents"]
    assert docs["docs_in"] == n_docs == docs["kept"] + docs["dropped"] + docs["failed"]
    assert stats["balanced"] and stats["programs"]["lines_removed"] > 0
