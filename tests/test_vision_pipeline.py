"""The worker input pipeline: per-sample augmentation seeded by stream position (0 and 2 workers give
the same batches; a restarted loader continues exactly), FixMatch steps on wrn and a timm model from
tiny CIFAR files, and errors from workers reaching the user as one line."""
from __future__ import annotations

import pytest
import torch

from conftest import RECIPES, sslkit_main
from sslkit import config
from sslkit.data import sample_files
from sslkit.data.loader import ImageBatches, TensorBatches, make_batches
from sslkit.data.stream import Stream
from sslkit.data.transforms import FILL, Cutout, FixMatchRandAugment
from sslkit.runner import build_data
from sslkit.schema import build

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    sample_files.write_cifar(root, per_class=4)
    return root


def loader(data, workers, seed=0):
    views = [build("views", {"name": "weak", "flip": True}, data.info),
             build("views", {"name": "strong", "flip": True, "cutout": 0.5}, data.info)]
    stream = Stream(data.train, 12, seed, "all|7.0|('weak', 'strong')")
    return make_batches(stream, views, data.info, CPU, workers)


def take(batches, n):
    return [next(batches) for _ in range(n)]


def test_same_batches_with_0_and_2_workers(cifar):
    data = build_data(config.resolve({"data": {"name": "cifar10", "root": str(cifar)}}))
    a, b = loader(data, 0), loader(data, 2)
    assert isinstance(a, ImageBatches) and b.num_workers == 2
    rng_before = torch.get_rng_state()
    first, second = take(a, 5), take(b, 5)  # 5 batches of 12 over 40 rows: crosses an epoch boundary
    assert torch.equal(torch.get_rng_state(), rng_before), "augmenting must not move the trainer's RNG"
    for p, q in zip(first, second):
        assert torch.equal(p["x"], q["x"]) and torch.equal(p["y"], q["y"])
        assert all(torch.equal(u, v) for u, v in zip(p["views"], q["views"]))
        assert p["x"].dtype == torch.float32 and p["x"].shape == (12, 3, 32, 32) and 0 <= p["x"].min() <= p["x"].max() <= 1
        weak, strong = p["views"]
        assert not torch.equal(weak, p["x"]) and not torch.equal(strong, weak)
    assert a.stream.state_dict() == b.stream.state_dict() == {"epoch": 1, "pos": 20}
    other = take(loader(data, 0, seed=1), 1)[0]
    assert not torch.equal(other["views"][0], first[0]["views"][0])


def test_stream_position_is_what_was_consumed_and_resumes_exactly(cifar):
    data = build_data(config.resolve({"data": {"name": "cifar10", "root": str(cifar)}}))
    ref = loader(data, 2)
    batches = take(ref, 4)
    assert ref.stream.state_dict() == {"epoch": 1, "pos": 8}  # not the workers' prefetched position
    plain = Stream(data.train, 12, 0, "all|7.0|('weak', 'strong')")
    for b in batches:
        assert torch.equal(b["y"], data.train["y"][plain.next_indices()])
    resumed = loader(data, 0)
    take(resumed, 1)
    resumed.stream.load_state_dict({"epoch": 0, "pos": 24})  # as Trainer.load_state does
    again = take(resumed, 2)
    for p, q in zip(batches[2:], again):
        assert torch.equal(p["x"], q["x"]) and all(torch.equal(u, v) for u, v in zip(p["views"], q["views"]))


def test_in_memory_images_keep_batched_views():
    data = build_data(config.resolve({"data": {"name": "digits"}}))
    assert isinstance(make_batches(Stream(data.train, 8, 0, "k"), [], data.info, CPU, 2), TensorBatches)


def test_fixmatch_transforms_on_uint8():
    torch.manual_seed(0)
    img = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    out = [FixMatchRandAugment()(img) for _ in range(20)]
    assert all(o.dtype == torch.uint8 and o.shape == img.shape for o in out)
    assert sum(not torch.equal(o, img) for o in out) >= 15
    torch.manual_seed(1)
    holes = [Cutout(0.5)(img) for _ in range(20)]
    grey = torch.tensor(FILL).view(3, 1, 1)
    filled = [(h == grey).all(0) & (img != grey).any(0) for h in holes]
    assert max(int(f.sum()) for f in filled) >= 9 and all(int(f.sum()) <= 16 * 16 for f in filled)


@pytest.mark.parametrize("encoder", [{"name": "wrn"}, {"name": "timm", "model": "test_resnet", "small_input": True}])
def test_fixmatch_steps_on_cifar_files(cifar, tmp_path, encoder):
    import sslkit

    recipe = {"data": {"name": "cifar10", "root": str(cifar), "labels_per_class": 2}, "encoder": encoder,
              "objectives": [{"name": "pseudo_label", "unlabeled_ratio": 2, "relation": {"name": "confidence"},
                              "weak": {"name": "weak", "flip": True},
                              "strong": {"name": "strong", "flip": True, "cutout": 0.5}}],
              "trainer": {"batch_size": 4, "max_steps": 3, "num_workers": 1, "progress": False, "threads": 1,
                          "optimizer": {"name": "sgd", "lr": 0.03, "momentum": 0.9, "nesterov": True}}}
    metrics = sslkit.run(recipe, out=tmp_path / "run").metrics
    assert metrics["step"] == 3 and 0 <= metrics["test_accuracy"] <= 1


def test_corrupt_image_in_folder_is_named(tmp_path):
    from PIL import Image

    x, _ = sample_files.class_images(2, 3, (3, 16, 16), 0)
    for i, img in enumerate(x):
        (tmp_path / "imgs" / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(img.transpose(1, 2, 0)).save(tmp_path / "imgs" / f"c{i % 2}" / f"{i}.png")
    (tmp_path / "imgs" / "c0" / "broken.png").write_bytes(b"\x89PNG not really")
    proc = sslkit_main("run", RECIPES / "semi_digits.yaml", "--set", f"data={{name: image_folder, root: {tmp_path / 'imgs'}, "
                      "image_size: 16}", "--set", "data.labels_per_class=null", "--set", "trainer.max_steps=1",
                      "--out", tmp_path / "run")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "broken.png" in proc.stderr and proc.stderr.strip().count("\n") == 0


def test_error_in_a_worker_reaches_the_trainer_as_one_config_error():
    from sslkit.data import DataInfo, LazyColumn, TensorData
    from sslkit.errors import ConfigError

    def load(i):
        if i == 3:
            raise ConfigError("data.root", "cannot read image /images/3.png: truncated")
        return torch.zeros(3, 8, 8)

    data = TensorData({"x": LazyColumn(load, 6), "y": torch.zeros(6, dtype=torch.long)})
    batches = make_batches(Stream(data, 6, 0, "k"), [], DataInfo("image", (3, 8, 8), 2), CPU, 1)
    with pytest.raises(ConfigError, match="data.root: cannot read image /images/3.png"):
        next(batches)


def test_interrupted_image_run_resumes_to_the_same_weights(cifar):
    """2 steps, checkpoint, 2 more in a new trainer (0 workers) == 4 steps at once (2 workers)."""
    from sslkit.runner import build_model, seed_everything
    from sslkit.trainer import Trainer

    def trainer(steps, workers):
        cfg = config.resolve({"data": {"name": "cifar10", "root": str(cifar), "labels_per_class": 2},
                              "encoder": {"name": "wrn", "depth": 10, "widen_factor": 1},
                              "objectives": [{"name": "pseudo_label", "unlabeled_ratio": 2,
                                              "relation": {"name": "confidence", "threshold": 0.0}}],
                              "trainer": {"batch_size": 4, "max_steps": steps, "num_workers": workers,
                                          "progress": False, "eval_every": 10**6}})
        seed_everything(0)
        data = build_data(cfg)
        return Trainer(cfg, data, build_model(cfg, data), CPU, None)

    whole = trainer(4, 2)
    whole.fit()
    first = trainer(2, 2)
    first.fit()
    state = first.state_dict()
    assert state["streams"]  # stream positions are checkpointed
    rest = trainer(4, 0)
    rest.fit(resume=state)
    for (name, a), b in zip(whole.model.state_dict().items(), rest.model.state_dict().values()):
        assert torch.equal(a, b), name
