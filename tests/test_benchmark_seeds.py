"""The seed protocol shared by benchmarks/semi.py, weak.py, contrastive.py and generative.py."""
import argparse
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from seeds import SeedTable, add_seed_args, parse_seeds  # noqa: E402

from conftest import run_line  # noqa: E402


def test_parse_seeds_ranges_and_lists():
    assert parse_seeds("0-9") == list(range(10))
    assert parse_seeds("3,1,1") == [1, 3]
    assert parse_seeds("0-2,7") == [0, 1, 2, 7]
    with pytest.raises(argparse.ArgumentTypeError):
        parse_seeds(",")


def test_held_out_verdict_counts_a_tie_with_the_target_as_met():
    """The text target is another row's held-out mean + 0.03: an exact tie, whose float sums differ in the
    last bits, is met; a shortfall in the fourth decimal is not."""
    from seeds import held_out_verdict

    t = SeedTable("acc", ours=["ours"])
    for seed, (ours, base) in enumerate([(0.5, 0.5)] * 3 + [(0.507, 0.477), (0.526, 0.496), (0.519, 0.489)]):
        t.add(seed, "ours", ours)
        t.add(seed, "base", base)
    target = t.summary("base")["held_out_mean"] + 0.03
    assert held_out_verdict(t, "ours", target).endswith(f"vs target {target:.4f}: met")
    assert held_out_verdict(t, "ours", target + 1e-4).endswith("MISSED")


def test_default_seeds_and_threads():
    args = add_seed_args(argparse.ArgumentParser()).parse_args([])
    assert args.seeds == list(range(10)) and args.threads == 1
    assert add_seed_args(argparse.ArgumentParser()).parse_args(["--seeds", "0"]).seeds == [0]


def test_table_splits_tuning_from_held_out_and_counts_wins():
    t = SeedTable("acc", ours=["ours"])
    for seed, (ours, base) in enumerate([(0.9, 0.1), (0.9, 0.1), (0.9, 0.1),  # tuning: never in the headline
                                         (0.5, 0.4), (0.5, 0.6), (0.7, 0.6)]):
        t.add(seed, "ours", ours)
        t.add(seed, "base", base)
    s = t.summary("ours")
    assert s["tuning_mean"] == pytest.approx(0.9)
    assert s["held_out_mean"] == pytest.approx(0.5667, abs=1e-4)
    assert (s["wins"], s["held_out_seeds"]) == (2, 3)
    assert (t.summary("base")["wins"], t.summary("base")["held_out_seeds"]) == (2, 3)
    md = t.markdown()
    assert "| 4 | held-out | 0.5000 | 0.6000 |" in md
    assert "beats every baseline on 2 of 3" in md


def test_lower_is_better_table():
    t = SeedTable("fd", ours=["ours"], higher_is_better=False)
    t.add(5, "ours", 1.0)
    t.add(5, "gauss", 2.0)
    assert t.wins("ours", ["gauss"]) == (1, 1)


def test_semi_benchmark_quick_mode(tmp_path, monkeypatch):
    """``--seeds 0`` at smoke size: one seed, every baseline beside sslkit, threads printed."""
    monkeypatch.setenv("SSLKIT_SMOKE", "1")
    monkeypatch.setenv("SSLKIT_OUT", str(tmp_path))
    code, output = run_line(["python", str(ROOT / "benchmarks" / "semi.py"), "--seeds", "0", "--datasets", "moons"],
                            monkeypatch)
    assert code == 0, output[-4000:]
    for name in ("SVC (labeled rows)", "SelfTraining(SVC)", "LabelSpreading(knn)", "LabelSpreading(rbf)",
                 "sslkit (semi_moons.yaml)", "torch threads 1", "| 0 | tuning |"):
        assert name in output


def test_generative_reuse_reads_only_finished_runs(tmp_path, monkeypatch):
    """benchmarks/generative.py --reuse: a finished run folder's metrics are read; an interrupted one is
    trained again (so seeds run by several processes can be tabled together, never half-trained)."""
    import json

    import generative

    trained = []
    monkeypatch.setattr(generative, "run", lambda recipe, out, **over: (
        trained.append((recipe, out, over)) or type("R", (), {"metrics": {"classifier_score": 1.0}})(), 0.0))
    done, cut = tmp_path / "vae_seed3", tmp_path / "vae_seed4"
    for folder, status in ((done, "finished"), (cut, "interrupted")):
        folder.mkdir()
        (folder / "metrics.json").write_text(json.dumps({"status": status, "classifier_score": 7.5}))
    assert generative.seed_run("vae_digits.yaml", done, 3, reuse=True)["classifier_score"] == 7.5
    assert not trained
    assert generative.seed_run("vae_digits.yaml", cut, 4, reuse=True) == {"classifier_score": 1.0}
    assert generative.seed_run("vae_digits.yaml", done, 3, reuse=False) == {"classifier_score": 1.0}
    assert [(o.name, over) for _, o, over in trained] == [("vae_seed4", {"seed": 4}), ("vae_seed3", {"seed": 3})]


@pytest.mark.slow
def test_generative_resample_reproduces_the_run_and_tables_temperatures(tmp_path, monkeypatch, capsys):
    """benchmarks/generative.py --temperatures: a finished GAN run re-sampled at its own temperature gives
    its own metrics.json scores (same samples, same scorer), other temperatures other scores; the table
    counts each t's wins against the run's Gaussian, and an unfinished run is refused rather than trained."""
    import generative

    from sslkit import config

    monkeypatch.setattr(generative, "SMOKE", True)
    res, _ = generative.run("gan_digits.yaml", tmp_path / "gan_seed0", seed=0,
                            reporters=[{"name": "sample_quality"}])  # only the scores: the test's cost
    t0 = config.load_recipe(ROOT / "recipes" / "gan_digits.yaml")["objectives"][0]["sample_temperature"]
    again = generative.resample(res.run_dir, [t0, 1.0])
    for key in ("classifier_score", "frechet_distance", "code_class_agreement"):
        assert again[t0][key] == pytest.approx(res.metrics[key], rel=1e-6)
    assert again[1.0]["frechet_distance"] != pytest.approx(again[t0]["frechet_distance"], rel=1e-6)
    generative.gan_temperature_table(tmp_path, [0], [t0, 1.0])
    out = capsys.readouterr().out
    assert "| 0 | tuning |" in out and f"t = {t0:g}: both scores better than the Gaussian on" in out
    assert "smallest margin" in out
    # margins in standard deviations of the difference (0.3 and 0.4 combine to 0.5), lower-is-better flipped
    m, ref = {"fd": 1.0, "fd_std": 0.3}, {"gaussian_fd": 1.5, "gaussian_fd_std": 0.4}
    assert generative.margin(m, ref, "fd", -1) == pytest.approx(1.0)
    assert generative.margin(m, ref, "fd", 1) == pytest.approx(-1.0)
    with pytest.raises(SystemExit, match="not finished"):
        generative.gan_temperature_table(tmp_path, [3], [t0])



@pytest.mark.slow
def test_text_compose_benchmark_tables_rows_and_reads_finished_runs(tmp_path, monkeypatch):
    """benchmarks/lm.py --compose-seeds at smoke size: the mlm fine-tune and the composed recipe start from the
    seed's one pretraining; a second call reads the finished run folders instead of training again."""
    import lm

    monkeypatch.setenv("SSLKIT_SMOKE", "1")
    first = lm.compose([0], [2], 1, tmp_path, lm.PLAIN)[2].scores
    composed = next(name for key, name, *_ in lm.COMPOSE if key == "composed")
    plain = {name for key, name, *_ in lm.COMPOSE if key in ("ft", "pl_mlm80", "ls_mlm", "composed")}
    assert len(plain) == 4 and set(first) == plain | {lm.TFIDF, lm.SPREAD}
    assert 0.0 <= first[lm.TFIDF][0] <= 1.0 and 0.0 <= first[lm.SPREAD][0] <= 1.0
    assert (tmp_path / "s0" / "pretrain" / "metrics.json").is_file()
    monkeypatch.setattr(lm.sslkit, "run", lambda *a, **k: pytest.fail("a finished run was trained again"))
    assert lm.compose([0], [2], 1, tmp_path, lm.PLAIN)[2].scores == first
    # --rows: the rows named, and the comparison (mlm fine-tune, the recipe) always
    only = lm.compose([0], [2], 1, tmp_path, ["composed"])[2].scores
    assert set(only) == {composed, next(name for key, name, *_ in lm.COMPOSE if key == "ft"), lm.TFIDF, lm.SPREAD}
    assert only[composed] == first[composed]


def test_text_compose_ablation_rows_are_the_forms_they_name():
    """The ablation's earlier recipe forms are the recipe's pseudo_label with the row's relation, alone or with
    the masked-LM loss kept on beside it (and nothing else changes); the recipe's row is the recipe."""
    import lm
    from sslkit import config
    from sslkit.stages import resolve_stages

    rows = {key: extra for key, _, _, _, extra in lm.COMPOSE}
    recipe = config.load_yaml(lm.SEMI)
    assert [o["name"] for o in recipe["stages"]["finetune"]["objectives"]] == ["pseudo_label"]
    recipe_form = resolve_stages(recipe)["finetune"][0]["objectives"][0]
    for key, threshold in (("pl90", 0.9), ("pl95", 0.95), ("pl80", 0.8)):
        stage = resolve_stages(recipe, rows[key])["finetune"][0]
        (objective,) = stage["objectives"]
        assert (objective["relation"]["name"], objective["relation"]["threshold"]) == ("confidence", threshold)
        assert {k: v for k, v in objective.items() if k != "relation"} == \
            {k: v for k, v in recipe_form.items() if k != "relation"}
    for key, threshold in (("pl_mlm95", 0.95), ("pl_mlm80", 0.8)):  # earlier forms with the masked-LM loss kept on
        with_mlm = resolve_stages(recipe, rows[key])["finetune"][0]["objectives"]
        assert [o["name"] for o in with_mlm] == ["pseudo_label", "mlm"]
        assert (with_mlm[0]["relation"]["name"], with_mlm[0]["relation"]["threshold"]) == ("confidence", threshold)
    assert rows["composed"] == {} and recipe_form["relation"]["name"] == "label_spreading"
    for key in ("ls_mlm", "ls_mlm_scratch"):
        pl, mlm = resolve_stages(recipe, rows[key])["finetune"][0]["objectives"]
        assert pl == recipe_form and mlm["name"] == "mlm"
