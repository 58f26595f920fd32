"""`prox report`: HTML report (rendered in headless Chromium) and dataset card on a real refine folder."""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess

import pytest

from conftest import BENCHMARKS
from prox.compare.data import Doc, load_corpus
from prox.compare.refine import refine_docs
from prox.refiners import get_refiner
from prox.report import SECTIONS, render_card, write_dataset_card, write_report
from prox.report.html import svg_histogram

LINES = BENCHMARKS / "lines-public-train.jsonl.gz"
URL = re.compile(r"https?://\S+")


class UrlRefiner:
    """A small real refiner: C4 line rules plus normalize() of every URL to "<url>"."""

    name = "test-url"

    def __init__(self):
        self.c4 = get_refiner("rules:c4")

    def doc_programs(self, texts):
        return self.c4.doc_programs(texts)

    def chunk_programs(self, texts):
        out = []
        for text, (prog,) in zip(texts, self.c4.chunk_programs(texts)):
            norms = [f'normalize(source_str={json.dumps(u)}, target_str="<url>")' for u in sorted(set(URL.findall(text)))]
            out.append([prog, *norms])
        return out


@pytest.fixture(scope="module")
def outdir(tmp_path_factory):
    if not LINES.exists():
        pytest.skip(f"shared benchmarks not found at {LINES}")
    docs = load_corpus([LINES], where={"view": "dclm"}, limit=12)
    docs.append(Doc("url-doc", "Visit https://example.com/a for more details about the project today.\n"
                               "The project has been running for ten years in the city of Springfield.\n"
                               "It is funded by the council and by many local donors every year.\nMenu\n"
                               "Volunteers meet every week. They plan new events for the neighbourhood."))
    docs.append(Doc("tiny", "Too short."))
    out = tmp_path_factory.mktemp("refined")
    refine_docs(docs, UrlRefiner(), out)
    return out


def test_report_sections_and_content(outdir):
    path = write_report(outdir)
    page = path.read_text(encoding="utf-8")
    for sec in SECTIONS:
        assert f'<section id="{sec}">' in page
    # nothing fetched: no external CSS, scripts, images or fonts
    assert "<link" not in page and not re.search(r"<(script|img|iframe)[^>]*\bsrc=", page) and "@import" not in page
    from prox.report import load_rows, summarize

    summary = summarize(load_rows(outdir))
    assert summary.removed_lines["Menu"] >= 1
    top_line, top_count = summary.removed_lines.most_common(1)[0]
    removed = page.split('id="removed-lines"')[1].split("</section>")[0]
    assert f"<td>{html.escape(top_line, quote=True)}</td><td class=\"n\">{top_count}</td>" in removed
    norms = page.split('id="normalizations"')[1].split("</section>")[0]
    assert "https://example.com/a" in norms and "&lt;url&gt;" in norms
    data = json.loads(re.search(r'id="sample-data">(.*?)</script>', page, re.S).group(1).replace("<\\/", "</"))
    ids = {d["id"] for d in data}
    assert {"url-doc", "tiny"} <= ids
    url_doc = next(d for d in data if d["id"] == "url-doc")
    assert url_doc["norms"] == [["https://example.com/a", "<url>"]] and url_doc["removed"] == [[3, 3]] and url_doc["outcome"] == "kept"
    assert "<url>" in url_doc["text"] and "Menu" not in url_doc["text"]


def test_dataset_card(outdir):
    yaml = pytest.importorskip("yaml")
    path = write_dataset_card(outdir)
    text = path.read_text(encoding="utf-8")
    front = yaml.safe_load(text.split("---")[1])
    assert front["task_categories"] == ["text-generation"]
    assert front["size_categories"] == ["n<1K"] and front["license"] == "other"
    assert front["configs"][0]["data_files"][0]["path"] == "kept/*.jsonl.gz"
    stats = json.loads((outdir / "stats.json").read_text())
    assert f"| kept | {stats['documents']['kept']:,} |" in text
    assert "`test-url`" in text
    assert render_card(outdir, pretty_name="X", license="cc-by-4.0").splitlines()[1] == "license: cc-by-4.0"


def test_svg_histogram_counts():
    svg = svg_histogram([1, 1, 2, 3], "t", bins=2)
    assert svg.count("<rect") == 2 and "<title>2</title>" in svg and "n=4" in svg


def test_report_cli_rejects_non_output(tmp_path):
    from typer.testing import CliRunner

    from prox.cli import app

    r = CliRunner().invoke(app, ["report", str(tmp_path)])
    # the error box wraps at the terminal width (a long tmp path moves the break): read it as one line
    flat = " ".join(r.output.replace("│", " ").split())
    assert r.exit_code != 0 and "not a prox refine output" in flat


def test_report_renders_in_headless_chromium(outdir, tmp_path):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    path = write_report(outdir)
    flags = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
             "--window-size=1280,2400"]
    shot = tmp_path / "report.png"
    subprocess.run([*flags, f"--screenshot={shot}", path.as_uri()], capture_output=True, timeout=90)
    assert shot.exists() and shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 20_000
    dom = subprocess.run([*flags, "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=90).stdout
    assert 'data-rendered="yes"' in dom  # the script ran to the end
    for sec in SECTIONS:
        body = dom.split(f'<section id="{sec}">')[1].split("</section>")[0]
        assert len(re.sub(r"<[^>]+>", "", body).strip()) > 20, sec
    view = dom.split('id="sample-view"')[1].split("</section>")[0]
    assert "<del>" in view and "chunk programs" in view  # side-by-side view rendered by JS
    assert dom.count("<option value=") >= 14  # every sampled doc is listed


def test_normalizations_and_formula_lines_in_the_summary_and_card():
    from prox.report.card import _normalization_section
    from prox.report.data import ReportRow, summarize

    raw = "Storm closes roads Read more »\nMenu\n$$x^2$$\nRain floods the harbour Read more »\n"
    kept = ReportRow(id="a", outcome="kept", raw=raw, text="", reason=None, doc_program="keep_doc()", chunk_programs=[],
                     removed_ranges=[(1, 2)], normalizations=[(" Read more »", "")], errors=[])
    dropped = ReportRow(id="b", outcome="dropped", raw="\\begin{align}\na &= b\n\\end{align}", text="", reason="drop_doc",
                        doc_program="drop_doc()", chunk_programs=[], removed_ranges=[], normalizations=[], errors=[])
    s = summarize([kept, dropped])
    assert s.normalizations[(" Read more »", "")] == 1
    assert s.normalization_examples[(" Read more »", "")] == ("Storm closes roads Read more »", "Storm closes roads")
    # formula lines: 1 in the kept document (removed by its program), 3 in the dropped one
    assert (s.formula_lines_in, s.formula_lines_removed, s.formula_lines_dropped, s.formula_lines_kept) == (4, 1, 3, 0)
    card = _normalization_section(s)
    assert "| ` Read more »` | \"\" | 1 | `Storm closes roads Read more »` | `Storm closes roads` |" in card
