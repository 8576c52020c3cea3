"""Every command in docs/tutorials/*.md runs, at smoke size.

In each fenced ``bash`` block, a line starting with ``sslkit run`` is run with
``--set trainer.max_steps=3`` (and the tutorial's other ``--set`` flags) into a temporary
folder (a recipe reading an image dataset from ``data.root`` gets tiny generated files there); a line starting with ``python`` runs with ``SSLKIT_SMOKE=1`` in the environment, which
tutorial scripts honour by shrinking their runs; ``sslkit`` lines of other sub-commands run
as they are. Every line runs in the test's own process (click's runner for ``sslkit``, runpy for
``python``), which skips the seconds a new interpreter spends importing torch; the CLI's own
process-level behaviour (exit codes, signals) is tested in test_run_folder.py and test_registry_cli.py.

A tutorial marked ``<!-- tutorial: one folder -->`` is a pipeline whose commands use each other's
outputs (a model folder, a run, an export): its commands run in order, in one temporary working
folder, with the repository's files (recipes, scripts) given by absolute path.
"""
from __future__ import annotations

import os
import re
import shlex

import pytest

from conftest import ROOT, recipe_smoke_overrides, run_line, smoke_args

pytestmark = pytest.mark.slow  # every test here trains or runs the CLI

TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("*.md"))
BLOCK = re.compile(r"```bash\n(.*?)```", re.S)


def commands(path):
    for block in BLOCK.findall(path.read_text()):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line.startswith(("sslkit ", "python ")):
                yield line


ONE_FOLDER = "<!-- tutorial: one folder -->"
PIPELINES = [p for p in TUTORIALS if ONE_FOLDER in p.read_text()]
CASES = [(p, c) for p in TUTORIALS if p not in PIPELINES for c in commands(p)]


def test_tutorials_have_commands():
    assert TUTORIALS, "docs/tutorials has no tutorial"
    for p in TUTORIALS:
        assert list(commands(p)), f"{p.name} has no runnable command"


def test_tutorial_commands_write_only_into_ignored_folders():
    """What a reader's copy of a command writes (a model folder, a run) lands under ``runs/``, which git
    ignores, so following a tutorial leaves the checkout clean."""
    ignored = [line.strip().rstrip("/") for line in (ROOT / ".gitignore").read_text().splitlines()]
    for path in TUTORIALS:
        for command in commands(path):
            argv = shlex.split(command)
            written = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--out", "--to")]
            if argv[:3] == ["python", "-m", "sslkit.encoders.hf_tiny"]:
                written.append(argv[-1])
            for folder in written:
                assert folder.split("/")[0] in ignored, f"{path.name}: `{command}` writes {folder}"


@pytest.mark.parametrize("path,command", CASES, ids=[f"{p.stem}:{i}" for i, (p, _) in enumerate(CASES)])
def test_tutorial_command(path, command, tmp_path, monkeypatch):
    argv = shlex.split(command)
    monkeypatch.setenv("SSLKIT_SMOKE", "1")
    monkeypatch.setenv("SSLKIT_OUT", str(tmp_path))
    monkeypatch.chdir(ROOT)  # tutorials name recipes and scripts relative to the repository root
    if argv[:2] == ["sslkit", "run"]:
        # redirect any --out into the temporary folder, keep its name so later commands can refer to it
        for i, a in enumerate(argv):
            if a == "--out":
                argv[i + 1] = str(tmp_path / os.path.basename(argv[i + 1]))
        if "--out" not in argv:
            argv += ["--out", str(tmp_path / "run")]
        # a recipe reading an image dataset from disk gets tiny generated files instead
        argv += smoke_args(**recipe_smoke_overrides(ROOT / argv[2], tmp_path / "data"))
    code, output = run_line(argv, monkeypatch)
    assert code == 0, f"{command}\n{output[-4000:]}"


@pytest.mark.parametrize("path", PIPELINES, ids=[p.stem for p in PIPELINES])
def test_tutorial_pipeline(path, tmp_path, monkeypatch):
    monkeypatch.setenv("SSLKIT_SMOKE", "1")
    monkeypatch.setenv("SSLKIT_OUT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    for command in commands(path):
        argv = [str(ROOT / a) if (ROOT / a).exists() and "/" in a else a for a in shlex.split(command)]
        if argv[:2] == ["sslkit", "run"]:
            argv += smoke_args()
        code, output = run_line(argv, monkeypatch)
        assert code == 0, f"{command}\n{output[-4000:]}"
