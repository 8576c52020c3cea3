"""One answer at any number of processes (sslkit.distributed, sslkit.sync_batchnorm): the helpers in one
process, and runs of every objective family by one process and by two gloo processes at the same global
batch (benchmarks/scale.py drives both, one launch a side)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from sslkit import distributed
from sslkit.sync_batchnorm import GlobalBatchNorm, convert_sync_batchnorm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import scale  # noqa: E402

from conftest import sslkit_main  # noqa: E402


def test_shares_cover_every_row_once_when_the_world_size_does_not_divide():
    for n in (0, 1, 7, 450):
        for W in (1, 2, 3, 4):
            shares = [distributed._share(n, r, W) for r in range(W)]
            assert [a for a, _ in shares][0] == 0 and shares[-1][1] == n
            assert all(shares[r][1] == shares[r + 1][0] for r in range(W - 1))
            sizes = [b - a for a, b in shares]
            assert max(sizes) - min(sizes) <= 1


def test_one_process_helpers_are_the_identity():
    x = torch.randn(5, 3, requires_grad=True)
    assert distributed.gather_rows(x) is x and distributed.my_rows(x) is x
    assert distributed.all_sum_with_grad(x) is x
    assert distributed.sum_over_ranks(2, 3.5) == [2, 3.5]
    assert distributed.shard_range(9) == (0, 9) and distributed.world_size() == 1


def test_global_batchnorm_is_batchnorm_in_one_process_and_keeps_the_state_dict():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU())
    keys = set(net.state_dict())
    x = torch.randn(16, 4)
    ref = net(x)
    convert_sync_batchnorm(net, torch.device("cpu"))
    assert isinstance(net[1], GlobalBatchNorm) and set(net.state_dict()) == keys
    torch.testing.assert_close(net(x), ref)


@pytest.mark.slow
def test_every_family_logs_the_same_at_two_processes_as_at_one(tmp_path):
    """Losses of every logged step, final test metrics and parameters, 3 steps each, one process against two
    processes on two nodes over loopback. The batch-coupled families
    (contrastive negatives, pml, relations over the batch) gather the global batch; views are drawn for the
    global batch from the stream's position; evaluation is sharded (the supervised family's 451 test rows are
    15 batches of 32, which 2 ranks share 7/8). ``contrastive_no_sync`` shows why ``trainer.sync_batchnorm``
    exists: each rank's own BatchNorm statistics change the loss. Dropout is off in the text families: each
    rank draws it for its own rows."""
    names = list(scale.FAMILIES)
    scale.launch(tmp_path / "one", names, 3, 1)
    # as two machines: two `torchrun --nnodes 2 --node_rank i` launches meeting at a rendezvous on 127.0.0.1
    scale.launch(tmp_path / "two", names, 3, 2, nodes=2)
    for name in names:
        c = scale.compare(tmp_path / "one" / name, tmp_path / "two" / name)
        if name == "contrastive_no_sync":
            assert c["loss"] > 1e-3, "per-rank BatchNorm statistics should change the contrastive loss"
            continue
        assert c["steps"] >= 3, name
        assert c["loss"] < 1e-4, (name, c)
        a, b = c["finals"]
        assert a.keys() == b.keys() and a, name
        for k in a:
            if k.endswith("test_accuracy"):  # counted over sharded test rows: exactly the same
                assert a[k] == b[k], (name, k, a[k], b[k])
            elif "accuracy" in k:  # a probe fitted on features equal to float rounding: at most a test row apart
                assert abs(a[k] - b[k]) <= 1 / 450 + 1e-9, (name, k, a[k], b[k])  # digits' 450 test rows
            else:
                assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-6), (name, k)
        # Adam turns float noise in a gradient that is zero in theory (a bias before BatchNorm, a reward head's
        # bias) into a step of lr, so parameters are compared at a fraction of the learning rate
        batch_norm = "trainer.sync_batchnorm=true" in scale.FAMILIES[name][1]
        assert c["weights"] < (1e-2 if batch_norm else 1e-3), (name, c["weights"])


def _losses(run: Path) -> list:
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()
            if "loss" in json.loads(line)]


@pytest.mark.slow
def test_a_checkpoint_resumes_at_another_world_size(tmp_path):
    """Written by 2 processes and continued by 1, and the reverse: the run ends where an uninterrupted one
    does (pseudo-labels from a graph over the batch, random weak/strong views)."""
    recipe = ROOT / "recipes" / scale.FAMILIES["pl_propagation"][0]
    over = [*scale.overrides("pl_propagation", 6), "trainer.scheduler={name: constant}"]
    sets = [a for o in over for a in ("--set", o)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def torchrun(*args):
        return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                               "-m", "sslkit", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                              timeout=300, env=env)

    ref = sslkit_main("run", recipe, *sets, "--out", tmp_path / "ref")
    assert ref.returncode == 0, ref.stderr
    for first, then in ((torchrun, sslkit_main), (sslkit_main, torchrun)):
        run = tmp_path / f"from_{first.__name__}"
        half = first("run", recipe, *sets, "--set", "trainer.max_steps=3", "--out", run)
        assert half.returncode == 0, half.stderr[-3000:]
        rest = then("run", "--resume", run, "--set", "trainer.max_steps=6")
        assert rest.returncode == 0, rest.stderr[-3000:]
        assert _losses(run) == pytest.approx(_losses(tmp_path / "ref"), rel=1e-5)
        a, b = (json.loads((d / "metrics.json").read_text()) for d in (tmp_path / "ref", run))
        assert b["step"] == 6 and b["test_accuracy"] == a["test_accuracy"]


@pytest.mark.slow
def test_when_one_rank_fails_the_others_name_it_in_one_line(tmp_path):
    """Rank 1 raises mid-run: it prints one line with its rank, and rank 0 prints no traceback (torchrun
    stops it; had its collective failed first, it would print the line of
    test_a_rank_whose_collective_failed_names_the_rank_that_failed)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "sslkit", "run",
         str(ROOT / "recipes" / "supervised_digits.yaml"), "--set", "imports=[tests.plugins.rank_failure]",
         "--set", "objectives=[{name: fails_on_rank_1}]", "--set", "trainer.max_steps=20", "--set",
         "trainer.threads=1", "--set", "trainer.progress=false", "--out", str(tmp_path / "run")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert "error: rank 1: the disk holding this rank's rows went away" in lines, proc.stderr[-3000:]
    assert "[rank0]: Traceback" not in proc.stderr


def test_a_rank_whose_collective_failed_names_the_rank_that_failed(monkeypatch):
    """The failing rank leaves its reason in torchrun's store; a rank whose collective then fails raises one
    line with it (or says the other process left no word, e.g. killed for memory)."""
    from sslkit.errors import TrainingError

    class Store:
        def __init__(self):
            self.data = {}

        def compare_set(self, key, expected, value):
            self.data.setdefault(key, value.encode())

        def wait(self, keys, timeout):
            if not all(k in self.data for k in keys):
                raise RuntimeError("timeout")

        def get(self, key):
            return self.data[key]

    store = Store()
    monkeypatch.setattr(distributed, "_store", lambda: store)
    monkeypatch.setenv("WORLD_SIZE", "2")
    gloo = RuntimeError("[../gloo/transport/tcp/pair.cc:534] Connection closed by peer [127.0.0.1]:5000")
    monkeypatch.setenv("RANK", "0")
    lost = distributed.explain_failure(gloo)
    assert isinstance(lost, TrainingError) and "stopped without an error of its own" in str(lost)
    monkeypatch.setenv("RANK", "1")
    own = ValueError("bad row 7\nmore")
    assert distributed.explain_failure(own) is own
    monkeypatch.setenv("RANK", "0")
    told = distributed.explain_failure(gloo)
    assert str(told).startswith("rank 1 failed: bad row 7; rank 0 stopped with it (")
    assert "\n" not in str(told)


def _collectives_worker(rank: int, world: int, port: int, out: str) -> None:
    """Rank ``rank`` of ``world`` gloo processes: checks of the collectives against one process's answer,
    with uneven rows per rank (a PPO minibatch's share can be any size, even empty)."""
    import torch.distributed as dist

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    x = torch.randn(7, 3, 4)  # 7 rows: rank 0 holds 5 of them, rank 1 holds 2
    rows = [slice(0, 5), slice(5, 7)][rank]
    ref = nn.BatchNorm1d(3)
    mine = GlobalBatchNorm(3)
    xa = x.clone().requires_grad_(True)
    (ref(xa) ** 3).sum().backward()
    xb = x[rows].clone().requires_grad_(True)
    (mine(xb) ** 3).sum().backward()
    torch.testing.assert_close(xb.grad, xa.grad[rows], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(mine.running_var, ref.running_var)
    torch.testing.assert_close(mine.running_mean, ref.running_mean)
    # an R1-style penalty through synchronised BatchNorm: the gradient of the penalty on the inputs' gradients
    # (double backward through the statistics' sums), summed over the ranks as DDP's average then divides it
    v = torch.randn(3, 4)

    def d_and_penalty(bn, inputs, weight):
        inputs = inputs.clone().requires_grad_(True)
        score = (bn(inputs) * weight).sum()  # this process's rows' scores, summed
        (g,) = torch.autograd.grad(score, inputs, create_graph=True)
        return g.pow(2).sum()

    ref_v, mine_v = v.clone().requires_grad_(True), v.clone().requires_grad_(True)
    (gv_ref,) = torch.autograd.grad(d_and_penalty(nn.BatchNorm1d(3), x, ref_v), ref_v)
    (gv,) = torch.autograd.grad(d_and_penalty(GlobalBatchNorm(3), x[rows], mine_v), mine_v)
    torch.testing.assert_close(distributed.all_sum(gv), gv_ref, rtol=1e-4, atol=1e-4)
    Path(out, f"ok{rank}").write_text("ok")
    dist.destroy_process_group()


@pytest.mark.slow
def test_global_batchnorm_matches_one_process_with_uneven_rows_and_twice_differentiated(tmp_path):
    """GlobalBatchNorm over ranks holding 5 and 2 rows equals BatchNorm over the 7: the inputs' gradients, the
    running statistics, and the gradient of a penalty on the inputs' gradients (R1, WGAN-GP: a double backward
    through the statistics' collective sums)."""
    import torch.multiprocessing as mp

    mp.spawn(_collectives_worker, args=(2, scale.free_port(), str(tmp_path)), nprocs=2, join=True)
    assert (tmp_path / "ok0").is_file() and (tmp_path / "ok1").is_file()


@pytest.mark.slow
def test_an_unreachable_rendezvous_stops_within_its_timeout_naming_the_address(tmp_path):
    """The README's multi-machine command with nothing listening at the rendezvous address: torchrun (before
    sslkit starts) stops after read_timeout with an error naming the address."""
    import time

    port = scale.free_port()
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--node_rank=1", "--nproc_per_node=1",
         "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}", "--rdzv-conf=is_host=false,read_timeout=3,"
         "join_timeout=10", "-m", "sslkit", "run", str(ROOT / "recipes" / "supervised_digits.yaml"), "--out",
         str(tmp_path / "run")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and time.perf_counter() - start < 60
    assert f"(127.0.0.1, {port})" in proc.stderr
    assert not (tmp_path / "run").exists()
