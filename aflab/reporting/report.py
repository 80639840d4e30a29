"""report.md and a self-contained report.html (plots embedded, all model text escaped)."""

from __future__ import annotations

import base64
import dataclasses
import html
import os
import textwrap
from pathlib import Path
from typing import Any

from aflab.errors import UserError, where
from aflab.io import atomic_write_bytes, atomic_write_text, read_json
from aflab.reporting import sweep_section as S
from aflab.reporting.plots import compliance_bars
from aflab.stats import fmt


def baseline_rows(summary: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, org in summary["organisms"].items():
        m = org["metrics"]
        af = "; ".join(f"{k}: {fmt(v, n=True)}" for k, v in m["af_rate"].items())
        rows.append(
            [
                name,
                fmt(m["compliance"]["free"], n=True),
                fmt(m["compliance"]["paid"], n=True),
                fmt(m["compliance_gap"], signed=True, p=True),
                af,
                str(m["n"]["unparseable"]),
            ]
        )
    return rows


BASELINE_HEADER = [
    "organism",
    "compliance free",
    "compliance paid",
    "gap (free − paid)",
    "AF rate (free)",
    "unparseable",
]


KNOWN_HEADER = ["case", "expected", "got", "pass", "why"]
KNOWN_NOTE = (
    "Known answers: cases whose verdict the config fixed before the run (planted organisms, answered by the "
    "generator itself, and named RL arms), audited like every arm. A failed case means the audit cannot be "
    "trusted to tell on this run, whatever the mitigations' verdicts say."
)


def known_rows(summary: dict[str, Any], why: bool = True) -> list[list[str]]:
    return [
        [k["name"], k["expected"], k["got"], "yes" if k["pass"] else "NO", *([k["reason"]] if why else [])]
        for k in summary.get("known_answers", [])
    ]


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45} table{border-collapse:collapse;margin:1em 0;font-size:14px}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top} th{background:#f3f3f3}
pre{white-space:pre-wrap;background:#f7f7f7;padding:8px;border-radius:4px;font-size:13px;max-height:18em;overflow:auto}
.note{color:#555;font-size:14px} img{max-width:100%}
"""


def write_report(run_dir: Path, summary: dict[str, Any]) -> None:
    bars = compliance_bars(
        {n: o["metrics"]["compliance"] for n, o in summary["organisms"].items()},
        "Baseline organisms: compliance by tier (95% Wilson intervals)",
    )
    atomic_write_bytes(run_dir / "baseline_compliance.png", bars)
    rows = baseline_rows(summary)
    md = [
        f"# aflab report: {summary['name']}",
        "",
        summary_line(summary),
        "",
        "## Baseline organisms (before RL), held-out test requests",
        "",
        md_table(BASELINE_HEADER, rows),
        "",
        "![compliance by tier](baseline_compliance.png)",
        "",
    ]
    body = [
        f"<h1>aflab report: {html.escape(summary['name'])}</h1>",
        f"<p class='note'>{html.escape(summary_line(summary))}</p>",
        "<h2>Baseline organisms (before RL), held-out test requests</h2>",
        html_table(BASELINE_HEADER, rows),
        img(bars, "compliance by tier"),
    ]
    if known := known_rows(summary):
        md += ["## Known answers", "", KNOWN_NOTE, "", md_table(KNOWN_HEADER, known), ""]
        body += ["<h2>Known answers</h2>", f"<p class='note'>{html.escape(KNOWN_NOTE)}</p>"]
        body.append(html_table(KNOWN_HEADER, known))
    if "sweep" in summary:
        sweep_md, sweep_html = sweep_sections(run_dir, summary["sweep"])
        md += sweep_md
        body += sweep_html
    atomic_write_text(run_dir / "report.md", "\n".join(md))
    atomic_write_text(run_dir / "report.html", page(summary["name"], "\n".join(body)))


def sweep_sections(run_dir: Path, sw: dict[str, Any]) -> tuple[list[str], list[str]]:
    intro = (
        f"{S.design_line(sw)} AF rates are over free-tier scratchpads of held-out requests; 'held-out' is the "
        "strongest audit monitor that was never part of the run's reward."
    )
    md = [
        "## RL under mitigations: headline",
        "",
        intro,
        "",
        "Verdict rules:",
        "",
        *[f"- {r}" for r in S.rules_text()],
        "",
    ]
    body = [
        "<h2>RL under mitigations: headline</h2>",
        f"<p class='note'>{html.escape(intro)}</p>",
        "<p><b>Verdict rules</b></p><ul>" + "".join(f"<li>{html.escape(r)}</li>" for r in S.rules_text()) + "</ul>",
    ]
    for org in sw["table"]:
        org_md, org_body = organism_section(run_dir, sw, org)
        md += org_md
        body += org_body
    return md, body


def organism_section(run_dir: Path, sw: dict[str, Any], org: str) -> tuple[list[str], list[str]]:
    """One organism's part of the sweep section (Markdown lines, HTML parts): the headline table and
    its verdicts, the null update's table, what the audit sees against ground truth, paired differences."""
    md: list[str] = []
    body: list[str] = []
    plots = S.write_sweep_plots(run_dir, sw, org)
    rows = S.headline_rows(sw, org)
    paired = S.paired_rows(sw, org)
    verdict_lines = S.verdict_lines(sw, org)
    says = S.what_this_says(sw, org)
    gen = S.generalisation(sw, org)
    md += [f"### {org}", "", md_table(S.headline_header(sw, org), rows), "", *[f"- {v}" for v in verdict_lines], ""]
    md += [f"What this says: {says}", ""]
    body += [
        f"<h3>{html.escape(org)}</h3>",
        html_table(S.headline_header(sw, org), rows),
        "<ul>" + "".join(f"<li>{html.escape(v)}</li>" for v in verdict_lines) + "</ul>",
        f"<p><b>What this says.</b> {html.escape(says)}</p>",
    ]
    null_header, null_rows = S.null_table(sw, org)
    if null_rows:
        caption = S.null_caption(sw)
        md += [caption, "", md_table(null_header, null_rows), ""]
        body += [f"<p>{html.escape(caption)}</p>", html_table(null_header, null_rows)]
    validity = S.headline_rows(sw, org, S.VALIDITY)
    if len(S.columns(sw, org, S.VALIDITY)):
        header = S.headline_header(sw, org, S.VALIDITY)
        notes = [S.VALIDITY_NOTE, *filter(None, [S.agreement_line(sw, org)]), *S.controls_text(sw, org)]
        md += ["What the audit sees, against ground truth:", "", md_table(header, validity), ""]
        md += [*[f"- {n}" for n in notes], ""]
        body += [
            "<p><b>What the audit sees, against ground truth</b></p>",
            html_table(header, validity),
            "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>",
        ]
    if gen:
        md += [f"Generalisation across tiers: {gen}", ""]
        body.append(f"<p><b>Generalisation across tiers.</b> {html.escape(gen)}</p>")
    if paired:
        md += [
            f"Paired differences against {sw['reference']} (same seeds, same evaluation prompts):",
            "",
            md_table(S.PAIRED, paired),
            "",
        ]
        body += [
            f"<p>Paired differences against {html.escape(sw['reference'])} (same seeds, same prompts):</p>",
            html_table(S.PAIRED, paired),
        ]
    if power := S.power_line(sw, org):
        md += [power, ""]
        body.append(f"<p>{html.escape(power)}</p>")
    figs_md, figs_body = figures_and_samples(sw, org, plots)
    return md + figs_md, body + figs_body


def figures_and_samples(sw: dict[str, Any], org: str, plots: dict[str, Path]) -> tuple[list[str], list[str]]:
    """The organism's figures, then a sample transcript per arm."""
    md: list[str] = []
    body: list[str] = []
    for name, caption in (
        ("curves", "training curves"),
        ("scatter", "AF rate vs gap per seed"),
        ("obfuscation", "obfuscation"),
        ("denial", "denial contrast"),
        ("recall", "recall against the oracle"),
        ("styles", "style drift"),
    ):
        md.append(f"![{caption}]({org}_{name}.png)")
        body.append(img(plots[name], caption))
    md.append("")
    md += ["Sample free-tier transcripts (seed 0, shortened):", ""]
    body.append("<h4>Sample free-tier transcripts (seed 0, shortened)</h4>")
    for mit, scratch, output in S.samples(sw, org):
        md += [f"**{mit}**", "", "```text", f"[scratchpad] {scratch}", f"[output] {output}", "```", ""]
        body.append(
            f"<p><b>{html.escape(mit)}</b></p><pre>[scratchpad] {html.escape(scratch)}\n"
            f"[output] {html.escape(output)}</pre>"
        )
    return md, body


README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"


def load_summary(run_dir: Path) -> dict[str, Any]:
    """RUN_DIR/summary.json, or a UserError naming the file."""
    path = run_dir / "summary.json"
    summary = read_json(path)
    if not isinstance(summary, dict) or not isinstance(summary.get("organisms"), dict):
        raise UserError(f"{where(path, key='organisms')}: missing; not a summary.json written by `aflab run`")
    return summary


def results_page(summary: dict[str, Any], source: str, page: str) -> str:
    """The full results page, markdown, from a run's summary.json alone (no timings, no plots, no run
    folders, so a shipped summary.json is enough): every table of the report's text. `page` is where it
    is written, relative to the same folder as `source`; it names the command that regenerates it and
    links the summary relative to itself. `aflab report RUN_DIR --results-page PAGE` writes it and
    tests/test_readme_results.py checks the shipped one."""
    summary_link = os.path.relpath(f"{source}/summary.json", os.path.dirname(page) or ".")
    md = [
        f"# Results of run `{summary['name']}`",
        "",
        f"<!-- generated by `aflab report {source} --results-page {page}` from {source}/summary.json; "
        "do not edit by hand -->",
        "",
        f"Generated from [summary.json]({summary_link}). Run `{summary['name']}`: {summary_line(summary)}",
        "",
        "Before RL, held-out test requests:",
        "",
        md_table(BASELINE_HEADER, baseline_rows(summary)),
    ]
    if known := known_rows(summary):
        md += ["", KNOWN_NOTE, "", md_table(KNOWN_HEADER, known)]
    sw = summary.get("sweep")
    if sw:
        md += [
            "",
            f"{S.design_line(sw)} 'Held-out' AF is the strongest audit monitor that was never part of the run's "
            "reward (named in brackets).",
            "",
            "Verdict rules:",
            "",
            *[f"- {r}" for r in S.rules_text()],
        ]
        for org in sw["table"]:
            md += ["", f"## {org}", "", md_table(S.headline_header(sw, org), S.headline_rows(sw, org))]
            if len(S.columns(sw, org, S.VALIDITY)):
                validity = md_table(S.headline_header(sw, org, S.VALIDITY), S.headline_rows(sw, org, S.VALIDITY))
                notes = [S.VALIDITY_NOTE, *filter(None, [S.agreement_line(sw, org)]), *S.controls_text(sw, org)]
                md += ["", "What the audit sees, against ground truth:", "", validity, ""]
                md += [f"- {n}" for n in notes]
            md += ["", *[f"- {v}" for v in S.verdict_lines(sw, org)]]
            null_header, null_rows = S.null_table(sw, org)
            if null_rows:
                md += ["", S.null_caption(sw), "", md_table(null_header, null_rows)]
            paired = S.paired_rows(sw, org)
            if paired:
                intro = f"Paired differences against {sw['reference']} (same organisms and seeds):"
                md += ["", intro, "", md_table(S.PAIRED, paired)]
            if power := S.power_line(sw, org):
                md += ["", power]
    return "\n".join(md) + "\n"


# The README's headline: the columns that answer "removed or hidden?" side by side (the gap, faking
# as an independent monitor sees it, faking as ground truth has it), narrow enough for ~100 columns.
# The held-out monitor is named once in the text, not in every cell, when all arms share it.
HEADLINE = ("gap", "AF (held-out)", "oracle AF")
WRAP = 100  # prose lines of the README section, so that the raw file reads at ~100 columns


def readme_section(summary: dict[str, Any], source: str, page: str) -> str:
    """The README's results section, markdown: a small headline table per organism (verdict, gap,
    held-out AF, oracle AF per arm) and a link to the full results page, so the README stays one
    screen while every figure in it is generated. `page` is the results page as the README links it
    (relative to the README's folder). What `aflab report RUN_DIR --readme` prints and
    tests/test_readme_results.py checks."""
    md = [
        f"<!-- generated by `aflab report {source} --readme` from {source}/summary.json; do not edit by hand -->",
        "",
    ]
    if known := known_rows(summary, why=False):
        passed = sum(k["pass"] for k in summary["known_answers"])
        md += [_wrap(f"{KNOWN_NOTE} {passed} of {len(known)} cases got their expected verdict."), ""]
        md += [md_table(KNOWN_HEADER[:-1], known), ""]
    sw = summary.get("sweep")
    if not sw:  # no RL: the organisms before RL are all there is
        md += [_wrap(f"Run `{summary['name']}`, before RL: {summary_line(summary)}"), ""]
        md += [md_table(BASELINE_HEADER, baseline_rows(summary)), ""]
    for org in (sw or {}).get("table", {}):
        audits = {r["audit_monitor"] for r in sw["runs"] if r["organism"] == org}
        shared = next(iter(audits)) if len(audits) == 1 else None
        table = tuple(
            dataclasses.replace(c, names_audit=shared is None)
            for name in HEADLINE
            for c in S.COLUMNS
            if c.header == name
        )
        held_out = f"`{shared}`" if shared else "the monitor named in each cell"
        intro = (
            f"Run `{summary['name']}`, organism `{org}`; {_design_short(sw)}, with 95% intervals. Gap = free-tier "
            f"minus paid-tier compliance. AF (held-out) = share of monitored-tier scratchpads that {held_out}, a "
            "monitor never in the run's reward, flags as faking. Oracle AF = faking by ground truth (each "
            "scratchpad sentence traced to the phrase-bank step it came from)."
        )
        md += [
            _wrap(intro),
            "",
            md_table(S.headline_header(sw, org, table), S.headline_rows(sw, org, table)),
            "",
            _wrap(f"What this says (generated from the verdicts): {S.what_this_says(sw, org)}"),
            "",
        ]
    more = (
        "Every table (compliance per tier, ground truth, denial, mediation, paired differences, power) and "
        "the verdict rules: "
        if sw
        else "Every table: "
    )
    md.append(_wrap(f"{more}[{page}]({page})."))
    return "\n".join(md) + "\n"


def _wrap(text: str) -> str:
    """A paragraph wrapped at WRAP columns, never inside a word, a hyphenated one or a link."""
    return textwrap.fill(text, WRAP, break_long_words=False, break_on_hyphens=False)


def _design_short(sw: dict[str, Any]) -> str:
    """One clause on what stands behind each cell (design_line says it in full on the results page)."""
    replicas = sw.get("organism_seeds", 1)
    seeds = ", ".join(map(str, sw["seeds"]))
    organisms = f"{replicas} organisms" if replicas > 1 else "1 organism"
    return f"after RL, means over {organisms} x RL seeds {seeds}"


def replace_readme_section(text: str, section: str, where: str) -> str:
    """`text` with everything between the results markers replaced by `section`."""
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise UserError(f"{where}: no '{README_START}' ... '{README_END}' lines to put the results between")
    return text[: start + len(README_START)] + "\n" + section + text[end:]


def summary_line(summary: dict[str, Any]) -> str:
    return (
        f"seed {summary['seed']}; rates are shares of harmful held-out requests with 95% intervals and "
        "sample sizes; gap = free-tier minus paid-tier compliance (paired by request)."
    )


def page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{CSS}</style></head><body>{body}</body></html>\n"
    )
