"""A run stopped part-way and resumed from its checkpoint ends exactly where an uninterrupted run does
(on CPU), for objectives with state beyond their weights: PPO's rollout buffer and minibatch queue (stopped
mid-rollout), a GAN's two players with an EMA generator and a lazy penalty, and pseudo-labels from an
EMA teacher. The supervised case with a real SIGTERM is in test_trainer.py."""
from __future__ import annotations

import sslkit
from sslkit import checkpoint

from conftest import RECIPES

FAST = {"trainer.progress": False, "trainer.eval_every": 100000, "trainer.checkpoint_every": 100000,
        "trainer.threads": 1, "reporters": []}

PPO = {
    "seed": 0,
    "data": {"name": "rlhf_toy", "tokenizer": "byte", "max_length": 24, "prompts": 64, "test_prompts": 8,
             "layout": "prompts"},
    "encoder": {"name": "gpt", "dim": 16, "depth": 1, "heads": 2, "max_length": 24},
    # the rule reward and a snapshot reference: one PPO stage with no earlier stage to load
    "objectives": [{"name": "ppo", "reward_model": None, "reward_fn": "sslkit.data.rlhf_task:vowel_reward",
                    "reference": None, "kl_coef": 0.5, "kl_target": 2.0, "kl_horizon": 16, "ppo_epochs": 2,
                    "minibatch_size": 4, "response_tokens": 6, "eval_prompts": 8}],
    "trainer": {"batch_size": 8, "log_every": 1, "optimizer": {"name": "adamw", "lr": 0.003}},
}


def stopped_and_resumed(recipe, total: int, stop: int, tmp_path, **overrides) -> tuple:
    """Final metrics of an uninterrupted run of ``total`` steps and of one stopped after ``stop`` steps
    (``max_steps``) and resumed from its checkpoint up to ``total``, and the checkpoint it resumed from.
    The learning-rate schedule must not depend on the total steps (a constant one), since the stopped
    run was configured with fewer."""
    over = {**FAST, **overrides}
    whole = sslkit.run(recipe, overrides={**over, "trainer.max_steps": total}, out=tmp_path / "whole").metrics
    sslkit.run(recipe, overrides={**over, "trainer.max_steps": stop}, out=tmp_path / "part")
    state = checkpoint.load(tmp_path / "part" / "checkpoints" / "last.pt")
    assert state["step"] == stop
    resumed = sslkit.run(resume=tmp_path / "part", overrides={"trainer.max_steps": total}).metrics
    return whole, resumed, state


def same(whole: dict, resumed: dict, keys) -> None:
    for key in keys:
        assert resumed[key] == whole[key], key


def test_ppo_resumed_mid_rollout_matches(tmp_path):
    """8 prompts, minibatches of 4, 2 epochs: 4 updates per rollout; stopped after 6 steps, i.e. with two
    minibatches of the second rollout still queued (they are in the checkpoint)."""
    whole, resumed, state = stopped_and_resumed(PPO, 12, 6, tmp_path)
    ppo = state["model"]["objectives.0._extra_state"]
    assert len(ppo["queue"]) == 2 and ppo["buffer"]["seq"].shape[0] == 8
    same(whole, resumed, ["train_loss", "test_reward", "test_kl", "final_kl_coef"])
    # 6 updates used 2 rollouts of 8 prompts: the stream was drawn twice, not 6 times (none dropped)
    (stream,) = state["streams"].values()
    assert (stream["epoch"], stream["pos"]) == (0, 16)


def test_gan_with_ema_generator_and_lazy_penalty_resumed_matches(tmp_path):
    whole, resumed, _ = stopped_and_resumed(RECIPES / "gan_digits.yaml", 6, 3, tmp_path,
                                            **{"encoder.hidden": [32], "objectives[0].generator_hidden": [32],
                                               "objectives[0].penalty_every": 2, "trainer.batch_size": 32,
                                               "trainer.log_every": 1})
    same(whole, resumed, ["train_loss", "test_d_real", "test_d_fake"])


def test_pseudo_labels_from_an_ema_teacher_resumed_match(tmp_path):
    whole, resumed, _ = stopped_and_resumed(RECIPES / "semi_digits_fixmatch.yaml", 8, 4, tmp_path,
                                            **{"encoder.channels": [8, 16], "objectives[0].relation": "teacher",
                                               "trainer.scheduler": {"name": "constant"},
                                               "objectives[0].unlabeled_ratio": 2, "trainer.batch_size": 16,
                                               "trainer.log_every": 1})
    same(whole, resumed, ["train_loss", "test_accuracy", "mean_mask_rate"])


def test_pseudo_labels_from_a_propagation_graph_on_an_ema_teacher_resumed_match(tmp_path):
    whole, resumed, state = stopped_and_resumed(
        RECIPES / "semi_digits_fixmatch.yaml", 8, 4, tmp_path,
        **{"encoder.channels": [8, 16], "trainer.scheduler": {"name": "constant"},
           "objectives[0].relation": {"name": "propagation", "k": 3, "teacher_decay": 0.5},
           "objectives[0].unlabeled_ratio": 2, "trainer.batch_size": 16, "trainer.log_every": 1})
    teacher = {k: v for k, v in state["model"].items() if ".relation.teacher." in k}
    assert teacher  # the teacher's weights are in the checkpoint, and they are not the student's
    assert any(not state["model"][k.replace("objectives.0.relation.teacher.", "encoder.")].equal(v)
               for k, v in teacher.items() if v.is_floating_point())
    same(whole, resumed, ["train_loss", "test_accuracy", "mean_mask_rate", "pseudo_label_accuracy"])


def test_a_run_with_a_weight_average_resumed_matches(tmp_path):
    """trainer.ema_decay: the average is in the checkpoint, so the resumed run's metrics (evaluated with
    the average) and its final raw and averaged weights equal the uninterrupted run's."""
    whole, resumed, state = stopped_and_resumed(RECIPES / "supervised_digits.yaml", 8, 4, tmp_path,
                                                **{"encoder.hidden": [16], "trainer.batch_size": 32,
                                                   "trainer.scheduler": {"name": "constant"},
                                                   "trainer.ema_decay": 0.9, "trainer.log_every": 1})
    assert set(state["ema_model"]) == {k for k in state["model"] if not k.endswith(("running_mean", "running_var",
                                                                                     "num_batches_tracked"))}
    same(whole, resumed, ["train_loss", "test_accuracy", "ema_decay"])
    ends = [checkpoint.load(tmp_path / run / "checkpoints" / "last.pt") for run in ("whole", "part")]
    for key in ("model", "ema_model"):
        assert ends[0][key].keys() == ends[1][key].keys()
        for name, w in ends[0][key].items():
            assert ends[1][key][name].equal(w), (key, name)


def test_resume_without_the_checkpoint_is_refused_naming_the_folder(tmp_path):
    """The checkpoint of a run that wrote one was deleted: exit 2, not a silent new run from step 0."""
    from conftest import sslkit_main

    run = tmp_path / "run"
    first = sslkit_main("run", RECIPES / "supervised_digits.yaml", "--set", "trainer.max_steps=2", "--set",
                        "encoder.hidden=[16]", "--set", "trainer.progress=false", "--out", run)
    assert first.returncode == 0, first.stderr
    (run / "checkpoints" / "last.pt").unlink()
    proc = sslkit_main("run", "--resume", run)
    assert proc.returncode == 2, proc.stderr
    assert f"--resume: {run} has no checkpoint to continue from" in proc.stderr
    assert (run / "metrics.json").is_file()  # the finished run's record is left as it was
