"""Run folders: never two runs in one folder, one process per folder, honest bookkeeping on resume,
signal exit codes, failed runs marked, pseudo-label accuracy only over known labels."""
from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time

import pytest
import torch

import sslkit
from sslkit import checkpoint, config
from sslkit.errors import ConfigError

from conftest import RECIPES, sslkit_main

RECIPE = RECIPES / "supervised_digits.yaml"
# a constant schedule, so a resume may raise the step budget
TINY = {"encoder.hidden": [16], "trainer.progress": False, "trainer.batch_size": 32, "trainer.max_steps": 3,
        "trainer.scheduler": {"name": "constant"}, "trainer.log_every": 1}


def _args(over: dict) -> list:
    out = []
    for k, v in over.items():
        out += ["--set", f"{k}={json.dumps(v)}"]
    return out


def _snapshot(d):
    return {p.relative_to(d): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture
def finished(tmp_path):
    return sslkit.run(RECIPE, overrides=TINY, out=tmp_path / "r").run_dir


def test_out_on_an_existing_run_refuses_unless_overwrite(finished):
    before = _snapshot(finished)
    proc = sslkit_main("run", RECIPE, *_args(TINY), "--out", finished)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (f"error: --out: {finished} already holds a run; pass --overwrite to replace "
                                   f"it or --resume {finished} to continue it")
    assert _snapshot(finished) == before
    proc = sslkit_main("run", RECIPE, *_args(TINY), "--out", finished, "--overwrite")
    assert proc.returncode == 0, proc.stderr
    log = [json.loads(line) for line in (finished / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [1, 2, 3], "the replaced run's log must not be appended to"


def test_out_on_a_folder_of_other_files_is_never_emptied(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="is not empty and holds no run"):
        sslkit.run(RECIPE, overrides=TINY, out=tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_a_live_lock_stops_a_second_process_and_a_stale_one_is_taken_over(finished):
    import socket

    lock = finished / ".lock"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        lock.write_text(f"{holder.pid} {socket.gethostname()}\n")  # a live process holds the folder
        proc = sslkit_main("run", "--resume", finished, "--set", "trainer.max_steps=4")
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"in use by process {holder.pid}" in proc.stderr and str(lock) in proc.stderr
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock.write_text(f"{dead.pid} {socket.gethostname()}\n")
    proc = sslkit_main("run", "--resume", finished, "--set", "trainer.max_steps=4")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((finished / "metrics.json").read_text())["step"] == 4
    assert not lock.exists(), "the lock is released when the run ends"


def test_resume_cuts_the_log_back_and_accumulates_time(finished):
    state = checkpoint.load(finished / "checkpoints" / "last.pt")
    assert state["step"] == 3 and state["train_time_s"] > 0
    state["train_time_s"] = 1000.0  # as if the first part had trained for 1000 s
    checkpoint.save(state, finished / "checkpoints" / "last.pt")
    # as after a SIGKILL past the checkpoint: later lines, one torn, and no final metrics
    with open(finished / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 4, "loss": 9.0}) + "\n" + '{"step": 5, "lo')
    (finished / "metrics.json").unlink()
    proc = sslkit_main("run", "--resume", finished, "--set", "trainer.max_steps=5")
    assert proc.returncode == 0, proc.stderr
    log = [json.loads(line) for line in (finished / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in log if "loss" in r]
    assert steps == [1, 2, 3, 4, 5] and all(r.get("loss") != 9.0 for r in log)
    final = json.loads((finished / "metrics.json").read_text())
    assert final["status"] == "finished" and final["step"] == 5
    assert 1000 < final["train_time_s"] < 1100
    assert final["samples_per_s"] == round(32 * 5 / final["train_time_s"], 1)


def test_resuming_a_finished_run_changes_nothing(finished):
    before = _snapshot(finished)
    proc = sslkit_main("run", "--resume", finished)
    assert proc.returncode == 0, proc.stderr
    assert "already finished (step 3); nothing was changed" in proc.stderr
    assert _snapshot(finished) == before


@pytest.mark.parametrize("extra,fragment", [
    (["RECIPE"], "--resume: cannot be combined with a RECIPE"),
    (["--out", "OTHER"], "--resume: cannot be combined with --out"),
    (["--set", "encoder.hidden=[8]"], "--set encoder.hidden: cannot be changed on --resume"),
])
def test_resume_refuses_what_it_would_ignore(finished, tmp_path, extra, fragment):
    extra = [str(RECIPE) if a == "RECIPE" else str(tmp_path / "o") if a == "OTHER" else a for a in extra]
    args = ["run", "--resume", finished, *extra] if extra[0] != str(RECIPE) else ["run", extra[0], "--resume", finished]
    proc = sslkit_main(*args)
    assert proc.returncode == 2 and fragment in proc.stderr and "Traceback" not in proc.stderr
    if "--set" in extra:
        assert "trainer.max_steps" in proc.stderr, "the error names the keys that may change"


def test_a_finished_cosine_run_extended_follows_the_new_plan_and_says_so(tmp_path):
    """``--resume --set trainer.max_steps=N`` on a finished run trains to step N; its cosine schedule is
    re-planned over N steps from the resumed step on (the lr is step 4's of a 6-step plan), with a note."""
    cosine = {**TINY, "trainer.scheduler": {"name": "cosine"}}
    run_dir = sslkit.run(RECIPE, overrides=cosine, out=tmp_path / "c").run_dir
    proc = sslkit_main("run", "--resume", run_dir, "--set", "trainer.max_steps=6")
    assert proc.returncode == 0, proc.stderr
    assert "note: the 'cosine' schedule, planned for 3 steps, was re-planned over 6: from step 3 on" in proc.stderr
    log = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    lr = {r["step"]: r["lr"] for r in log if "lr" in r}
    base = 1e-3  # supervised_digits.yaml's adamw lr
    assert lr[4] == pytest.approx(base * 0.5 * (1 + math.cos(math.pi * 4 / 6)))  # step 4 of the new plan
    assert json.loads((run_dir / "metrics.json").read_text())["step"] == 6


@pytest.mark.parametrize("override", ["trainer.max_steps=200", "trainer.epochs=2"])
def test_a_finished_run_extends_past_its_epochs(tmp_path, override):
    """A run that finished all its epochs continues with a larger max_steps (epochs raised to reach it, and
    recorded) or with more epochs."""
    over = {**TINY, "trainer.max_steps": None, "trainer.epochs": 1, "trainer.batch_size": 256,
            "trainer.log_every": 100}
    run_dir = sslkit.run(RECIPE, overrides=over, out=tmp_path / "e").run_dir
    first = json.loads((run_dir / "metrics.json").read_text())["step"]
    proc = sslkit_main("run", "--resume", run_dir, "--set", override)
    assert proc.returncode == 0, proc.stderr
    step = json.loads((run_dir / "metrics.json").read_text())["step"]
    assert step == (200 if "max_steps" in override else 2 * first) and step > first
    assert config.load_yaml(run_dir / "config.yaml")["trainer"]["epochs"] >= 2


def test_truncated_checkpoint_is_one_sentence_naming_the_file(finished):
    ck = finished / "checkpoints" / "last.pt"
    ck.write_bytes(ck.read_bytes()[:100])
    proc = sslkit_main("run", "--resume", finished, "--set", "trainer.max_steps=4")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    msg = proc.stderr.strip()
    assert msg.startswith("error: ") and str(ck) in msg and msg.endswith(".") and msg.count("\n") == 0


def test_failed_run_is_marked_and_finished_run_says_so(tmp_path, finished):
    assert json.loads((finished / "metrics.json").read_text())["status"] == "finished"
    proc = sslkit_main("run", RECIPES / "semi_moons.yaml", "--set", "data.labels_per_class=400",
                      "--set", "trainer.max_steps=1", "--out", tmp_path / "bad")
    assert proc.returncode == 2
    saved = json.loads((tmp_path / "bad" / "metrics.json").read_text())
    assert saved["status"] == "failed" and "labels_per_class: 400 labels per class requested" in saved["error"]


@pytest.mark.slow  # a subprocess trains until it is signalled
def test_sigint_exits_130(tmp_path):
    run_dir = tmp_path / "s"
    proc = subprocess.Popen([sys.executable, "-m", "sslkit", "run", str(RECIPE), "--out", str(run_dir), *_args(
        {**TINY, "trainer.max_steps": 100000, "trainer.checkpoint_every": 5, "trainer.log_every": 1000})],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    t = time.time()
    while not (run_dir / "checkpoints" / "last.pt").exists() and time.time() - t < 120:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "stopped by SIGINT" in err
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "interrupted"


def test_default_run_folder_is_under_the_current_folder(tmp_path):
    proc = sslkit_main("run", RECIPE, *_args(TINY))  # the test runs in tmp_path (conftest)
    assert proc.returncode == 0, proc.stderr
    made = list((tmp_path / "runs").iterdir())
    assert len(made) == 1 and made[0].name.startswith("supervised_digits-")


def test_pseudo_label_accuracy_counts_only_rows_with_a_known_label(tmp_path):
    rng = torch.Generator().manual_seed(0)
    x = torch.randn(60, 2, generator=rng)
    y = (x[:, 0] > 0).long()
    rows = ["a,b,label"]
    for i, (xi, yi) in enumerate(zip(x.tolist(), y.tolist())):
        rows.append(f"{xi[0]:.3f},{xi[1]:.3f},{yi if i % 3 == 0 else ''}")  # two rows in three unlabeled
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    over = {"data": {"name": "csv", "path": str(tmp_path / "d.csv")}, "encoder": {"name": "mlp", "hidden": [8]},
            "objectives": [{"name": "pseudo_label", "relation": {"name": "confidence", "threshold": 0.0}}],
            "trainer": {"max_steps": 3, "progress": False, "batch_size": 8}}
    res = sslkit.run(over, out=tmp_path / "r")
    assert res.metrics["mean_mask_rate"] == 1.0  # threshold 0: every drawn row is kept
    _, passes, correct, judged = checkpoint.load(res.run_dir / "checkpoints" / "last.pt")["model"][
        "objectives.0.totals"].tolist()
    drawn = passes * 8 * 7  # batch 8, unlabeled_ratio 7
    # only the drawn rows with a label in the CSV are judged; the empty-label rows (y_true -1) are not
    assert 0 < judged < drawn / 2
    assert res.metrics["pseudo_label_accuracy"] == pytest.approx(correct / judged)


def test_busy_machine_note_names_the_setting(tmp_path, monkeypatch):
    from sslkit.runner import busy_machine_note

    note = busy_machine_note(30.0, threads=2, load=5.7, cores=2)
    assert note and "load average 5.7 on 2 cores" in note and "trainer.threads=1" in note and "\n" not in note
    assert busy_machine_note(30.0, threads=1, load=5.7, cores=2) is None  # already one thread
    assert busy_machine_note(30.0, threads=2, load=1.5, cores=2) is None  # a quiet machine
    # the run's own 2 threads load the machine to ~2: 2.04 at the end of a quiet 2-thread text run (8 min)
    assert busy_machine_note(30.0, threads=2, load=2.04, cores=2) is None
    assert busy_machine_note(30.0, threads=2, load=2.8, cores=2)  # one more job's worth
    assert busy_machine_note(30.0, threads=8, load=2.8, cores=2)  # more threads than cores: counted as 2
    assert busy_machine_note(0.2, threads=2, load=9.0, cores=2) is None  # too short to matter
    # the end-of-run summary carries it (train_time_s of the run passed in)
    seen = []
    monkeypatch.setattr("sslkit.runner.busy_machine_note", lambda t: seen.append(t) or "busy")
    res = sslkit.run(RECIPE, overrides=TINY, out=tmp_path / "r")
    assert res.notes == ["busy"] and seen == [res.metrics["train_time_s"]]


def test_busy_cores_reads_the_cores_use_now_not_the_load_average(monkeypatch):
    import sslkit.runner as runner

    stat = iter([
        "cpu  0 0 0 0 0 0 0 0\ncpu0 100 0 50 800 50 0 0 0\ncpu1 10 0 10 900 0 0 0 0\ncpu2 0 0 0 1000 0 0 0 0\n",
        # 0.1 s later: cpu0 busy 9 of 10 ticks (1 of them stolen), cpu1 1 of 10, cpu2 (not ours) 10 of 10
        "cpu  0 0 0 0 0 0 0 0\ncpu0 106 0 52 801 50 0 0 1\ncpu1 11 0 10 909 0 0 0 0\ncpu2 10 0 0 1000 0 0 0 0\n",
    ])
    monkeypatch.setattr(runner.Path, "read_text", lambda self: next(stat))
    monkeypatch.setattr(runner.time, "sleep", lambda s: None)
    own = iter([5.0, 5.05])  # this process's CPU seconds: 0.05 over a 0.1 s window is half a core of its own
    wall = iter([100.0, 100.1])
    monkeypatch.setattr(runner.time, "process_time", lambda: next(own))
    monkeypatch.setattr(runner.time, "perf_counter", lambda: next(wall))
    assert runner.busy_cores({0, 1}) == pytest.approx(2 * 10 / 20 - 0.5)
    monkeypatch.setattr(runner.time, "process_time", lambda: 0.0)
    monkeypatch.setattr(runner.time, "perf_counter", lambda: 0.0)
    monkeypatch.setattr(runner.Path, "read_text", lambda self: (_ for _ in ()).throw(OSError("no /proc")))
    assert runner.busy_cores({0, 1}) is None
    # lines it cannot read are skipped or give up (the load average is used), never an exception
    monkeypatch.setattr(runner.Path, "read_text", lambda self: "\ncpu0 1 2\ncpu1 10 0 10 900 0 0 0 0\n")
    assert runner._cpu_jiffies({0, 1}) == (20, 920)
    monkeypatch.setattr(runner.Path, "read_text", lambda self: "cpu0 1 2 x 4 5 6 7 8\n")
    assert runner._cpu_jiffies({0}) is None
    # auto_threads asks busy_cores first: a load average still high from a finished run gives no thread away
    monkeypatch.setattr(runner, "busy_cores", lambda cpus: 0.1)
    monkeypatch.setattr(runner.os, "getloadavg", lambda: (1.3, 1.0, 1.0))
    assert runner.auto_threads(cores=2, default=2) == 2
    monkeypatch.setattr(runner, "busy_cores", lambda cpus: 1.0)  # one core in use by another job now
    assert runner.auto_threads(cores=2, default=2) == 1
    monkeypatch.setattr(runner, "busy_cores", lambda cpus: None)  # no /proc/stat: the load average decides
    assert runner.auto_threads(cores=2, default=2) == 1


def test_auto_threads_uses_the_idle_cores(tmp_path, monkeypatch):
    from sslkit.runner import auto_threads

    assert auto_threads(cores=2, load=0.3, default=2) == 2  # quiet: both cores (1.1-1.8x faster than one)
    assert auto_threads(cores=2, load=0.8, default=2) == 1  # one core kept busy by other work
    assert auto_threads(cores=2, load=4.1, default=2) == 1  # busy: never below one thread
    assert auto_threads(cores=8, load=2.0, default=8) == 6
    assert auto_threads(cores=8, load=0.0, default=4) == 4  # never above torch's default (OMP_NUM_THREADS)
    # a run with threads: auto sets what auto_threads decides; a bad word is a config error with its path
    monkeypatch.setattr("sslkit.runner.auto_threads", lambda: 1)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        sslkit.run(RECIPE, overrides={**TINY, "trainer.threads": "auto"}, out=tmp_path / "auto")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ConfigError, match=r"^trainer\.threads: expected .*'auto'"):
        sslkit.validate(RECIPE, ["trainer.threads=fast"])
    with pytest.raises(ConfigError, match=r"^trainer\.threads: must be >= 1, got 0"):
        sslkit.validate(RECIPE, ["trainer.threads=0"])


def test_a_run_that_failed_before_its_first_step_does_not_block_its_folder(tmp_path):
    """A run stopped by bad data before any step leaves a folder the next --out may reuse without
    --overwrite; a run that trained still needs it."""
    out = tmp_path / "r"
    bad = sslkit_main("run", RECIPE, "--set", "data.labels_per_class=500", "--out", out)
    assert bad.returncode == 2 and (out / "config.yaml").is_file()
    good = sslkit_main("run", RECIPE, *_args(TINY), "--out", out)
    assert good.returncode == 0, good.stderr
    again = sslkit_main("run", RECIPE, *_args(TINY), "--out", out)
    assert again.returncode == 2 and "already holds a run" in again.stderr
