"""The README's first screen and CI must agree: CI runs exactly the README's test command."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_first_block_has_the_two_setup_commands_and_ci_runs_the_second():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", readme, re.S)
    assert block and readme.index(block.group(0)) < 1500, "the commands belong on the first screen"
    commands = [c for c in block.group(1).strip().splitlines() if c.strip()]
    assert len(commands) == 2
    assert commands[0].rstrip().endswith("aflab run") and "pytest" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1] in ci.splitlines()
