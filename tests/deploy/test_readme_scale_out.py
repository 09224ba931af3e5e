"""The README's "Scale out" commands run, each against no cluster (`--dry-run=client`)."""

from __future__ import annotations

import re
import shlex

from tests.deploy.chart import REPO, run_tool


def scale_out_commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("\n## Scale out\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block is not None
    return [line for line in block[1].replace("\\\n", " ").splitlines() if line.strip()]


def test_the_scale_out_commands_run_without_a_cluster() -> None:
    commands = scale_out_commands()
    assert [c.split()[0] for c in commands] == ["kubectl"] * 3 + ["helm"]
    for command in commands:
        tool, *args = shlex.split(command)
        extra = ["--dry-run=client"] + (["-o", "yaml"] if tool == "kubectl" else [])
        result = run_tool(tool, *args, *extra)
        assert result.returncode == 0, (command, result.stderr)
        if tool == "helm":
            assert "kind: HorizontalPodAutoscaler" in result.stdout
            assert "weavewave-jobs-db" in result.stdout
