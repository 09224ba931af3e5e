"""The README's "Scale out" commands run, each against no cluster (`--dry-run=client`)."""

from __future__ import annotations

import re
import shlex
import subprocess

from tests.deploy.chart import REPO, TOOLS, helm


def scale_out_commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("\n## Scale out\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block is not None
    return [line for line in block[1].replace("\\\n", " ").splitlines() if line.strip()]


def test_the_scale_out_commands_run_without_a_cluster() -> None:
    helm()  # fetches kubectl with it
    commands = scale_out_commands()
    assert [c.split()[0] for c in commands] == ["kubectl"] * 3 + ["helm"]
    for command in commands:
        words = shlex.split(command)
        tool, args = words[0], words[1:]
        binary = TOOLS / tool / tool
        extra = ["--dry-run=client"] + (["-o", "yaml"] if tool == "kubectl" else [])
        result = subprocess.run(
            [str(binary), *args, *extra],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={"KUBECONFIG": "/nonexistent", "HELM_CACHE_HOME": str(REPO / ".cache" / "helm"),
                 "HELM_CONFIG_HOME": str(REPO / ".cache" / "helm"), "PATH": "/usr/bin:/bin"},
            timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, (command, result.stderr)
        if tool == "helm":
            assert "kind: HorizontalPodAutoscaler" in result.stdout
            assert "weavewave-jobs-db" in result.stdout
