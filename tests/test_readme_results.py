"""The README's results section is generated from the shipped summary, never typed."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from aflab.errors import UserError
from aflab.reporting.report import README_END, README_START, readme_section, replace_readme_section

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "docs" / "results"


def test_committed_readme_section_equals_what_the_command_prints_for_the_shipped_summary():
    printed = subprocess.run(
        [sys.executable, "-m", "aflab.cli", "report", "docs/results", "--readme"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    readme = (ROOT / "README.md").read_text()
    committed = readme[readme.index(README_START) + len(README_START) + 1 : readme.index(README_END)]
    assert committed == printed, (
        "README results section is stale: run `aflab report docs/results --readme --into README.md`"
    )


def test_per_arm_metrics_added_to_the_summary_appear_as_columns():
    summary = json.loads((SHIPPED / "summary.json").read_text())
    for arms in summary["sweep"]["table"].values():  # the shipped run has these: take them out first
        for arm in arms.values():
            arm.pop("oracle_af", None)
            arm.pop("denial_contrast", None)
    assert "oracle AF" not in readme_section(summary, "x")
    extended = copy.deepcopy(summary)
    org = next(iter(extended["sweep"]["table"]))
    arm = next(iter(extended["sweep"]["table"][org].values()))
    arm["oracle_af"] = {"mean": 0.123, "ci95": [0.05, 0.2], "n": 2}
    arm["denial_contrast"] = {"mean": -0.25, "ci95": None, "n": 1}
    text = readme_section(extended, "x")
    assert "| oracle AF |" in text and "| 0.12 [0.05, 0.20] |" in text
    assert "| denial contrast |" in text and "| -0.25 |" in text


def test_into_rewrites_only_between_the_markers_and_refuses_a_file_without_them():
    text = f"intro\n{README_START}\nold\n{README_END}\noutro\n"
    assert replace_readme_section(text, "new\n", "R.md") == f"intro\n{README_START}\nnew\n{README_END}\noutro\n"
    with pytest.raises(UserError, match=r"R\.md"):
        replace_readme_section("no markers\n", "new\n", "R.md")


def test_a_folder_without_summary_exits_2_naming_the_file(tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "aflab.cli", "report", str(tmp_path), "--readme"], capture_output=True, text=True
    )
    assert p.returncode == 2 and "summary.json" in p.stderr


def test_benchmark_results_md_is_rendered_from_the_benchmark_outputs():
    p = subprocess.run([sys.executable, "benchmarks/render.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
