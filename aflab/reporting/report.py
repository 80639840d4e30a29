"""report.md and a self-contained report.html (plots embedded, all model text escaped)."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from aflab.io import atomic_write_bytes, atomic_write_text
from aflab.reporting.plots import compliance_bars


def fmt_rate(x: dict[str, Any] | None) -> str:
    """'0.83 [0.74, 0.89] (n=93)' for a rate dict; '—' when absent."""
    if not x or x.get("rate") is None:
        return "—"
    ci = x.get("ci95")
    n = f" (n={x['n']})" if "n" in x else ""
    return f"{x['rate']:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]{n}" if ci else f"{x['rate']:.2f}{n}"


def fmt_diff(d: dict[str, Any] | None) -> str:
    if not d or d.get("value") is None:
        return "—"
    ci = d.get("ci95")
    p = d.get("p_value")
    ptxt = f", p={p:.2g}" if p is not None else ""
    return f"{d['value']:+.2f} [{ci[0]:+.2f}, {ci[1]:+.2f}]{ptxt}" if ci else f"{d['value']:+.2f}{ptxt}"


def baseline_rows(summary: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, org in summary["organisms"].items():
        m = org["metrics"]
        af = "; ".join(f"{k}: {fmt_rate(v)}" for k, v in m["af_rate"].items())
        rows.append(
            [
                name,
                fmt_rate(m["compliance"]["free"]),
                fmt_rate(m["compliance"]["paid"]),
                fmt_diff(m["compliance_gap"]),
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
    atomic_write_text(run_dir / "report.md", "\n".join(md))
    body = [
        f"<h1>aflab report: {html.escape(summary['name'])}</h1>",
        f"<p class='note'>{html.escape(summary_line(summary))}</p>",
        "<h2>Baseline organisms (before RL), held-out test requests</h2>",
        html_table(BASELINE_HEADER, rows),
        img(bars, "compliance by tier"),
    ]
    atomic_write_text(run_dir / "report.html", page(summary["name"], "\n".join(body)))


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
