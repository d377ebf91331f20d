"""Render a night's verdicts (embench.compare) as Markdown (a CI job summary), JUnit XML (one test
case per series; a regression is a failure), JSON, and an HTML page with each regressed series'
history. Renders only: the numbers come computed."""

from __future__ import annotations

import base64
import html
import io
import json
import math
import socket
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

from ..compare import Comparison
from ..history import Point, Step
from ..regression import MIN_NIGHTS, over
from ..text import md_cell, one_line, save, xml_text


@dataclass(frozen=True)
class Night:
    """What the renderers need: tonight's run, what it was judged against, and the verdicts."""

    run_id: str
    baseline: str  # in words: "pinned baseline RUN" or "the last 3 good nights: A, B, C"
    comparisons: Sequence[Comparison]
    failed_jobs: int = 0
    histories: dict[str, tuple[list[Point], list[Step]]] | None = None  # regressed series' label → history
    target: float = 1.05  # the slowdown the lab wants found (nightly.target)
    # what judged it: `embench nightly`, or `embench compare` (a run against another)
    verb: Literal["nightly", "compare"] = "nightly"

    @property
    def counts(self) -> Counter[str]:
        return Counter(c.verdict for c in self.comparisons)

    @cached_property
    def coverage(self) -> tuple[int, int]:
        """(series that can find a `target` slowdown tonight, series judged): what a quiet night vouches for.
        Judged: a detectable slowdown was worked out (flagged and not comparable series have none)."""
        judged = [c for c in self.comparisons if not math.isnan(c.detectable)]
        return sum(1 for c in judged if c.detectable <= self.target), len(judged)

    @property
    def coverage_words(self) -> str:
        able, judged = self.coverage
        if not judged:
            return ""
        return (
            f"{able} of {judged} judged series can find a {over(self.target)} slowdown tonight (80% power);"
            " for the others a quiet night vouches only for their *detectable* slowdown."
        )

    @property
    def regressed(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.verdict == "slower"]


def _num(x: float, fmt: str = ".3f") -> str:
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, fmt)


def _mde(c: Comparison) -> str:
    if math.isinf(c.detectable):
        return f"none: {c.detectable_note}"
    if math.isnan(c.detectable):
        return "—"
    advice = f" ({c.detectable_note})" if c.detectable_note else ""
    if c.repetitions_for_target and c.repetitions_for_target > len(c.after):
        advice = f" (R={c.repetitions_for_target} for the target)"
    return f"{c.detectable - 1:+.1%}{advice}"


def _noise(c: Comparison) -> str:
    if not math.isfinite(c.night_sd):
        return "—"
    if c.noise_nights < MIN_NIGHTS:  # both frames assume the same until its own nights are known
        return f"{c.night_sd:.1%} (assumed)"
    return f"{c.night_sd:.1%}" + (f"; {c.night_sd_alone:.1%} alone" if math.isfinite(c.night_sd_alone) else "")


# GitHub refuses a job summary over 1 MiB (the whole summary is lost, "upload aborted"). The summary
# stays under this; every series is in verdicts.json and junit.xml.
SUMMARY_BYTES = 900 * 1024
# what a cut table lists first: what a lab must act on, then what it should look at
_TABLE_ORDER = ("slower", "not comparable", "environment", "throttled", "fallback", "bimodal", "faster",
                "inconclusive", "same")  # fmt: skip

_FOOTER = ("Medians are of repetition levels (each repetition a fresh process; its level the 10th percentile"
           " of its invokes, the fast end that interference leaves alone). Ratios are against the"
           " device's other series with nothing changed at the same thread count (their move tonight divided"
           " out), where it has two or more. A series is *slower*"
           " when tonight is significantly above its baseline nights given its own night-to-night noise (p ≤ α,"
           " Benjamini-Hochberg q ≤ 0.05 across the night, and its repetitions by a rank test) **and** the ratio"
           " is at or above its threshold. *detectable*: the smallest slowdown found 80% of the time at this"
           " noise (docs/nightly.md).")  # fmt: skip


def _regression_line(c: Comparison) -> str:
    return (f"- **{md_cell(c.label)}**: {c.median_before:.4g} → {c.median_after:.4g} ms, {md_cell(c.why)}"
            + (f"; changed: {md_cell('; '.join(c.changes))}" if c.changes else ""))  # fmt: skip


def _table_row(c: Comparison) -> str:
    ratio = f"{_num(c.ratio)} [{_num(c.ratio_low)}, {_num(c.ratio_high)}]" if math.isfinite(c.ratio) else "—"
    note = c.why if c.verdict not in ("slower", "faster", "same") else ""
    return (f"| {md_cell(c.label)} | {md_cell(c.verdict + (': ' + note if note else ''))} |"
            f" {_num(c.median_before, '.4g')} | {_num(c.median_after, '.4g')} | {ratio} |"
            f" {_num(c.p_slower, '.2g')} | {_num(c.q_slower, '.2g')} | {_noise(c)} | {md_cell(_mde(c))} |"
            f" {md_cell('; '.join(c.changes))} |")  # fmt: skip


class _Budget:
    """Lines while they fit in `left` UTF-8 bytes, each with its newline."""

    def __init__(self, left: int) -> None:
        self.left = left

    def take(self, line: str, keep: int = 0) -> bool:
        """Spend on `line` if it fits with `keep` bytes left over (for what must still follow)."""
        size = len(line.encode()) + 1
        if size + keep > self.left:
            return False
        self.left -= size
        return True


def _while_fits(budget: _Budget, lines: Iterable[str], keep: int) -> Iterator[str]:
    """The first lines, in order, up to the first that does not fit."""
    for line in lines:
        if not budget.take(line, keep):
            return
        yield line


def markdown(night: Night, max_bytes: int = SUMMARY_BYTES) -> str:
    """The summary: counts, each regression, every series; over `max_bytes` (a CI job summary's limit)
    the table keeps the rows a lab must act on first, and says how many more are in the other files."""
    counts = ", ".join(f"{n} {v}" for v, n in night.counts.most_common())
    coverage = night.coverage_words
    head = [f"# embench {night.verb} {night.run_id}", "",
            f"Judged against {night.baseline}. {counts or 'no series'}."
            + (f" **{night.failed_jobs} job(s) failed.**" if night.failed_jobs else "")
            + (f" {coverage}" if coverage else ""), ""]  # fmt: skip
    table_head = ["## Every series", "",
                  "| series | verdict | before ms | tonight ms | ratio [95% CI] | p | q | night noise | detectable |"
                  " what changed |", "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    # room kept back for the table's head, the footer and a line saying what was cut
    reserve = sum(len(x.encode()) + 1 for x in [*table_head, "", _FOOTER]) + 600
    budget = _Budget(max_bytes)
    lines = [x for x in head if budget.take(x)]
    if night.regressed:
        lines += ["## Regressions", ""]
        listed = list(_while_fits(budget, map(_regression_line, night.regressed), reserve))
        lines += listed
        if len(listed) < len(night.regressed):
            lines.append(f"- … and {len(night.regressed) - len(listed)} more regressed series (the summary stays"
                         " under a CI job summary's size): every one is in junit.xml and verdicts.json")  # fmt: skip
        lines.append("")
    lines += table_head
    rows = [(c, _table_row(c)) for c in night.comparisons]
    if sum(len(r.encode()) + 1 for _, r in rows) + reserve > budget.left:
        rank = {v: i for i, v in enumerate(_TABLE_ORDER)}  # failed jobs right after the regressions
        rows.sort(key=lambda cr: (cr[0].verdict != "slower", not cr[0].job_failed, rank.get(cr[0].verdict, 0)))
        shown = list(_while_fits(budget, (row for _, row in rows), reserve))
        left_out = Counter(c.verdict for c, _ in rows[len(shown) :])
        lines += shown
        lines.append(f"| … {len(rows) - len(shown)} more series ("
                     + ", ".join(f"{n} {v}" for v, n in left_out.most_common())
                     + "): the summary stays under a CI job summary's size; every series is in verdicts.json and"
                     " junit.xml | | | | | | | | | |")  # fmt: skip
    else:
        lines += [row for _, row in rows]
    lines += ["", _FOOTER]
    return "\n".join(lines) + "\n"


def junit(night: Night) -> str:
    """One <testcase> per series: a regression is a <failure> with the numbers; a series that could not be
    judged is <skipped> with why; a failed job an <error>."""
    suite = ET.Element("testsuite", name=f"embench {night.verb} {night.run_id}", tests=str(len(night.comparisons)),
                       failures=str(len(night.regressed)), errors="0", skipped="0", hostname=socket.gethostname(),
                       timestamp=time.strftime("%Y-%m-%dT%H:%M:%S"), time="0")  # fmt: skip
    errors = skipped = 0
    for c in night.comparisons:
        case = ET.SubElement(suite, "testcase", classname=f"{c.key[0]}.{c.key[1]}", name=c.label,
                             time=f"{c.median_after / 1e3:.6f}" if math.isfinite(c.median_after) else "0")  # fmt: skip
        detail = (f"{c.label}: {c.median_before:.4g} ms → {c.median_after:.4g} ms; {c.why}"
                  + (f"; what changed: {'; '.join(c.changes)}" if c.changes else ""))  # fmt: skip
        if c.verdict == "slower":
            ET.SubElement(case, "failure", type="regression", message=f"slower: {c.why}").text = detail
        elif c.job_failed:
            ET.SubElement(case, "error", type="job failed", message=c.why).text = detail
            errors += 1
        elif c.verdict in ("not comparable", "inconclusive", "bimodal", "throttled", "fallback", "environment"):
            ET.SubElement(case, "skipped", message=f"{c.verdict}: {c.why}")
            skipped += 1
    suite.set("errors", str(errors))
    suite.set("skipped", str(skipped))
    root = ET.Element("testsuites", name=f"embench {night.verb}", tests=suite.get("tests", "0"),
                      failures=suite.get("failures", "0"), errors=str(errors))  # fmt: skip
    root.append(suite)
    ET.indent(root)
    # names may hold characters XML 1.0 cannot (a CI system rejects the whole file): the document, once
    return xml_text('<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n")


def as_json(night: Night) -> str:
    def item(c: Comparison) -> dict[str, object]:
        def clean(x: float) -> float | None:
            return x if math.isfinite(x) else None

        return {"series": dict(zip(("device", "model", "precision", "runtime", "delegate", "threads"), c.key)),
                "verdict": c.verdict, "why": c.why, "before_ms": list(c.before), "tonight_ms": list(c.after),
                "ratio": clean(c.ratio), "ratio_ci": [clean(c.ratio_low), clean(c.ratio_high)],
                "p_slower": clean(c.p_slower), "q_slower": clean(c.q_slower), "night_noise": clean(c.night_sd),
                "night_noise_alone": clean(c.night_sd_alone),
                "noise_nights": c.noise_nights, "device_shift": clean(c.shift), "detectable_note": c.detectable_note,
                "detectable_ratio": clean(c.detectable) if not math.isinf(c.detectable) else None,
                "repetitions_for_target": c.repetitions_for_target, "changes": list(c.changes),
                "job_failed": c.job_failed, "job_id": c.after_job_id, "baseline_job_id": c.before_job_id}  # fmt: skip

    can_find, judged = night.coverage
    body = {"run": night.run_id, "baseline": night.baseline, "failed_jobs": night.failed_jobs,
            "counts": dict(night.counts),
            "coverage": {"target": night.target, "can_find": can_find, "judged": judged},
            "series": [item(c) for c in night.comparisons]}  # fmt: skip
    return json.dumps(body, indent=1) + "\n"


def history_png(label: str, points: Sequence[Point], steps: Sequence[Step]) -> bytes:
    """A series' nightly medians with their CIs (error bars), and each detected step as a line."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(8, 3.2), dpi=100)
    x = list(range(len(points)))
    med = [p.median_ms for p in points]
    err = [[p.median_ms - p.low_ms for p in points], [p.high_ms - p.median_ms for p in points]]
    ax.errorbar(x, med, yerr=err, fmt="o-", color="#1f77b4", ecolor="#999", capsize=3,
                label="median of repetition levels (95% CI)")  # fmt: skip
    for step in steps:
        ax.axvline(step.index - 0.5, color="#d62728", linestyle="--", label=f"step ×{step.ratio:.3f}")
    ax.set_xticks(x, [p.run_id[:15] for p in points], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("latency (ms)")
    ax.set_title(one_line(label).replace("$", r"\$"), fontsize=9)  # `$` starts math in matplotlib
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def page(night: Night) -> str:
    """One self-contained HTML page: the summary table, then each regressed series' history."""
    rows = []
    for c in night.comparisons:
        css = {"slower": "bad", "faster": "good"}.get(c.verdict, "")
        ratio = f"{_num(c.ratio)} [{_num(c.ratio_low)}, {_num(c.ratio_high)}]" if math.isfinite(c.ratio) else "—"
        rows.append(f"<tr class='{css}'><td>{html.escape(c.label)}</td><td>{html.escape(c.verdict)}</td>"
                    f"<td>{_num(c.median_before, '.4g')}</td><td>{_num(c.median_after, '.4g')}</td><td>{ratio}</td>"
                    f"<td>{_num(c.p_slower, '.2g')}</td><td>{html.escape(_mde(c))}</td>"
                    f"<td>{html.escape(c.why)}</td><td>{html.escape('; '.join(c.changes))}</td></tr>")  # fmt: skip
    figures = []
    for label, (points, steps) in (night.histories or {}).items():
        png = base64.b64encode(history_png(label, points, steps)).decode()
        figures.append(f"<h3>{html.escape(label)}</h3><img alt='history of {html.escape(label)}'"
                       f" src='data:image/png;base64,{png}'>")  # fmt: skip
    head = ("<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;font-size:13px}"
            "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}tr.bad{background:#fdd}"
            "tr.good{background:#dfd}</style>")  # fmt: skip
    summary = html.escape(markdown(night).split("\n")[2].replace("*", ""))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>embench {night.verb} {night.run_id}</title>{head}"
            f"</head><body><h1>embench {night.verb} {night.run_id}</h1><p>{summary}</p>"
            "<table><tr><th>series</th><th>verdict</th><th>before ms</th><th>tonight ms</th><th>ratio [95% CI]</th>"
            "<th>p</th><th>detectable</th><th>why</th><th>what changed</th></tr>"
            + "".join(rows) + "</table>" + ("<h2>Regressed series over the nights</h2>" + "".join(figures)
                                             if figures else "") + "</body></html>\n")  # fmt: skip


def write(night: Night, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, tuple[str, Callable[[Night], str]]] = {
        "markdown": ("summary.md", markdown), "junit": ("junit.xml", junit), "json": ("verdicts.json", as_json),
        "html": ("index.html", page)}  # fmt: skip
    paths = {}
    for kind, (name, render) in files.items():
        path = out / name
        save(path, render(night))  # names may hold anything: no escapes in files
        paths[kind] = path
    return paths
