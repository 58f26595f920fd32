"""Math training pages for the builtin refiner, with line labels known by construction.

No public set of math *pages* with line labels is licence-clean enough to train a shipped
model on (the math line benchmark is evaluation only). So the pages are assembled:

* the **content** is real math text: highly voted math.stackexchange Q&A (the
  ``mathse-math`` rows of ``docs-public``; CC BY-SA, math.stackexchange.com authors), every
  non-blank line labelled content -- formulas, worked steps, short connective lines
  ("we have", "and so:") and all;
* the **chrome** around it is real: the header and footer noise lines (with their labels)
  of a page of the web line benchmark's training split, a `dclm` or a `wet` view;
* Q&A and forum **furniture** (vote counts, "Share / Cite / Follow", "asked … ago", user
  cards with reputation and badges, "N Answers", "Related" / "Hot Network Questions" /
  "Similar threads" lists of other questions' titles, post stamps) is generated around
  the post, labelled noise, because the public web pages have almost none of it;
* some pages are the clean post alone, as in a Q&A dump (nothing to remove).

Only documents in the id-hash train split (`data.in_train_split`) are used, so the other
20 % of ``mathse-math`` stays unseen for the doc-stage check. Everything is seeded.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

from prox.builtin.data import DocRow, LineRow, in_train_split

MATH_SOURCE = "mathse-math"
SYNTHETIC_SOURCE = "mathse-pages"  # the source (and view) name of the assembled rows


@dataclass(frozen=True)
class MathPageConfig:
    clean_share: float = 0.3  # pages that are the post alone
    furniture_share: float = 0.7  # hosted pages that also get Q&A / forum furniture
    seed: int = 0
    # The pages also enter the doc model as documents to keep, with this total weight
    # relative to the labelled documents (they add evidence; they must not outvote the labels).
    doc_weight_share: float = 0.5
    line_weight: float = 1.0  # sample weight of the pages' lines in the line model


_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
_SYLLABLES = "an ber cal dor el fin gar hel is jo kar len mi nor ol pe qu ros sa tor ul vi wen xa yu zel".split()


def _name(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.3:
        return f"user{rng.randint(1000, 999999)}"
    word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()
    if kind < 0.7:
        return word + " " + "".join(rng.choice(_SYLLABLES) for _ in range(2)).capitalize()
    return word


def _date(rng: random.Random) -> str:
    return f"{rng.choice(_MONTHS)} {rng.randint(1, 28)}, {rng.randint(2010, 2024)} at {rng.randint(0, 23)}:{rng.randint(0, 59):02d}"


def _user_card(rng: random.Random) -> list[str]:
    name = _name(rng)
    rep = rng.choice([rng.randint(1, 999), rng.randint(1000, 99999), rng.randint(100, 999) * 1000])
    rep_s = f"{rep:,}" if rep < 100000 else f"{rep // 1000}k"
    badges = f"{rng.randint(1, 60)} gold badges {rng.randint(1, 200)} silver badges {rng.randint(1, 300)} bronze badges"
    return [name, f"{rep_s}{badges}" if rng.random() < 0.5 else f"{rep_s} {badges}"]


def _tags(title: str, rng: random.Random) -> list[str]:
    words = [w.strip("?.,:;()$").lower() for w in title.split()]
    words = [w for w in words if w.isalpha() and len(w) > 3]
    rng.shuffle(words)
    tags = ["-".join(words[i : i + rng.randint(1, 2)]) for i in range(0, min(len(words), 6), 2)]
    return [t for t in tags if t] or ["algebra-precalculus"]


def _qa_header(rng: random.Random) -> list[str]:
    return ["Ask Question", f"Asked {rng.randint(1, 14)} years, {rng.randint(1, 11)} months ago",
            f"Modified {rng.randint(1, 9)} years ago", f"Viewed {rng.randint(30, 250000):,} times",
            str(rng.randint(-3, 400))]


def _qa_post_footer(rng: random.Random, title: str, asked: bool) -> list[str]:
    out = _tags(title, rng) if asked else []
    out += rng.choice([["Share", "Cite", "Follow"], ["Share", "Cite", "Improve this question" if asked else "Improve this answer", "Follow"],
                       ["Share Cite Follow"]])
    if rng.random() < 0.5:
        out.append(f"edited {_date(rng)}")
    out.append(f"{'asked' if asked else 'answered'} {_date(rng)}")
    out += _user_card(rng)
    if rng.random() < 0.5:
        out.append(f"Commented {_date(rng)}")
    out.append("Add a comment |" if rng.random() < 0.7 else f"Show {rng.randint(1, 9)} more comments")
    if asked:
        out += [f"{rng.randint(1, 9)} Answer{'s' if rng.random() < 0.8 else ''}", "Sorted by: Reset to default", str(rng.randint(0, 300))]
    return out


def _forum_stamp(rng: random.Random) -> list[str]:
    out = [f"#{rng.randint(1, 40)}", f"{rng.choice(_MONTHS)} {rng.randint(1, 28)}, {rng.randint(2004, 2020)}, {rng.randint(1, 12)}:{rng.randint(0, 59):02d} {rng.choice(['AM', 'PM'])}",
           _name(rng)]
    if rng.random() < 0.6:
        out += [rng.choice(["Junior Member", "Senior Member", "MHF Contributor", "Newbie", "Science Advisor"]),
                f"Join Date: {rng.choice(_MONTHS)} {rng.randint(2004, 2020)}", f"Posts: {rng.randint(1, 20000):,}"]
    if rng.random() < 0.5:
        out.append(rng.choice(["Reply With Quote", "Quote", "Reply", "Thanks"]))
    return out


def _related(rng: random.Random, titles: Sequence[str], heading: str, votes: bool) -> list[str]:
    out = [heading]
    for t in rng.sample(list(titles), k=min(len(titles), rng.randint(3, 10))):
        if votes:
            out.append(str(rng.randint(0, 60)))
        out.append(t)
    return out


def _paragraphs(text: str) -> list[list[str]]:
    """The post's lines split at blank lines (a split point for furniture)."""
    paras: list[list[str]] = [[]]
    for ln in text.split("\n"):
        if ln.strip():
            paras[-1].append(ln)
        elif paras[-1]:
            paras.append([])
    return [p for p in paras if p]


# A host page lends its chrome only when most of its lines carry a label (snippet-labelled
# pages such as trafilatura-eval's leave most chrome unlabelled).
MIN_HOST_LABELLED = 0.8


def _mostly_labelled(host: LineRow) -> bool:
    nonblank = sum(1 for ln in host.text.split("\n") if ln.strip())
    return len(host.noisy) + len(host.content) >= MIN_HOST_LABELLED * max(nonblank, 1)


def _host_chrome(host: LineRow) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(header, footer) of a labelled page with content: its lines before the first / after the
    last content line, each with its label (1 noise, 0 content, -1 unlabelled)."""
    lines = host.text.split("\n")
    first, last = min(host.content), max(host.content)

    def lab(i: int) -> int:
        return 1 if i in host.noisy else -1

    return [(lines[i], lab(i)) for i in range(first)], [(lines[i], lab(i)) for i in range(last + 1, len(lines))]


def _with_furniture(doc: DocRow, rng: random.Random, titles: Sequence[str], furniture: bool) -> list[tuple[str, int]]:
    """The post's lines (content), with Q&A or forum furniture (noise) around them when asked."""
    title = doc.text.split("\n", 1)[0].strip()
    paras = _paragraphs(doc.text)
    body: list[tuple[str, int]] = []
    forum = furniture and rng.random() < 0.35
    split_at = rng.randint(2, max(2, len(paras) - 1)) if len(paras) > 2 else len(paras)
    for k, para in enumerate(paras):
        if furniture and k == 1 and not forum:
            body += [(x, 1) for x in _qa_header(rng)]
        if furniture and forum and k in (1, split_at):
            body += [(x, 1) for x in _forum_stamp(rng)]
        if furniture and not forum and k == split_at:
            body += [(x, 1) for x in _qa_post_footer(rng, title, asked=True)]
        body += [(x, 0) for x in para]
        body.append(("", -1))
    if furniture:
        if forum:
            body += [(x, 1) for x in _related(rng, titles, "Similar threads", votes=False)]
        else:
            body += [(x, 1) for x in _qa_post_footer(rng, title, asked=False)]
            body += [(x, 1) for x in _related(rng, titles, "Related", votes=True)]
            body += [(x, 1) for x in _related(rng, titles, "Hot Network Questions", votes=False)]
    return body


def build_pages(math_docs: Sequence[DocRow], hosts: Sequence[LineRow], cfg: MathPageConfig | None = None,
                *, split: str = "train") -> list[LineRow]:
    """One labelled page per math document of ``split`` (see the module docstring).

    ``split="train"`` (what a model learns from) or ``"holdout"`` (the other 20 %: the
    shipped math sample). Without ``hosts``, pages get furniture but no page chrome.
    """
    if split not in ("train", "holdout"):
        raise ValueError(f"split must be train or holdout, got {split!r}")
    cfg = cfg or MathPageConfig()
    rng = random.Random(cfg.seed)
    docs = [d for d in math_docs if d.source == MATH_SOURCE and in_train_split(d.id) == (split == "train")]
    titles = [d.text.split("\n", 1)[0].strip() for d in docs]
    usable_hosts = [h for h in hosts if h.content and _mostly_labelled(h)]
    pages = []
    for d in docs:
        dressed = rng.random() >= cfg.clean_share
        body = _with_furniture(d, rng, titles, furniture=dressed and rng.random() < cfg.furniture_share)
        header: list[tuple[str, int]] = []
        footer: list[tuple[str, int]] = []
        group = d.id
        if dressed and usable_hosts:
            host = rng.choice(usable_hosts)
            header, footer = _host_chrome(host)
            # the page shares its host's fold: otherwise cross-validation would score the host's
            # chrome lines with models that saw them (labelled) in this page
            group = host.group
        page = header + body + footer
        text = "\n".join(x for x, _ in page)
        noisy = {i for i, (x, lab) in enumerate(page) if lab == 1 and x.strip()}
        content = {i for i, (x, lab) in enumerate(page) if lab == 0 and x.strip()}
        pages.append(LineRow(f"{SYNTHETIC_SOURCE}:{d.id}", text, noisy, content, group, SYNTHETIC_SOURCE,
                             SYNTHETIC_SOURCE, weight=cfg.line_weight))
    return pages


def keep_docs(pages: Sequence[LineRow], labelled_docs: int, cfg: MathPageConfig | None = None) -> list[DocRow]:
    """The assembled pages as doc-model rows: keep, weighted, not used to tune thresholds."""
    cfg = cfg or MathPageConfig()
    if not pages or not labelled_docs or cfg.doc_weight_share <= 0:
        return []
    w = cfg.doc_weight_share * labelled_docs / len(pages)
    return [DocRow(p.id, p.text, True, SYNTHETIC_SOURCE, weight=w, tune=False) for p in pages]
