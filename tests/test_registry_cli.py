"""Registries and the list/describe commands."""
from __future__ import annotations

import pytest

from sslkit.errors import ConfigError
from sslkit.registry import KINDS, find, register, registry

from conftest import RECIPES, sslkit_main


def test_core_parts_are_registered():
    expected = {
        "objectives": {"supervised"}, "encoders": {"mlp", "cnn", "resnet18", "transformer"},
        "datasets": {"digits", "moons", "docstrings", "pydoc_topics", "csv", "image_folder", "text_files"},
        "regularizers": {"l1", "l2"}, "optimizers": {"sgd", "adam", "adamw"},
        "schedulers": {"constant", "cosine", "linear"}, "views": {"identity", "weak", "strong"},
        "tokenizers": {"byte", "char"},
    }
    for kind, names in expected.items():
        assert names <= set(registry(kind).names()), kind


def test_params_come_from_keyword_only_signature():
    entry = registry("encoders").get("mlp")
    assert "info" not in entry.params and entry.params["hidden"].default == (256, 256)
    opt = registry("optimizers").get("adamw")
    assert "params" not in opt.params and "lr" in opt.params


def test_unknown_name_suggests():
    with pytest.raises(ConfigError, match="did you mean 'transformer'"):
        registry("encoders").get("transfomer", "encoder.name")


def test_user_parts_register_with_a_decorator():
    @register("regularizers", "test_zero_norm")
    class Zero:
        """Test part."""

        def __init__(self, *, scale: float = 2.0):
            self.scale = scale

    assert find("test_zero_norm")[0].params["scale"].default == 2.0
    with pytest.raises(ValueError):
        register("regularizers", "l2")(Zero)  # a name cannot be taken twice


def test_cli_list_and_describe():
    out = sslkit_main("list").stdout
    for kind in KINDS:
        assert f"{kind}:" in out
    out = sslkit_main("list", "encoders").stdout
    assert "mlp" in out and "objectives:" not in out
    proc = sslkit_main("describe", "mlp")
    assert proc.returncode == 0
    assert "hidden: list = [256, 256]" in proc.stdout and "activation" in proc.stdout and "Flatten" in proc.stdout
    proc = sslkit_main("describe", "optimizers/adamw")
    assert "lr:" in proc.stdout and "weight_decay" in proc.stdout
    proc = sslkit_main("validate", str(RECIPES / "supervised_digits.yaml"))
    assert proc.returncode == 0 and "ok" in proc.stdout


def test_first_sentence_is_whole_and_plain():
    from sslkit.registry import first_sentence

    doc = ("Targets from ``R(z, X)``, see :func:`~sslkit.relations.propagation.affinity` and *Zhou et al.*;\n"
           "e.g. a k-NN graph. More here.\n\nSecond paragraph.")
    assert first_sentence(doc) == "Targets from R(z, X), see affinity and Zhou et al.; e.g. a k-NN graph."
    assert first_sentence("The objective with a head ``f``::\n\n    L = ...") == "The objective with a head f:"
    for kind in KINDS:
        for name in registry(kind).names():
            s = registry(kind).get(name).summary
            assert "``" not in s and ":func:" not in s and ":class:" not in s and "\n" not in s, (kind, name, s)


def test_list_and_validate_in_process():
    from click.testing import CliRunner

    from sslkit.cli import main

    out = CliRunner().invoke(main, ["list", "relations"]).output
    assert "propagation" in out and "a k-NN graph (affinity, knn_graph) is built over both" in out
    assert "p.\n" in out.split("propagation", 1)[1].split("\n", 1)[0] + "\n", "the whole first sentence is shown"
    res = CliRunner().invoke(main, ["validate", str(RECIPES / "supervised_digits.yaml"),
                                    "--set", "trainer.max_steps=5", "--set", "encoder.hidden=[8]"])
    assert res.exit_code == 0, res.output
    assert "data: digits, 1347 training rows (1347 labeled), 450 test rows, 10 classes" in res.output
    # Linear(64, 8) in the encoder, Linear(8, 10) in the supervised head
    assert f"encoder: mlp, {64 * 8 + 8} parameters ({64 * 8 + 8 + 8 * 10 + 10} with the objectives' heads)" in res.output
    assert "steps: 22 per epoch (batch 64) x 30 epochs = 660, capped at 5 by trainer.max_steps" in res.output


@pytest.mark.slow
def test_the_sslkit_command_imports_modules_from_the_working_folder(tmp_path):
    """Tutorial 10's command as printed, through the installed ``sslkit`` script (whose ``sys.path`` does not
    start at the working folder, unlike ``python -m sslkit``)."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    script = shutil.which("sslkit", path=str(Path(sys.executable).parent)) or shutil.which("sslkit")
    assert script, "the sslkit console script is installed with the package"
    proc = subprocess.run([script, "run", "recipes/supervised_digits.yaml", "--set",
                           "imports=[docs.tutorials.confusion_reporter]", "--set",
                           "reporters=[curves, {name: confusion, normalize: true}]", "--set", "trainer.max_steps=2",
                           "--set", "encoder.hidden=[16]", "--set", "trainer.progress=false",
                           "--out", str(tmp_path / "run")],
                          cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "balanced_accuracy" in (tmp_path / "run" / "metrics.json").read_text()


@pytest.mark.slow
def test_the_readme_extending_example_runs_as_printed(tmp_path, monkeypatch):
    """The README's objective, saved as my_objectives.py, and its command, from that folder."""
    import re
    import shlex
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## Extending"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    command = re.search(r"```bash\n(.*?)```", section, re.S).group(1).replace("\\\n", " ")
    (tmp_path / "my_objectives.py").write_text(code)
    monkeypatch.chdir(tmp_path)
    argv = shlex.split(command)
    assert argv[:2] == ["sslkit", "run"]
    recipe = str(RECIPES / Path(argv[2]).name)
    proc = sslkit_main("run", recipe, *argv[3:], "--set", "trainer.max_steps=3", "--set", "trainer.progress=false",
                       "--out", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr
    assert "test_accuracy" in (tmp_path / "run" / "metrics.json").read_text()


def test_an_objective_without_a_method_its_base_needs_is_refused_at_build():
    from sslkit.objectives import Classifier, Output
    from sslkit.runner import validate

    @register("objectives", "test_no_logits")
    class NoLogits(Classifier):
        """A classifier that forgot logits."""

        def __init__(self, ctx):
            super().__init__()

        def forward(self, batch, encoder):
            return Output(encoder(batch["labeled"]["x"]).sum())

    with pytest.raises(ConfigError, match=r"objectives\[0\]\.name: objective 'test_no_logits' .* does not define "
                                          r"logits, which its base class needs"):
        validate({"data": {"name": "digits"}, "objectives": [{"name": "test_no_logits"}]})


def test_describe_a_recipe_section_lists_its_keys():
    """`sslkit describe trainer` (and recipe, data, encoder, objective, regularizer): each key with its type,
    default and the comment beside it."""
    proc = sslkit_main("describe", "trainer")
    assert proc.returncode == 0
    assert "  sync_batchnorm: boolean = false  # under torchrun" in proc.stdout
    assert "  batch_size: integer >= 1 = 64  # global batch, split across DDP ranks" in proc.stdout
    assert "init_from: string or null = null" in sslkit_main("describe", "encoder").stdout
    assert sslkit_main("describe", "trainr").returncode == 2


def test_describe_a_part_of_an_imported_module(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "described_plugin.py").write_text(
        "from sslkit.registry import register\n\n\n@register('views', 'described_view')\nclass DescribedView:\n"
        "    \"\"\"A view of a plugin.\"\"\"\n\n    def __init__(self, info, *, strength: float = 0.5):\n"
        "        self.strength = strength\n\n    def __call__(self, x):\n        return x\n")
    proc = sslkit_main("describe", "described_view", "--import", "described_plugin")
    assert proc.returncode == 0 and "strength: number = 0.5" in proc.stdout and "A view of a plugin." in proc.stdout
    missing = sslkit_main("describe", "x", "--import", "no_such_plugin_module")
    assert missing.returncode == 2 and "--import[0]: cannot import module 'no_such_plugin_module'" in missing.stderr
