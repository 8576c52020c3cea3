"""The trainer end to end: accuracy, run folder, checkpoints, non-finite losses, resume, DDP."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import sslkit
from sslkit import checkpoint
from sslkit.errors import SSLKitError, TrainingError
from sslkit.objectives.supervised import Supervised
from sslkit.registry import register

from conftest import RECIPES, ROOT, sslkit_main

RECIPE = RECIPES / "supervised_digits.yaml"
TINY = {"encoder.hidden": [64], "trainer.progress": False, "trainer.batch_size": 32}


@pytest.mark.slow
def test_run_writes_the_run_folder(tmp_path):
    res = sslkit.run(RECIPE, overrides={**TINY, "trainer.epochs": 3}, out=tmp_path / "run")
    d = res.run_dir
    for name in ("config.yaml", "metrics.jsonl", "metrics.json", "checkpoints/last.pt", "curves.png"):
        assert (d / name).is_file(), name
    final = json.loads((d / "metrics.json").read_text())
    assert final["test_accuracy"] == res.metrics["test_accuracy"] > 0.8
    lines = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
    assert any("loss" in r for r in lines) and any("test_accuracy" in r for r in lines)
    # the resolved recipe re-runs as is
    assert sslkit.validate(d / "config.yaml")["encoder"]["hidden"] == [64]


@pytest.mark.slow
def test_seed_makes_runs_deterministic(tmp_path):
    a = sslkit.run(RECIPE, overrides={**TINY, "trainer.max_steps": 30}, out=tmp_path / "a").metrics
    b = sslkit.run(RECIPE, overrides={**TINY, "trainer.max_steps": 30}, out=tmp_path / "b").metrics
    c = sslkit.run(RECIPE, overrides={**TINY, "trainer.max_steps": 30, "seed": 1}, out=tmp_path / "c").metrics
    assert a["train_loss"] == b["train_loss"] and a["test_accuracy"] == b["test_accuracy"]
    assert a["train_loss"] != c["train_loss"]


@pytest.mark.slow
def test_supervised_digits_recipe_reaches_target(tmp_path):
    """The shipped default recipe at full size (a few seconds on CPU): >= 96 % test accuracy."""
    res = sslkit.run(RECIPE, overrides={"trainer.progress": False}, out=tmp_path / "full")
    assert res.metrics["test_accuracy"] >= 0.96


@pytest.mark.slow
def test_regularizer_adds_weighted_penalty(tmp_path):
    plain = sslkit.run(RECIPE, overrides={**TINY, "trainer.max_steps": 1, "trainer.log_every": 1}, out=tmp_path / "a")
    reg = sslkit.run(RECIPE, overrides={**TINY, "trainer.max_steps": 1, "trainer.log_every": 1,
                                        "regularizer": {"name": "l2", "weight": 0.01}}, out=tmp_path / "b")
    rec_a = json.loads((plain.run_dir / "metrics.jsonl").read_text().splitlines()[0])
    rec_b = json.loads((reg.run_dir / "metrics.jsonl").read_text().splitlines()[0])
    # same initial weights and batch: total = CE + 0.01 * ||theta||^2, and the CE term is unchanged
    assert rec_b["supervised/loss"] == pytest.approx(rec_a["supervised/loss"], rel=1e-6)
    assert rec_b["loss"] == pytest.approx(rec_b["supervised/loss"] + 0.01 * rec_b["regularizer/loss"], rel=1e-6)
    assert rec_b["regularizer/loss"] > 0


def test_l2_and_l1_match_hand_computation():
    from sslkit.regularizers.norms import L1, L2

    params = [torch.tensor([1.0, -2.0]), torch.tensor([[3.0]])]
    assert L2()(params).item() == pytest.approx(1 + 4 + 9)
    assert L1()(params).item() == pytest.approx(1 + 2 + 3)


def test_atomic_checkpoint_and_corrupt_file(tmp_path):
    path = tmp_path / "ck.pt"
    checkpoint.save({"model": {"w": torch.ones(2)}, "step": 3}, path)
    assert checkpoint.load(path)["step"] == 3
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(SSLKitError, match="cannot read checkpoint"):
        checkpoint.load(path)


def test_checkpoint_refuses_pickled_code(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "payload": Supervised}, path)  # a class, which weights_only refuses
    with pytest.raises(SSLKitError, match="cannot read checkpoint"):
        checkpoint.load(path)


@pytest.mark.slow
def test_resume_from_corrupt_checkpoint_is_a_clear_error(tmp_path):
    res = sslkit.run(RECIPE, overrides={**TINY, "trainer.max_steps": 5}, out=tmp_path / "r")
    (res.run_dir / "checkpoints" / "last.pt").write_bytes(b"\x00garbage")
    proc = sslkit_main("run", "--resume", res.run_dir)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    line = proc.stderr.strip()
    assert line == (f"error: cannot read checkpoint {res.run_dir / 'checkpoints' / 'last.pt'}: the file is "
                    f"truncated or corrupt, or it is not an sslkit checkpoint.")


@register("objectives", "test_nan_after")
class NanAfter(Supervised):
    """Test helper: supervised loss that turns NaN after ``after`` steps."""

    def __init__(self, ctx, *, after: int = 5):
        super().__init__(ctx)
        self.after, self.calls = after, 0

    def forward(self, batch, encoder):
        out = super().forward(batch, encoder)
        self.calls += 1
        return out._replace(loss=out.loss * float("nan")) if self.calls > self.after else out


@pytest.mark.slow
def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    overrides = {**TINY, "objectives": [{"name": "supervised"}, {"name": "test_nan_after", "after": 12}],
                 "trainer.max_steps": 50, "trainer.checkpoint_every": 5}
    with pytest.raises(TrainingError, match=r"objective 'test_nan_after' at step 13"):
        sslkit.run(RECIPE, overrides=overrides, out=tmp_path / "r")
    state = checkpoint.load(tmp_path / "r" / "checkpoints" / "last.pt")
    assert state["step"] == 10
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    # before the first checkpoint, the message points at none
    overrides["trainer.checkpoint_every"] = 20
    with pytest.raises(TrainingError, match=r"at step 13 .*No checkpoint was written before it\.$"):
        sslkit.run(RECIPE, overrides=overrides, out=tmp_path / "early")
    assert not (tmp_path / "early" / "checkpoints").exists()


def _wait_for(path, timeout=120):
    t = time.time()
    while not path.exists():
        if time.time() - t > timeout:
            raise TimeoutError(path)
        time.sleep(0.05)


@pytest.mark.slow
def test_sigterm_saves_and_resume_matches_uninterrupted_run(tmp_path):
    args = ["--set", "encoder.hidden=[64]", "--set", "trainer.progress=false", "--set", "trainer.max_steps=600",
            "--set", "trainer.checkpoint_every=25", "--set", "trainer.eval_every=100000"]
    ref = sslkit.run(RECIPE, overrides={"encoder.hidden": [64], "trainer.progress": False, "trainer.max_steps": 600,
                                        "trainer.checkpoint_every": 25, "trainer.eval_every": 100000},
                     out=tmp_path / "ref").metrics
    run_dir = tmp_path / "interrupted"
    proc = subprocess.Popen([sys.executable, "-m", "sslkit", "run", str(RECIPE), *args, "--out", str(run_dir)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(run_dir / "checkpoints" / "last.pt")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "--resume" in err and "Traceback" not in err
    stopped_at = checkpoint.load(run_dir / "checkpoints" / "last.pt")["step"]
    assert 0 < stopped_at < 600, "the run must be stopped mid-way for this test to mean anything"
    proc = sslkit_main("run", "--resume", run_dir)
    assert proc.returncode == 0, proc.stderr
    resumed = json.loads((run_dir / "metrics.json").read_text())
    assert resumed["step"] == 600
    assert resumed["train_loss"] == ref["train_loss"]
    assert resumed["test_accuracy"] == ref["test_accuracy"]


@pytest.mark.slow
@pytest.mark.parametrize("ema", [0.9])  # without an average: tests/test_distributed.py's supervised family
def test_ddp_two_processes_agree_with_one(tmp_path, ema):
    """With ``trainer.ema_decay``: every rank keeps the same average, rank 0 evaluates and saves it."""
    # threads pinned: `auto` picks 1 or 2 by the machine's load, and the thread count changes float sums
    over = ["--set", "encoder.hidden=[64]", "--set", "trainer.progress=false", "--set", "trainer.max_steps=40",
            "--set", "trainer.batch_size=64", "--set", "trainer.log_every=40", "--set", "trainer.threads=1"]
    over += ["--set", f"trainer.ema_decay={ema}"] if ema else []
    single = sslkit_main("run", RECIPE, *over, "--out", tmp_path / "single")
    assert single.returncode == 0, single.stderr
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "sslkit", "run", str(RECIPE), *over, "--out", str(tmp_path / "ddp")]
    ddp = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    if ddp.returncode != 0 and "terminate called without an active exception" in ddp.stderr:
        # a rare rank abort at teardown (SIGABRT from a C++ thread's destructor), seen in full-suite runs and
        # never reproduced on demand; distributed.shutdown frees the finished run before destroying the group,
        # its likely cause. One retry keeps that abort apart from a wrong result, which still fails below
        ddp = subprocess.run([*command, "--overwrite"], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    a = json.loads((tmp_path / "single" / "metrics.json").read_text())
    b = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert b["step"] == a["step"] == 40
    # the two ranks together see exactly the single process's batches: same loss up to float rounding
    assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-3, abs=1e-4)
    assert abs(b["test_accuracy"] - a["test_accuracy"]) <= 0.01
    if ema:
        assert a["ema_decay"] == b["ema_decay"] == ema
        averages = [checkpoint.load(tmp_path / r / "checkpoints" / "last.pt")["ema_model"] for r in ("single", "ddp")]
        for name, w in averages[0].items():
            torch.testing.assert_close(averages[1][name], w, rtol=1e-3, atol=1e-4, msg=name)


def test_shutdown_frees_the_finished_run_before_destroying_the_process_group(monkeypatch):
    """A run's Trainer (and its DDP model, which holds the process group) sits in reference cycles: shutdown
    collects them while the group still exists, never after it is destroyed."""
    import gc
    import weakref

    from sslkit import distributed

    class Run:  # a cycle, as the Trainer makes
        def __init__(self):
            self.me = self

    run = Run()
    alive = weakref.ref(run)
    del run
    seen = []
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(distributed, "_owned", True)  # a group this run's init() made
    monkeypatch.setattr(distributed.dist, "destroy_process_group", lambda: seen.append(alive() is None))
    gc.disable()  # no automatic collection may free it first
    try:
        distributed.shutdown()
    finally:
        gc.enable()
    assert seen == [True]


def test_device_auto_uses_cuda_when_present():
    from sslkit.trainer import resolve_device

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(sslkit.ConfigError, match="trainer.device"):
            resolve_device("cuda")
