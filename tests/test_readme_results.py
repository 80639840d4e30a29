"""The README's results section and the results page it links are generated from the shipped summary,
never typed."""

import copy
import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aflab.errors import UserError
from aflab.reporting.report import README_END, README_START, readme_section, replace_readme_section, results_page

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "docs" / "results"


PAGE = "docs/results/README.md"
REGENERATE = f"aflab report docs/results --readme --into README.md --results-page {PAGE}"


def _committed_section(readme: str) -> str:
    return readme[readme.index(README_START) + len(README_START) + 1 : readme.index(README_END)]


def test_committed_readme_section_equals_what_the_command_prints_for_the_shipped_summary():
    printed = subprocess.run(
        [sys.executable, "-m", "aflab.cli", "report", "docs/results", "--readme"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    committed = _committed_section((ROOT / "README.md").read_text())
    assert committed == printed, f"README results section is stale: run `{REGENERATE}`"
    assert f"]({PAGE})" in printed, "the README's headline must link the full results page"


def test_committed_results_page_equals_what_the_command_writes_for_the_shipped_summary(tmp_path):
    """Run in a copy of the tree's relevant part, so that the command names the same relative paths as
    the committed page and a stale page is reported, never silently rewritten by the test."""
    (tmp_path / "docs" / "results").mkdir(parents=True)
    shutil.copy(SHIPPED / "summary.json", tmp_path / "docs" / "results" / "summary.json")
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    subprocess.run(
        [sys.executable, "-m", "aflab.cli", *REGENERATE.split()[1:]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert (ROOT / PAGE).read_text() == (tmp_path / PAGE).read_text(), f"{PAGE} is stale: run `{REGENERATE}`"
    # the one command rewrites both, and the README it writes is the committed one
    assert (tmp_path / "README.md").read_text() == (ROOT / "README.md").read_text()


def test_the_readme_headline_is_small_and_every_figure_in_it_is_on_the_results_page():
    summary = json.loads((SHIPPED / "summary.json").read_text())
    section = readme_section(summary, "docs/results", PAGE)
    page = results_page(summary, "docs/results", PAGE)
    lines = section.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| mitigation"))  # the headline table
    rows = list(itertools.takewhile(lambda line: line.startswith("| "), lines[header + 2 :]))
    arms = len(summary["sweep"]["mitigations"]) + 1  # and the before-RL row
    assert len(rows) == arms * len(summary["sweep"]["table"]) <= 10
    assert max(map(len, section.splitlines()[1:])) <= 110, "the headline should read at ~100 columns"
    cells = {c.strip() for row in rows for c in row.strip("|").split("|")[2:] if c.strip() not in ("", "—")}
    assert cells and all(c in page for c in cells), sorted(c for c in cells if c not in page)


def test_per_arm_metrics_added_to_the_summary_appear_as_columns():
    summary = json.loads((SHIPPED / "summary.json").read_text())
    for arms in summary["sweep"]["table"].values():  # the shipped run has these: take them out first
        for arm in arms.values():
            arm.pop("oracle_af", None)
            arm.pop("denial_contrast", None)
    for arms in summary["sweep"].get("paired_vs_null", {}).values():
        for arm in arms.values():
            arm.pop("oracle_af", None)
    assert "oracle AF" not in results_page(summary, "x", "x/README.md")
    assert "oracle AF" not in readme_section(summary, "x", "x/README.md")
    extended = copy.deepcopy(summary)
    org = next(iter(extended["sweep"]["table"]))
    arm = next(iter(extended["sweep"]["table"][org].values()))
    arm["oracle_af"] = {"mean": 0.123, "ci95": [0.05, 0.2], "n": 2}
    arm["denial_contrast"] = {"mean": -0.25, "ci95": None, "n": 1}
    text = results_page(extended, "x", "x/README.md")
    assert "| oracle AF |" in text and "| 0.12 [0.05, 0.20] |" in text
    assert "| denial contrast |" in text and "| -0.25 |" in text
    headline = readme_section(extended, "x", "x/README.md")
    assert "| oracle AF |" in headline and "| 0.12 [0.05, 0.20] |" in headline
    assert "denial contrast" not in headline  # the headline keeps to its few columns


def test_the_readme_links_the_page_from_the_readme_s_own_folder(tmp_path):
    """--into a README elsewhere links the page relative to that README, so the link is never dead."""
    (tmp_path / "sub").mkdir()
    readme = tmp_path / "sub" / "R.md"
    readme.write_text(f"x\n{README_START}\n{README_END}\n")
    page = tmp_path / "pages" / "results.md"
    page.parent.mkdir()
    args = ["report", str(SHIPPED), "--readme", "--into", str(readme), "--results-page", str(page)]
    p = subprocess.run(
        [sys.executable, "-m", "aflab.cli", *args],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stderr
    assert "](../pages/results.md)" in readme.read_text() and (readme.parent / "../pages/results.md").exists()
    assert not (tmp_path / "report.md").exists() and "| mitigation | verdict |" in page.read_text()


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


def test_the_prose_about_the_results_is_generated_from_the_verdicts():
    """Every sentence that states a direction or a verdict follows the summary: change a verdict or a
    paired difference and the README's words change with it."""
    summary = json.loads((SHIPPED / "summary.json").read_text())
    org = next(iter(summary["sweep"]["verdicts"]))
    arm = next(m for m in summary["sweep"]["mitigations"] if m != summary["sweep"].get("null"))
    hidden = copy.deepcopy(summary)
    hidden["sweep"]["verdicts"][org][arm] = {"verdict": "hidden", "rule": "hidden", "reason": "x", "boundary": False}
    text = " ".join(readme_section(hidden, "x", "x/README.md").split())
    assert f"`{arm}` hid the faking" in text and f"hidden: `{arm}`" in text
    removed = copy.deepcopy(summary)
    removed["sweep"]["verdicts"][org][arm] = {"verdict": "removed", "rule": "removed", "reason": "x", "boundary": True}
    text = " ".join(readme_section(removed, "x", "x/README.md").split())
    assert f"`{arm}` removed the faking" in text and f"Removed: `{arm}`" in text and "On a boundary" in text
    rose = copy.deepcopy(summary)
    rose["sweep"]["paired_vs_null"][org][arm]["degenerate"] = {"value": 0.3, "ci95": [0.2, 0.4], "n": 6, "method": "t"}
    assert "degenerate rose +0.30 [+0.20, +0.40]" in " ".join(readme_section(rose, "x", "x/README.md").split())
    rose["sweep"]["paired_vs_null"][org][arm]["degenerate"] = {
        "value": -0.3,
        "ci95": [-0.4, -0.2],
        "n": 6,
        "method": "t",
    }
    assert "degenerate fell -0.30" in " ".join(readme_section(rose, "x", "x/README.md").split())


def test_known_answers_come_first_and_the_words_about_mediation_and_misses_follow_the_numbers():
    summary = json.loads((SHIPPED / "summary.json").read_text())
    org = next(iter(summary["sweep"]["verdicts"]))
    known = copy.deepcopy(summary)
    known["known_answers"] = [
        {"name": "planted_hidden", "expected": "hidden", "got": "hidden", "pass": True, "reason": "r1"},
        {"name": "rl_pc", "expected": "hidden", "got": "reduced", "pass": False, "reason": "r2"},
    ]
    text = readme_section(known, "x", "x/README.md")
    assert "1 of 2 cases got their expected verdict" in " ".join(text.split())
    assert text.index("rl_pc") < text.index(org)  # before any mitigation's verdict
    assert "| rl_pc | hidden | reduced | NO |" in results_page(known, "x", "x/README.md")
    # a gap that survives an empty scratchpad is called a shortcut, one that vanishes is not
    from aflab.reporting.sweep_section import mediation_text, miss_text

    sw = known["sweep"]
    sw["baseline"][org]["gap"] = 0.5
    sw["baseline_intervals"][org]["gap_empty_scratchpad"] = {"value": 0.4, "ci95": [0.3, 0.5], "n": 6, "method": "t"}
    assert "shortcut" in mediation_text(sw, org)[0] and "80% of the full gap" in mediation_text(sw, org)[0]
    sw["baseline_intervals"][org]["gap_empty_scratchpad"] = {"value": 0.0, "ci95": [-0.05, 0.05], "n": 6, "method": "t"}
    assert "the scratchpad carries the decision" in mediation_text(sw, org)[0]
    arm = next(iter(sw["table"][org]))
    audit = next(r["audit_monitor"] for r in sw["runs"] if r["organism"] == org and r["mitigation"] == arm)
    sw["table"][org][arm][f"miss_rate/{audit}"] = {"value": 0.1, "ci95": [0.05, 0.15], "n": 6, "method": "t"}
    sw["table"][org][arm][f"miss_given_train_miss/{audit}"] = {"value": 0.3, "ci95": [0.2, 0.4], "n": 6, "method": "t"}
    assert "ratio 3.0" in miss_text(sw, org)[0]


def test_the_shipped_mediation_page_equals_what_the_command_writes_for_its_summary():
    """The mediation comparison (`aflab run mediation`), shipped like the quickstart's results."""
    page = "docs/results/mediation/README.md"
    summary = json.loads((ROOT / "docs" / "results" / "mediation" / "summary.json").read_text())
    regenerate = f"aflab report docs/results/mediation --results-page {page}"
    assert (ROOT / page).read_text() == results_page(summary, "docs/results/mediation", page), f"run `{regenerate}`"
