"""`prox report OUTDIR`: one self-contained HTML file (inline CSS, JS and SVG; nothing fetched)."""
from __future__ import annotations

import html
import json
import math
import random
from pathlib import Path
from typing import Sequence

from prox.pipeline.layout import OUTCOMES, RunLayout
from prox.report.data import TOP_N, ReportRow, Summary, load_rows, load_stats, summarize

SAMPLE_SIZE = 200  # documents embedded in the browsable sample
SECTIONS = ("summary", "reasons", "plots", "removed-lines", "normalizations", "samples")

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:1em 2em;color:#222}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0} td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4} td.n{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;gap:1em;flex-wrap:wrap} .card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:9em}
.card b{display:block;font-size:1.6em} .kept{color:#2a7d2a} .dropped{color:#b35c00} .failed{color:#b00020}
.plots{display:flex;flex-wrap:wrap;gap:1em} .plot{border:1px solid #eee;padding:.3em}
.side{display:grid;grid-template-columns:1fr 1fr;gap:1em} .pane{border:1px solid #ddd;overflow:auto;max-height:34em}
.pane pre{margin:0;padding:.4em;white-space:pre-wrap;word-break:break-word;font-size:12px}
.ln{color:#999;user-select:none} del{background:#fde2e2;color:#a33} mark{background:#fff3a0} mark.t{background:#c9f2c9}
pre.prog{background:#f7f7f7;border:1px solid #ddd;padding:.4em;white-space:pre-wrap;font-size:12px;max-height:12em;overflow:auto}
.controls{display:flex;gap:.5em;align-items:center;margin:.5em 0} code{background:#f4f4f4;padding:0 .2em}
"""

JS = r"""
(function(){
  const docs = JSON.parse(document.getElementById('sample-data').textContent);
  const sel = document.getElementById('sample-select'), filt = document.getElementById('sample-filter');
  const view = document.getElementById('sample-view');
  let idx = 0;
  function esc(s){return s.replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));}
  function highlight(text, needles, cls){
    let out = esc(text);
    for (const n of needles){ if (!n) continue; const e = esc(n);
      out = out.split(e).join('<mark class="'+cls+'">'+e+'</mark>'); }
    return out;
  }
  function visible(){ const f = filt.value; return docs.map((d,i)=>[d,i]).filter(([d])=>f==='all'||d.outcome===f||(f==='edited'&&d.removed.length+d.norms.length>0)); }
  function fill(){
    const v = visible(); sel.innerHTML = '';
    v.forEach(([d,i]) => { const o = document.createElement('option'); o.value = i;
      o.textContent = d.outcome + ' · ' + d.id + (d.reason ? ' · ' + d.reason : ''); sel.appendChild(o); });
    if (v.length){ idx = v[0][1]; sel.value = idx; }
    render();
  }
  function render(){
    if (!docs.length){ view.innerHTML = '<p>No documents.</p>'; return; }
    const d = docs[idx], lines = d.raw.split('\n'), removed = new Set();
    d.removed.forEach(([a,b]) => { for (let i=Math.max(a,0); i<=Math.min(b, lines.length-1); i++) removed.add(i); });
    const src = d.norms.map(p=>p[0]), tgt = d.norms.map(p=>p[1]);
    const left = lines.map((l,i) => '<span class="ln">['+String(i).padStart(3,'0')+']</span> ' +
      (removed.has(i) ? '<del>'+esc(l)+'</del>' : highlight(l, src, 's'))).join('\n');
    const right = d.outcome === 'kept' ? highlight(d.text, tgt, 't')
      : '<em class="'+d.outcome+'">'+d.outcome+(d.reason ? ': '+esc(d.reason) : '')+'</em>';
    view.innerHTML = '<p><b>'+esc(d.id)+'</b> — <span class="'+d.outcome+'">'+d.outcome+'</span>' +
      (d.reason ? ' ('+esc(d.reason)+')' : '') + ' · '+removed.size+' lines removed · '+d.norms.length+' normalizations · ' +
      d.raw.length+' → '+d.text.length+' chars</p>' +
      '<div class="side"><div><h4>before (removed lines struck through, normalized text highlighted)</h4><div class="pane"><pre>'+left+'</pre></div></div>' +
      '<div><h4>after</h4><div class="pane"><pre>'+right+'</pre></div></div></div>' +
      '<h4>doc program</h4><pre class="prog">'+esc(d.doc_program || '(none)')+'</pre>' +
      '<h4>chunk programs ('+d.chunk_programs.length+')</h4><pre class="prog">'+esc(d.chunk_programs.join('\n---\n') || '(none)')+'</pre>';
    document.getElementById('sample-pos').textContent = (visible().findIndex(([,i])=>i===idx)+1)+' / '+visible().length;
  }
  function step(k){ const v = visible(); if (!v.length) return; let p = v.findIndex(([,i])=>i===idx);
    p = (p + k + v.length) % v.length; idx = v[p][1]; sel.value = idx; render(); }
  sel.addEventListener('change', () => { idx = +sel.value; render(); });
  filt.addEventListener('change', fill);
  document.getElementById('sample-prev').addEventListener('click', () => step(-1));
  document.getElementById('sample-next').addEventListener('click', () => step(1));
  fill();
  document.body.setAttribute('data-rendered', 'yes');
})();
"""


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def svg_histogram(values: Sequence[float], title: str, *, bins: int = 20, log_x: bool = False,
                  width: int = 360, height: int = 200, color: str = "#4c72b0") -> str:
    """A small inline SVG bar histogram."""
    pad_l, pad_b, pad_t = 40, 34, 22
    head = f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{_e(title)}">'
    head += f'<text x="{width / 2}" y="14" text-anchor="middle" font-size="12">{_e(title)}</text>'
    if not values:
        return head + f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" font-size="11">no data</text></svg>'
    vals = [math.log10(v + 1) for v in values] if log_x else list(values)
    lo, hi = min(vals), max(vals)
    if hi <= lo:
        hi = lo + 1
    counts = [0] * bins
    for v in vals:
        counts[min(bins - 1, int((v - lo) / (hi - lo) * bins))] += 1
    top = max(counts)
    pw, ph = width - pad_l - 8, height - pad_b - pad_t
    bw = pw / bins
    parts = [head]
    for i, c in enumerate(counts):
        h = ph * c / top if top else 0
        parts.append(f'<rect x="{pad_l + i * bw:.1f}" y="{pad_t + ph - h:.1f}" width="{bw - 1:.1f}" height="{h:.1f}" '
                     f'fill="{color}"><title>{c}</title></rect>')
    fmt = (lambda v: f"{10 ** v - 1:,.0f}") if log_x else (lambda v: f"{v:.2f}" if hi - lo < 10 else f"{v:,.0f}")
    y0 = pad_t + ph
    parts.append(f'<line x1="{pad_l}" y1="{y0}" x2="{pad_l + pw}" y2="{y0}" stroke="#888"/>')
    parts.append(f'<text x="{pad_l}" y="{y0 + 14}" font-size="10">{fmt(lo)}</text>')
    parts.append(f'<text x="{pad_l + pw}" y="{y0 + 14}" font-size="10" text-anchor="end">{fmt(hi)}</text>')
    parts.append(f'<text x="{pad_l - 4}" y="{pad_t + 8}" font-size="10" text-anchor="end">{top}</text>')
    parts.append(f'<text x="{pad_l - 4}" y="{y0}" font-size="10" text-anchor="end">0</text>')
    parts.append(f'<text x="{pad_l + pw / 2}" y="{height - 4}" font-size="10" text-anchor="middle">'
                 f'n={len(values)}{" (log scale)" if log_x else ""}</text></svg>')
    return "".join(parts)


def svg_bars(items: Sequence[tuple[str, int]], title: str, *, width: int = 360, color: str = "#dd8452") -> str:
    height = 30 + 18 * max(1, len(items))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{_e(title)}">',
             f'<text x="{width / 2}" y="14" text-anchor="middle" font-size="12">{_e(title)}</text>']
    if not items:
        parts.append(f'<text x="{width / 2}" y="36" text-anchor="middle" font-size="11">none</text>')
    top = max((c for _, c in items), default=1) or 1
    for i, (label, c) in enumerate(items):
        y = 24 + i * 18
        w = (width - 170) * c / top
        parts.append(f'<text x="120" y="{y + 11}" font-size="10" text-anchor="end">{_e(label[:22])}</text>')
        parts.append(f'<rect x="124" y="{y}" width="{w:.1f}" height="14" fill="{color}"><title>{c}</title></rect>')
        parts.append(f'<text x="{128 + w:.1f}" y="{y + 11}" font-size="10">{c}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _sample(rows: list[ReportRow], n: int, seed: int = 0) -> list[ReportRow]:
    """A deterministic sample: edited kept docs first, then dropped, failed and untouched ones."""
    rng = random.Random(seed)
    groups = {
        "edited": [r for r in rows if r.outcome == "kept" and r.n_ops],
        "dropped": [r for r in rows if r.outcome == "dropped"],
        "failed": [r for r in rows if r.outcome == "failed"],
        "untouched": [r for r in rows if r.outcome == "kept" and not r.n_ops],
    }
    share = {"edited": 0.5, "dropped": 0.25, "failed": 0.1, "untouched": 0.15}
    picked: list[ReportRow] = []
    for name, group in groups.items():
        k = min(len(group), max(1, int(n * share[name])) if group else 0)
        picked += rng.sample(group, k)
    chosen = {id(r) for r in picked}
    rest = [r for r in rows if id(r) not in chosen] if len(picked) < n else []
    picked += rng.sample(rest, min(len(rest), n - len(picked)))
    return picked[:n]


def _doc_json(r: ReportRow, cap: int = 60_000) -> dict:
    return {"id": r.id, "outcome": r.outcome, "reason": r.reason, "raw": r.raw[:cap], "text": r.text[:cap],
            "removed": r.removed_ranges, "norms": r.normalizations, "doc_program": r.doc_program,
            "chunk_programs": r.chunk_programs}


def _table(head: Sequence[str], body: Sequence[Sequence], numeric: Sequence[int] = ()) -> str:
    h = "".join(f"<th>{_e(x)}</th>" for x in head)
    rows = []
    for row in body:
        rows.append("<tr>" + "".join(f'<td class="n">{_e(v)}</td>' if i in numeric else f"<td>{_e(v)}</td>"
                                     for i, v in enumerate(row)) + "</tr>")
    return f"<table><thead><tr>{h}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def render_html(rows: list[ReportRow], stats: dict, *, title: str = "prox refine report", sample_size: int = SAMPLE_SIZE) -> str:
    s: Summary = summarize(rows)
    total = s.total or 1
    cards = "".join(
        f'<div class="card"><span class="{o}">{o}</span><b>{s.counts[o]:,}</b>{100 * s.counts[o] / total:.1f}%</div>'
        for o in OUTCOMES)
    cards += (f'<div class="card">chars kept<b>{100 * s.chars_out / max(1, s.chars_in):.1f}%</b>'
              f'{s.chars_out:,} of {s.chars_in:,}</div>'
              f'<div class="card">lines removed<b>{s.lines_removed:,}</b>in kept docs</div>'
              f'<div class="card">normalizations<b>{sum(s.normalizations.values()):,}</b>in kept docs</div>')
    if s.formula_lines_in:
        cards += (f'<div class="card">formula lines kept<b>{100 * s.formula_lines_kept / s.formula_lines_in:.1f}%</b>'
                  f'{s.formula_lines_kept:,} of {s.formula_lines_in:,}; {s.formula_lines_removed:,} removed, '
                  f'{s.formula_lines_dropped:,} in dropped docs</div>')
    refiner = stats.get("refiner")
    refiner_name = refiner.get("spec") or refiner.get("name") if isinstance(refiner, dict) else refiner
    config = _table(["setting", "value"], [["refiner", refiner_name or "?"],
                                           ["documents", f"{s.total:,}"],
                                           *[[k, json.dumps(v)] for k, v in (stats.get("settings") or {}).items()]])
    reasons = _table(["outcome: reason", "documents", "share"],
                     [[k, f"{v:,}", f"{100 * v / total:.1f}%"] for k, v in s.reasons.most_common()], numeric=(1, 2)) \
        if s.reasons else "<p>Every document was kept.</p>"
    err_items = s.error_reasons.most_common(10)
    plots = "".join(f'<div class="plot">{p}</div>' for p in [
        svg_histogram(s.len_before, "length before (chars, kept docs)", log_x=True),
        svg_histogram(s.len_after, "length after (chars, kept docs)", log_x=True, color="#55a868"),
        svg_histogram(s.kept_ratio, "kept ratio per doc (chars after / before)", color="#8172b2"),
        svg_histogram(s.ops_per_doc, "operations per kept doc", color="#c44e52"),
        svg_bars([(o, s.counts[o]) for o in OUTCOMES], "documents by outcome", color="#4c72b0"),
        svg_bars(err_items, "program errors by reason"),
    ])
    removed = _table(["line", "times removed"], [[k, v] for k, v in s.removed_lines.most_common(TOP_N)], numeric=(1,)) \
        if s.removed_lines else "<p>No lines removed.</p>"
    norms = _table(["source", "target", "times", "example: before", "after"],
                   [[a, b, v, *s.normalization_examples.get((a, b), ("", ""))]
                    for (a, b), v in s.normalizations.most_common(TOP_N)],
                   numeric=(2,)) if s.normalizations else "<p>No normalizations.</p>"
    sample = [_doc_json(r) for r in _sample(rows, sample_size)]
    data = json.dumps(sample, ensure_ascii=False).replace("</", "<\\/")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title><style>{CSS}</style></head>
<body>
<h1>{_e(title)}</h1>
<section id="summary"><h2>Summary</h2><div class="cards">{cards}</div>{config}</section>
<section id="reasons"><h2>Outcomes by reason</h2>{reasons}</section>
<section id="plots"><h2>Plots</h2><div class="plots">{plots}</div></section>
<section id="removed-lines"><h2>Most frequent removed lines</h2>{removed}</section>
<section id="normalizations"><h2>Most frequent normalizations</h2>{norms}</section>
<section id="samples"><h2>Sample documents ({len(sample)})</h2>
<div class="controls"><label>show <select id="sample-filter"><option value="all">all</option><option value="edited">edited</option>
<option value="kept">kept</option><option value="dropped">dropped</option><option value="failed">failed</option></select></label>
<button id="sample-prev">◀ prev</button><select id="sample-select"></select><button id="sample-next">next ▶</button>
<span id="sample-pos"></span></div>
<div id="sample-view"><noscript>The sample browser needs JavaScript.</noscript></div></section>
<script type="application/json" id="sample-data">{data}</script>
<script>{JS}</script>
</body></html>
"""


def write_report(outdir: str | Path, path: str | Path | None = None, *, sample_size: int = SAMPLE_SIZE,
                 title: str | None = None) -> Path:
    """Write ``report.html`` (default ``OUTDIR/report.html``) and return its path."""
    outdir = Path(outdir)
    if not RunLayout(outdir).has_outputs():
        raise FileNotFoundError(f"{outdir} is not a prox refine output (no kept/, dropped/ or failed/)")
    rows = load_rows(outdir)
    stats = load_stats(outdir)
    out = Path(path) if path else outdir / "report.html"
    out.write_text(render_html(rows, stats, title=title or f"prox report: {outdir.name}", sample_size=sample_size),
                   encoding="utf-8")
    return out
