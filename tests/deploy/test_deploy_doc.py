"""docs/deploy.md's "Scale out" commands run, each against no cluster (`--dry-run=client`)."""

from __future__ import annotations

import re
import shlex

import yaml

from tests.deploy.chart import CHART, REPO, run_tool


def scale_out_section() -> str:
    page = (REPO / "docs" / "deploy.md").read_text()
    return page.split("\n## Scale out: Kubernetes (Helm)\n", 1)[1].split("\n## ", 1)[0]


def scale_out_commands() -> list[str]:
    section = scale_out_section()
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


def test_the_more_composers_example_is_the_songs_profile() -> None:
    section = scale_out_section()
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert block is not None
    example = yaml.safe_load(block[1])["moreComposers"]
    profile = yaml.safe_load((CHART / "ci" / "songs-values.yaml").read_text())["moreComposers"]
    assert example == profile[: len(example)]  # what the chart's tests render
