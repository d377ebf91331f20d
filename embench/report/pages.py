"""The report's HTML: an overview page (grids that stay readable at any scale, a results table that
sorts, searches and pages in the browser) and one drill-down page per device. Self-contained pages:
figures are embedded, the table library (Grid.js, vendored under vendor/) is inlined; no network."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from embench_agent.protocol import STATUSES

from .overview import Grid, grids
from .render import (
    PRECISION_NOTE,
    SPEEDUP_NOTE,
    display_table,
    energy_note,
    environment_rows,
    precision_display,
    run_facts,
    score_display,
    score_note,
)
from .study import Study
from .study_render import (
    CLASS_NOTE,
    HEADLINE_NOTE,
    SCALING_NOTE,
    classes_display,
    headline_display,
    placement_display,
    scaling_display,
    speedup_display,
)
from .tables import ReportData, config_label

VENDOR = Path(__file__).with_name("vendor") / "gridjs"
PAGE_ROWS = 50  # rows per page of a results table

CSS = """
body{font-family:system-ui,sans-serif;margin:20px 24px;color:#222;max-width:1600px}
h1{margin:0 0 4px} h2{margin:28px 0 6px} p.caption{color:#555;font-size:12px;max-width:1100px;margin:2px 0 8px}
table.plain{border-collapse:collapse;font-size:12px;margin:8px 0 20px}
table.plain th,table.plain td{border:1px solid #ccc;padding:3px 6px;text-align:left}
table.plain th{background:#f2f2f2}
.ok{background:#dff0d8} .fallback{background:#fcf8e3} .unsupported{background:#eee}
.failed,.crashed,.timeout,.lowfid{background:#f2dede}
table.grid{border-collapse:collapse;font-size:11px;margin:6px 0 18px}
table.grid th,table.grid td{border:1px solid #fff;padding:2px 5px;text-align:right;white-space:nowrap}
table.grid th{background:#f2f2f2;text-align:left;font-weight:600}
table.grid thead th{writing-mode:vertical-rl;transform:rotate(180deg);text-align:left;vertical-align:bottom}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:2px 12px;font-size:13px;margin:6px 0}
dl.facts dt{font-weight:600} dl.facts dd{margin:0}
td.gridjs-td{padding:4px 6px;font-size:12px;vertical-align:top}
th.gridjs-th{padding:6px;font-size:12px}
div.notes{white-space:normal;min-width:220px;max-width:460px;overflow-wrap:anywhere}
table.results{table-layout:auto;width:100%}
td.gridjs-td{overflow-wrap:anywhere}
th.gridjs-th .gridjs-th-content{white-space:normal;overflow:visible;text-overflow:clip;width:auto}
th.gridjs-th{vertical-align:bottom}
span.st{padding:1px 4px;border-radius:3px}
input.gridjs-search-input{margin:6px 0;width:320px}
img{max-width:100%}
nav a{margin-right:10px}
"""

BOX_JS = """
function esc(s){return String(s).replace(/[&<>"']/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));}
function box(q){if(!q)return '';const w=130,h=14,x=v=>(2+v*(w-4)).toFixed(1);
return gridjs.html('<svg width="'+w+'" height="'+h+'" role="img"><title>p5 '+q[5]+' · p25 '+q[6]+' · median '+q[7]+
' · p75 '+q[8]+' · p95 '+q[9]+' ms</title><line x1="'+x(q[0])+'" x2="'+x(q[4])+'" y1="7" y2="7" stroke="#555"/>'+
'<rect x="'+x(q[1])+'" y="2" width="'+Math.max(1,x(q[3])-x(q[1]))+'" height="10" fill="#c6dbef" stroke="#555"/>'+
'<line x1="'+x(q[2])+'" x2="'+x(q[2])+'" y1="1" y2="13" stroke="#b2182b" stroke-width="2"/></svg>');}
function status(s){return gridjs.html('<span class="st '+esc(s.split(' ')[0])+(s.indexOf('low fidelity')>=0?' lowfid':'')+'">'+esc(s)+'</span>');}
function link(d){return gridjs.html('<a href="devices/'+esc(SLUGS[d])+'.html">'+esc(d)+'</a>');}
function table(id, columns, data){
  const q=new URLSearchParams(location.search).get('q')||'';
  const cols=columns.map(c=>Object.assign({name:c.name},c.kind==='box'?{formatter:box,sort:false}:
    c.kind==='status'?{formatter:status}:c.kind==='link'?{formatter:link}:
    c.kind==='num'?{sort:{compare:(a,b)=>(a===null)-(b===null)||a-b}}:{},
    c.kind==='notes'?{formatter:n=>gridjs.html('<div class="notes">'+esc(n)+'</div>')}:{}));
  // The search box is ours: it filters the rows (any cell but the box plot, ignoring case) and hands
  // Grid.js the result. Grid.js 6.2's own search plugin races its first render and logs an error
  // under load (grid-js/gridjs#1458). A link's ?q= fills the box.
  const el=document.getElementById(id),text=columns.map(c=>c.kind!=='box');
  const pick=k=>k?data.filter(r=>r.some((v,i)=>text[i]&&v!==null&&String(v).toLowerCase().includes(k))):data;
  const input=document.createElement('input');
  input.type='search';input.className='gridjs-input gridjs-search-input';input.placeholder='Filter rows…';
  input.setAttribute('aria-label','filter the rows');input.value=q;el.before(input);
  const grid=new gridjs.Grid({columns:cols,data:pick(q.toLowerCase()),sort:true,pagination:{limit:PAGE_ROWS},
    resizable:false,className:{table:'results'}});
  grid.render(el);
  let wait=null;
  input.addEventListener('input',()=>{clearTimeout(wait);wait=setTimeout(()=>
    grid.updateConfig({data:pick(input.value.trim().toLowerCase())}).forceRender(),250);});
  const drawn=()=>{const w=document.querySelector('#'+id+' .gridjs-wrapper'),d=document.documentElement;
    if(!w||!document.querySelector('#'+id+' .gridjs-tbody'))return setTimeout(drawn,50);
    setTimeout(()=>{document.body.dataset.sidewaysPx=Math.max(d.scrollWidth-d.clientWidth,w.scrollWidth-w.clientWidth);},
      500);};  // Grid.js lays its columns out after the first rows appear
  drawn();
}
""".replace("PAGE_ROWS", str(PAGE_ROWS))


@cache
def _vendor() -> tuple[str, str]:
    return (VENDOR / "gridjs.umd.js").read_text(encoding="utf-8"), (VENDOR / "mermaid.min.css").read_text(
        encoding="utf-8"
    )


def file_slugs(names: Sequence[str], fallback: str = "device") -> dict[str, str]:
    """A file name (without its suffix) for each name, e.g. a device's page or a series' figure: the name
    where that is safe, else with a hash to keep it apart; under the 255 bytes a file name may hold."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name in names:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:100] or fallback  # a file name: 255 bytes at most
        if slug != name or slug in taken:
            slug = f"{slug}-{hashlib.sha256(name.encode()).hexdigest()[:6]}"
        taken.add(slug)
        out[name] = slug
    return out


# ---------------------------------------------------------------------------- the results table


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # text | num | status | box | link | notes
    values: list[Any]


def _num(v: Any, digits: str = ".3g") -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(format(float(v), digits))


def _boxes(frame: pd.DataFrame) -> list[Any]:
    """Each row's p5, p25, median, p75, p95 placed on its device × model's common axis (0–1; log where the
    spread is wide), then the same five in ms for the tooltip; None where there are no samples."""
    q = frame[["p5_ms", "p25_ms", "median_ms", "p75_ms", "p95_ms"]].to_numpy(dtype=float)
    out: list[Any] = [None] * len(frame)
    keys = list(zip(frame["device"], frame["model"]))
    groups: dict[tuple[str, str], list[int]] = {}
    for i, k in enumerate(keys):
        if not np.isnan(q[i]).any():
            groups.setdefault(k, []).append(i)
    for rows in groups.values():
        lo, hi = q[rows, 0].min(), q[rows, 4].max()
        log = lo > 0 and hi > 20 * lo
        f = np.log if log else (lambda a: a)
        span = (f(hi) - f(lo)) or 1.0
        for i in rows:
            pos = np.clip((f(q[i]) - f(lo)) / span, 0, 1)
            out[i] = [round(float(p), 4) for p in pos] + [float(format(v, ".4g")) for v in q[i]]
    return out


def table_columns(frame: pd.DataFrame, slugs: dict[str, str] | None, detail: bool) -> list[Column]:
    """The results table's columns for a page; an optional column only where some row has data."""
    cols = []
    if slugs is not None:
        cols.append(Column("device", "link", frame["device"].tolist()))  # a link to its page: SLUGS
    shown = display_table(frame)
    status = shown["status"].tolist()
    cols += [
        Column("model", "text", frame["model"].tolist()),
        Column("precision", "text", frame["precision"].tolist()),
        Column("configuration", "text", [config_label(r) for r in frame[["runtime", "delegate", "threads"]].to_dict("records")]),
        Column("status", "status", status),
        Column("median ms", "num", [_num(v) for v in frame["median_ms"].tolist()]),
        Column("95% CI of median", "text", shown["95% CI of median"].tolist()),
        Column("p99 ms", "num", [_num(v) for v in frame["p99_ms"].tolist()]),
        Column("CV %", "num", [_num(v, ".2g") for v in frame["cv_pct"].tolist()]),
        Column("speedup ×", "num", [_num(v) for v in frame["speedup"].tolist()]),
    ]  # fmt: skip
    # display_table decides which optional columns have data, and words a missing figure's reason
    cols += [Column(t, "text", shown[t].tolist()) for t in ("mJ / inference", "fidelity vs fp32 CPU",
                                                           "top-1 accuracy (95% CI)") if t in shown]  # fmt: skip
    if detail:
        numeric = {"init ms": "init_ms", "first ms": "first_inference_ms", "peak RSS MB": "peak_rss_mb",
                   "avg W": "avg_w", "max °C": "temp_max_c"}  # fmt: skip
        for title in ("init ms", "first ms", "peak RSS MB", "delegated nodes", "avg W", "max °C"):
            if title in numeric and frame[numeric[title]].notna().any():
                cols.append(Column(title, "num", [_num(v) for v in frame[numeric[title]].tolist()]))
            elif title in shown and title not in numeric:
                cols.append(Column(title, "text", shown[title].tolist()))
    cols.append(Column("distribution", "box", _boxes(frame)))
    cols.append(Column("notes", "notes", frame["notes"].tolist()))
    return cols


_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def _json(value: Any) -> str:
    """JSON for inside a <script>: no `<`, `>` or `&` left in it, so that nothing in a name can close the
    element or (as `<!--<script>` does) keep the page's own `</script>` from closing it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).translate(_SCRIPT_SAFE)


def results_table(element: str, columns: list[Column], slugs: dict[str, str] | None = None) -> str:
    """The table's rows as JSON for the page's script (Grid.js draws only the page of rows on screen)."""
    rows = [list(r) for r in zip(*(c.values for c in columns))]
    meta = [{"name": c.name, "kind": c.kind} for c in columns]
    return (f"<div id='{element}'></div><script>const SLUGS={_json(slugs or {})};"
            f"table({_json(element)},{_json(meta)},{_json(rows)});</script>")  # fmt: skip


TABLE_NOTE = (
    "Sort by a column's header; the search box filters on any cell (a link can carry a filter: <code>?q=int8</code>). "
    "distribution: box p25–p75, red line the median, whiskers p5–p95 of the raw samples, on one axis per device and "
    "model (log where the spread is wide); hover for the numbers. speedup ×: the baseline's median ÷ this median; "
    "the baseline is the single-thread CPU run of the same device, model and precision (LiteRT cpu, else XNNPACK, "
    "else ONNX Runtime CPU)."
)


# ---------------------------------------------------------------------------- grids


def _colour(value: float, scale: str, row_best: float) -> str:
    if math.isnan(value):
        return ""
    if scale == "log-low-good":  # against the row's fastest: green at it, red at 10× or slower
        t = min(1.0, math.log10(value / row_best)) if row_best > 0 and value > 0 else 1.0
        hue = 120 * (1 - t)
    elif scale == "ratio":  # around 1: red below, green above, saturating at 4× either way
        t = max(-1.0, min(1.0, math.log(value) / math.log(4))) if value > 0 else -1.0
        hue = 60 + 60 * t
    else:  # share
        hue = 120 * value
    return f" style='background:hsl({hue:.0f},60%,80%)'"


def grid_html(grid: Grid, slugs: dict[str, str], prefix: str = "devices/") -> str:
    values, text = grid.values, grid.text.reindex_like(grid.values).fillna("")
    head = "".join(f"<th><a href='{html.escape(prefix + slugs[d])}.html'>{html.escape(str(d))}</a></th>"
                   for d in values.columns)  # fmt: skip
    rows = []
    matrix = values.to_numpy(dtype=float)
    words = text.to_numpy()
    for i, model in enumerate(values.index):
        best = np.nanmin(matrix[i]) if not np.isnan(matrix[i]).all() else math.nan
        cells = "".join(
            f"<td{_colour(v, grid.scale, best)}>{html.escape(str(t))}</td>" for v, t in zip(matrix[i], words[i])
        )
        rows.append(f"<tr><th>{html.escape(str(model))}</th>{cells}</tr>")
    return (f"<h3 id='grid-{grid.name}'>{html.escape(grid.title)}</h3><p class='caption'>{html.escape(grid.caption)}</p>"
            f"<table class='grid'><thead><tr><th>model \\ device</th>{head}</tr></thead><tbody>{''.join(rows)}"
            "</tbody></table>")  # fmt: skip


def device_grid(frame: pd.DataFrame) -> str:
    """One device: model × configuration, the median in each cell, coloured against the model's fastest."""
    measured = frame[frame["median_ms"].notna()]
    if measured.empty:
        return ""
    cfg = (
        measured["precision"]
        + " "
        + measured["runtime"]
        + ":"
        + measured["delegate"]
        + " t"
        + measured["threads"].astype(str)
    )
    values = measured.assign(_cfg=cfg).pivot_table(index="model", columns="_cfg", values="median_ms", aggfunc="min")
    text = values.map(lambda v: "" if np.isnan(v) else format(v, ".3g"))
    grid = Grid("configurations", "Median latency (ms) of each model and configuration",
                "colour against the model's fastest configuration on this device: green at it, red at 10× or slower; "
                "empty: not measured (the table below says why)", values, text, "log-low-good")  # fmt: skip
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in values.columns)
    rows = []
    matrix = values.to_numpy(dtype=float)
    for i, model in enumerate(values.index):
        best = np.nanmin(matrix[i])
        cells = "".join(
            f"<td{_colour(v, grid.scale, best)}>{html.escape(t)}</td>" for v, t in zip(matrix[i], text.to_numpy()[i])
        )
        rows.append(f"<tr><th>{html.escape(str(model))}</th>{cells}</tr>")
    return (f"<h2>{html.escape(grid.title)}</h2><p class='caption'>{html.escape(grid.caption)}</p><table class='grid'>"
            f"<thead><tr><th>model \\ configuration</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")  # fmt: skip


# ---------------------------------------------------------------------------- pages


def _page(title: str, body: list[str], table: bool = True) -> str:
    js, css = _vendor()
    script = f"<script>{js}</script><script>{BOX_JS}</script>" if table else ""
    return "\n".join([
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<meta name='viewport' content='width=device-width'><title>{html.escape(title)}</title>",
        f"<style>{css}</style><style>{CSS}</style>{script}</head><body>", *body, "</body></html>",
    ])  # fmt: skip


def plain_table(frame: pd.DataFrame, status_cols: Sequence[str] = ()) -> str:
    cols = list(frame.columns)
    out = [
        "<table class='plain'><thead><tr>"
        + "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
        + "</tr></thead><tbody>"
    ]
    for row in frame.itertuples(index=False):
        cells = []
        for col, value in zip(cols, row):
            key = str(value).split(" ")[0]
            if col in status_cols and "low fidelity" in str(value):
                key = "lowfid"  # fast but wrong: never the green of a plain ok
            cls = f' class="{html.escape(key)}"' if col in status_cols and key in (*STATUSES, "lowfid") else ""
            cells.append(f"<td{cls}>{html.escape(str(value))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def header(data: ReportData, frame: pd.DataFrame) -> list[str]:
    return [
        "<dl class='facts'>",
        *(f"<dt>{k}</dt><dd>{html.escape(v)}</dd>" for k, v in run_facts(data, frame)),
        "</dl>",
    ]


def overview_page(data: ReportData, figures: dict[str, bytes | None], titles: dict[str, str], slugs: dict[str, str],
                  skipped_figures: str) -> str:  # fmt: skip
    frame = data.results
    body = ["<h1>embench report</h1>", *header(data, frame)]
    nav = ["<a href='#overview'>overview</a>", "<a href='#results'>results</a>"]
    if not data.precisions.empty:
        nav.append("<a href='#precisions'>precisions</a>")
    if not data.compatibility.empty:
        nav.append("<a href='#compatibility'>compatibility</a>")
    nav.append("<a href='study.html'>study</a>")
    nav.append(
        "devices: " + " ".join(f"<a href='devices/{html.escape(slugs[d])}.html'>{html.escape(d)}</a>" for d in slugs)
    )
    body.append(f"<nav>{' · '.join(nav)}</nav>")
    rows = environment_rows(data)
    if len(rows) > 8:
        body.append(f"<details><summary>{len(rows)} devices' facts</summary><ul>")
    else:
        body.append("<ul>")
    body += [f"<li>{html.escape(r)}</li>" for r in rows]
    body.append("</ul></details>" if len(rows) > 8 else "</ul>")
    body.append("<h2 id='overview'>Overview</h2><p class='caption'>Models down, devices across; a device's name opens its"
                " page. Each grid says what its cells are.</p>")  # fmt: skip
    body += [grid_html(g, slugs) for g in grids(frame)]
    body += [f"<h2 id='results'>Results ({len(frame)} jobs)</h2><p class='caption'>{TABLE_NOTE}"
             f" {html.escape(energy_note(frame))}</p>",
             results_table("results-table", table_columns(frame, slugs, detail=False), slugs)]  # fmt: skip
    if not data.precisions.empty:
        body += ["<h2 id='precisions'>Precisions against fp32</h2>", plain_table(precision_display(data.precisions)),
                 f"<p class='caption'>{html.escape(PRECISION_NOTE)}</p>"]  # fmt: skip
    if not data.scores.empty:
        body += ["<h2>Accuracy against latency and energy</h2>", plain_table(score_display(data.scores)),
                 f"<p class='caption'>{html.escape(score_note(data))}</p>"]  # fmt: skip
    if not data.compatibility.empty:
        body += ["<h2 id='compatibility'>Compatibility</h2>", plain_table(data.compatibility.reset_index(),
                 list(data.compatibility.columns)),
                 "<p class='caption'>Each device × model × precision's status in each configuration; — : that"
                 " configuration was not in this run's plan for it (not swept).</p>"]  # fmt: skip
    for name, png in figures.items():
        if png:
            b64 = base64.b64encode(png).decode()
            body.append(f"<h2>{html.escape(titles[name])}</h2><img id='{name}' alt='{html.escape(titles[name])}'"
                        f" src='data:image/png;base64,{b64}'>")  # fmt: skip
    if skipped_figures:
        body.append(f"<p class='caption'>{html.escape(skipped_figures)}</p>")
    body.append(f"<p class='caption'>{html.escape(SPEEDUP_NOTE)}</p>")
    return _page("embench report", body)


def device_page(data: ReportData, device: str, frame: pd.DataFrame) -> str:
    facts = data.environment.get(device)
    rows = [r for r in environment_rows(data) if r.startswith(f"{device}: ")] if facts else []
    body = [f"<p><a href='../report.html'>← overview</a></p><h1>{html.escape(device)}</h1>",
            *header(data, frame), *(f"<p>{html.escape(r)}</p>" for r in rows)]  # fmt: skip
    power = sorted({str(s) for s in frame["power_source"] if s})
    body.append(f"<p class='caption'>Energy: {html.escape(', '.join(power))}.</p>" if power else
                "<p class='caption'>Energy: this device has no power source in the inventory (docs/inventory.md,"
                " telemetry), so no energy column.</p>")  # fmt: skip
    body.append(device_grid(frame))
    body += [f"<h2>Results ({len(frame)} jobs)</h2><p class='caption'>{TABLE_NOTE}</p>",
             results_table("device-table", table_columns(frame, None, detail=True))]  # fmt: skip
    return _page(f"embench · {device}", body)


def study_page(data: ReportData, study: Study, op_note: str = "") -> str:
    """The study as a page (study_render's tables)."""
    body = ["<p><a href='report.html'>← report</a></p><h1>embench study</h1>", *header(data, data.results),
            "<h2 id='headline'>Headline</h2>", plain_table(headline_display(study)),
            f"<p class='caption'>{html.escape(HEADLINE_NOTE)}</p>"]  # fmt: skip
    if not study.compatibility.empty:
        body += ["<h2 id='compatibility'>Compatibility: architecture × runtime:delegate</h2>",
                 plain_table(study.compatibility.reset_index()),
                 "<p class='caption'>Each cell counts the jobs by status over every device, precision and thread"
                 " count; — : not swept.</p>"]  # fmt: skip
    sections = [("placement", "Ops left on the CPU by a delegate", placement_display(study), ""),
                ("classes", "Where the time goes: op classes per configuration", classes_display(study), CLASS_NOTE),
                ("scaling", "How each op class scales", scaling_display(study), SCALING_NOTE),
                ("speedups", "Speedup of every configuration", speedup_display(study), "")]  # fmt: skip
    for anchor, title, table, note in sections:
        if table.empty:
            continue
        body += [f"<h2 id='{anchor}'>{html.escape(title)}</h2>", plain_table(table)]
        if note:
            body.append(f"<p class='caption'>{html.escape(note)}</p>")
    if data.ops.empty:
        body.append("<p class='caption'>No job of this run has per-op records.</p>")
    if op_note:
        body.append(f"<p class='caption'>{html.escape(op_note)}</p>")
    return _page("embench study", body, table=False)
