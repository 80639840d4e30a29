"""Reporting: summary.json -> report.md, a self-contained report.html and PNG plots."""
