"""The margin contrastive loss against a hand computation, pair construction, the PML wrapper,
text views, and smoke runs of the recipes (with the probe metrics in metrics.json)."""
from __future__ import annotations

import json
import math

import pytest
import torch
from pytorch_metric_learning import distances, losses, miners, reducers
from pytorch_metric_learning.utils import loss_and_miner_utils as lmu

import sslkit
from sslkit.errors import ConfigError
from sslkit.objectives.contrastive import MarginContrastiveLoss, read_pairs, view_pair_labels

from conftest import RECIPES



@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest single-threaded, above all on a shared machine (no thread oversubscription)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


PROBE_KEYS = {"linear_probe_accuracy", "knn_accuracy", "linear_probe_accuracy_5pc", "knn_accuracy_5pc"}


def raw_loss(margin=1.0, **kw):
    """The loss on the embeddings as given (no L2 normalisation), so hand computations are simple."""
    return MarginContrastiveLoss(margin=margin, distance=distances.LpDistance(p=2, normalize_embeddings=False), **kw)


def hand_loss(z, labels, margin):
    """Seed-notes formula pair by pair in plain Python: mean over positive pairs of d^2 plus mean over
    negative pairs of max(0, eps - d)^2."""
    pos, neg = [], []
    for i in range(len(z)):
        for j in range(len(z)):
            if i == j:
                continue
            d = math.sqrt(sum((float(a) - float(b)) ** 2 for a, b in zip(z[i], z[j])))
            m = 1 if labels[i] == labels[j] else 0
            (pos if m else neg).append(m * d ** 2 + (1 - m) * max(0.0, margin - d) ** 2)
    return (sum(pos) / len(pos) if pos else 0.0) + (sum(neg) / len(neg) if neg else 0.0)


def test_single_pairs_match_the_formula():
    z = torch.tensor([[0.0, 0.0], [0.3, 0.4]])  # distance 0.5
    eps = 1.0
    none = torch.tensor([], dtype=torch.long)
    similar = raw_loss(eps)(z, indices_tuple=(torch.tensor([0]), torch.tensor([1]), none, none))
    assert similar.item() == pytest.approx(0.25)  # m=1: d^2
    dissimilar = raw_loss(eps)(z, indices_tuple=(none, none, torch.tensor([0]), torch.tensor([1])))
    assert dissimilar.item() == pytest.approx(0.25)  # m=0: (1 - 0.5)^2, squared hinge
    far = raw_loss(0.4)(z, indices_tuple=(none, none, torch.tensor([0]), torch.tensor([1])))
    assert far.item() == 0.0  # beyond the margin: no cost
    # PML's own ContrastiveLoss does not square the hinge: 0.5 instead of 0.25 here
    pml = losses.ContrastiveLoss(pos_margin=0, neg_margin=eps,
                                 distance=distances.LpDistance(normalize_embeddings=False))
    assert pml(z, torch.tensor([0, 1])).item() == pytest.approx(0.5)


def test_batch_loss_matches_hand_computation_on_both_code_paths():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(6, 3, generator=g) * 0.5
    labels = torch.tensor([0, 1, 0, 2, 1, 0])
    expected = hand_loss(z.tolist(), labels.tolist(), 1.2)
    fast = raw_loss(1.2)(z, labels)  # mean reducer: masked sums over the distance matrix
    via_indices = raw_loss(1.2)(z, labels, lmu.get_all_pairs_indices(labels))  # PML's index route
    assert fast.item() == pytest.approx(expected, rel=1e-5)
    assert via_indices.item() == pytest.approx(expected, rel=1e-5)
    z1, z2 = z.clone().requires_grad_(), z.clone().requires_grad_()
    raw_loss(1.2)(z1, labels).backward()
    raw_loss(1.2)(z2, labels, lmu.get_all_pairs_indices(labels)).backward()
    assert torch.allclose(z1.grad, z2.grad, atol=1e-6)


def test_normalised_embeddings_and_other_reducers():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(5, 4, generator=g)
    labels = torch.tensor([0, 0, 1, 1, 2])
    unit = torch.nn.functional.normalize(z, dim=1)
    loss = MarginContrastiveLoss(margin=1.5)(z, labels)  # default LpDistance normalises
    assert loss.item() == pytest.approx(hand_loss(unit.tolist(), labels.tolist(), 1.5), rel=1e-5)
    # AvgNonZeroReducer (PML's choice for its ContrastiveLoss) averages only the non-zero terms
    avg_nz = raw_loss(1.0, reducer=reducers.AvgNonZeroReducer())(z * 0.3, labels)
    d = torch.cdist(z * 0.3, z * 0.3)
    a1, p, a2, n = lmu.get_all_pairs_indices(labels)
    pos, neg = d[a1, p] ** 2, torch.relu(1.0 - d[a2, n]) ** 2
    assert avg_nz.item() == pytest.approx((pos[pos > 0].mean() + neg[neg > 0].mean()).item(), rel=1e-5)


def test_miner_output_is_used_as_the_pair_list():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(8, 3, generator=g)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    miner = miners.PairMarginMiner(pos_margin=1.0, neg_margin=2.5,
                                   distance=distances.LpDistance(normalize_embeddings=False))
    a1, p, a2, n = miner(z, labels)
    assert 0 < len(a2) < len(lmu.get_all_pairs_indices(labels)[2])  # mining kept only some negatives
    d = torch.cdist(z, z)
    expected = (d[a1, p] ** 2).mean() if len(a1) else 0.0
    expected = expected + (torch.relu(2.5 - d[a2, n]) ** 2).mean()
    assert raw_loss(2.5)(z, labels, (a1, p, a2, n)).item() == pytest.approx(float(expected), rel=1e-5)


def test_all_pairs_masked_sums_match_the_index_route_on_a_large_batch():
    """The all-pairs mean as masked sums over the distance matrix (no ~B^2 index tensors) equals PML's
    route: every pair from ``get_all_pairs_indices``, gathered and mean-reduced per pair kind."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(512, 32, generator=g)
    labels = view_pair_labels(256)
    fast = MarginContrastiveLoss(margin=1.2)(z, labels)
    a1, p, a2, n = lmu.get_all_pairs_indices(labels)
    d = torch.cdist(torch.nn.functional.normalize(z, dim=1), torch.nn.functional.normalize(z, dim=1))
    want = (d[a1, p] ** 2).mean() + (torch.relu(1.2 - d[a2, n]) ** 2).mean()
    assert len(a1) == 512 and len(a2) == 512 * 510
    assert fast.item() == pytest.approx(want.item(), rel=1e-4)


def test_view_pair_labels():
    assert view_pair_labels(3).tolist() == [0, 1, 2, 0, 1, 2]
    y = torch.tensor([2, -1, 2, -1])
    labels = view_pair_labels(4, y, num_classes=3)
    assert labels.tolist() == [2, 4, 2, 6, 2, 4, 2, 6]  # labeled rows share their class; unlabeled are unique


def test_read_pairs_from_csv_and_list(tmp_path):
    f = tmp_path / "pairs.csv"
    f.write_text("i,j,similar\n0,1,1\n2,3,0\n")
    assert read_pairs(str(f), 4, "p").tolist() == [[0, 1, 1], [2, 3, 0]]
    assert read_pairs([[1, 0, 0]], 4, "p").tolist() == [[1, 0, 0]]
    with pytest.raises(ConfigError, match=r"p\[0\]: row index out of range"):
        read_pairs([[0, 9, 1]], 4, "p")
    with pytest.raises(ConfigError, match="similar must be 0 or 1"):
        read_pairs([[0, 1, 2]], 4, "p")
    f.write_text("a,b\n0,1\n")
    with pytest.raises(ConfigError, match="header"):
        read_pairs(str(f), 4, "p")


def _recipe(objective: dict, **trainer) -> dict:
    return {"seed": 0, "data": {"name": "digits"}, "encoder": {"name": "mlp", "hidden": [32]},
            "objectives": [objective],
            "trainer": {"max_steps": 3, "batch_size": 32, "progress": False, **trainer}}


def test_pml_wrapper_equals_pml_self_supervised_loss():
    from sslkit.runner import build_data, build_model
    from sslkit import config

    cfg = config.resolve(_recipe({"name": "pml", "loss": "NTXentLoss", "loss_args": {"temperature": 0.2}}))
    model = build_model(cfg, build_data(cfg))
    obj = model.objectives[0]
    torch.manual_seed(0)
    v1, v2 = torch.rand(6, 1, 8, 8), torch.rand(6, 1, 8, 8)
    batch = {"all": {"x": v1, "y": torch.zeros(6, dtype=torch.long), "views": [v1, v2]}}
    model.eval()  # BatchNorm in eval mode: the same projection for both computations
    ours = obj(batch, model.encoder).loss
    z1, z2 = obj.head(model.encoder(v1)), obj.head(model.encoder(v2))
    reference = losses.SelfSupervisedLoss(losses.NTXentLoss(temperature=0.2), symmetric=True)(z1, z2)
    assert ours.item() == pytest.approx(reference.item(), rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("objective", [
    {"name": "pml", "loss": "SupConLoss", "pairs": "labels", "embedding_plot": False},
    {"name": "pml", "loss": "VICRegLoss", "projection": "linear", "embedding_plot": False},
    {"name": "pml", "loss": "TripletMarginLoss", "loss_args": {"margin": 0.2}, "miner": "TripletMarginMiner",
     "miner_args": {"margin": 0.2, "type_of_triplets": "semihard"}, "embedding_plot": False},
    {"name": "contrastive", "pairs": "labels", "miner": "PairMarginMiner",
     "miner_args": {"pos_margin": 0.2, "neg_margin": 0.8}, "embedding_plot": False},
    {"name": "contrastive", "pairs": "explicit", "pair_list": [[0, 1, 1], [2, 3, 0], [4, 5, 0]],
     "embedding_plot": False},
])
def test_objectives_train_a_few_steps(objective, tmp_path):
    # embedding_plot off: the t-SNE figure (seconds) is tested once, with the digits recipe below
    result = sslkit.run(_recipe(objective, eval_every=100), out=tmp_path / "r")
    assert math.isfinite(result.metrics["train_loss"])
    assert PROBE_KEYS <= set(result.metrics)


def test_bad_names_and_values_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"objectives\[0\]\.loss: unknown pytorch-metric-learning loss "
                                          r"'NTXentLos'; did you mean 'NTXentLoss'"):
        sslkit.run(_recipe({"name": "pml", "loss": "NTXentLos"}), out=tmp_path / "a")
    with pytest.raises(ConfigError, match=r"objectives\[0\]\.miner"):
        sslkit.run(_recipe({"name": "contrastive", "miner": "PairMarginMinr"}), out=tmp_path / "b")
    with pytest.raises(ConfigError, match=r"objectives\[0\]\.margin"):
        sslkit.run(_recipe({"name": "contrastive", "margin": -1}), out=tmp_path / "c")
    with pytest.raises(ConfigError, match=r"objectives\[0\]\.views\[0\]\.name.*did you mean 'crop'"):
        sslkit.run(_recipe({"name": "contrastive", "views": ["crap", "crop"]}), out=tmp_path / "d")


@pytest.mark.slow
def test_digits_recipe_writes_probe_metrics_and_embedding(tmp_path):
    result = sslkit.run(RECIPES / "contrastive_digits.yaml", overrides={"trainer.max_steps": 3,
                                                                        "trainer.progress": False},
                        out=tmp_path / "r")
    saved = json.loads((result.run_dir / "metrics.json").read_text())
    assert PROBE_KEYS <= set(saved)
    assert all(0.0 <= saved[k] <= 1.0 for k in PROBE_KEYS)
    assert (result.run_dir / "embedding.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_docstrings_recipe_runs(tmp_path):
    result = sslkit.run(RECIPES / "contrastive_docstrings.yaml",
                        overrides={"trainer.max_steps": 2, "trainer.progress": False, "data.max_length": 48,
                                   "objectives[0].embedding_plot": False}, out=tmp_path / "r")
    assert PROBE_KEYS <= set(result.metrics)
    assert not (result.run_dir / "embedding.png").exists()


def test_text_views_delete_and_mask_only_ordinary_tokens():
    from sslkit.data.views_text import delete_span, drop_tokens
    from sslkit.text.tokenizers import ByteTokenizer

    tok = ByteTokenizer()
    ids = tok.encode_batch(["hello world", "abc", "a much longer docstring here"], 40)
    torch.manual_seed(0)
    dropped = drop_tokens(ids, 0.5, tok)
    spans = delete_span(ids, 0.5, tok)
    for out in (dropped, spans):
        assert out.shape == ids.shape
        assert (out[:, 0] == tok.cls_id).all()
        assert ((out == tok.sep_id).sum(1) == 1).all()  # <sep> kept exactly once
        assert ((out != tok.pad_id).sum(1) <= (ids != tok.pad_id).sum(1)).all()
    assert (dropped != tok.pad_id).sum() < (ids != tok.pad_id).sum()
    # a deleted span is contiguous: what remains of row 2 is a prefix + suffix of the original text
    before, after = tok.decode(ids[2]), tok.decode(spans[2])
    k = next((i for i, (a, b) in enumerate(zip(before, after)) if a != b), len(after))
    assert before.endswith(after[k:])
    assert drop_tokens(ids, 0.0, tok) is ids


def test_crop_view_identity_settings_and_ranges():
    from sslkit.data.views_contrastive import Crop, random_resized_crop
    from sslkit.data import DataInfo

    torch.manual_seed(0)
    x = torch.rand(16, 1, 8, 8)
    same = random_resized_crop(x, scale=(1.0, 1.0), ratio=(1.0, 1.0), max_rotate=0.0)
    assert torch.allclose(same, x, atol=1e-5)  # a full-size, unrotated window is the image itself
    zoomed = random_resized_crop(x, scale=(0.25, 0.25), ratio=(1.0, 1.0))
    assert zoomed.shape == x.shape and not torch.allclose(zoomed, x)
    view = Crop(DataInfo("image", (1, 8, 8)))
    out = view(x)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert not torch.equal(view(x), view(x))  # fresh randomness per call
    tab = Crop(DataInfo("tabular", (5,)), noise=0.0, feature_drop=0.5)(torch.ones(200, 5))
    assert 0.3 < (tab == 0).float().mean() < 0.7 and set(tab.unique().tolist()) <= {0.0, 1.0}
