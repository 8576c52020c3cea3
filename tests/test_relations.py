"""Each relation's targets and weights against hand computations."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from sslkit.data import DataInfo, TensorData
from sslkit.errors import ConfigError
from sslkit.relations.base import RelationContext, RelationInput, sharpen
from sslkit.relations.propagation import affinity, knn_graph, propagate
from sslkit.schema import build


def ctx(C=2, labeled_y=None, encoder=None, head=None):
    info = DataInfo("tabular", (2,), C, [str(c) for c in range(C)], name="toy")
    labeled = TensorData({"x": torch.zeros(len(labeled_y), 2), "y": torch.tensor(labeled_y)}) if labeled_y else None
    return RelationContext(info, encoder or nn.Linear(2, 4), head or nn.Linear(4, C), labeled, "objectives[0].relation")


def make(cfg, **kw):
    return build("relations", cfg, ctx(**kw), path="objectives[0].relation")


def inp(probs=None, x=None, features=None, labeled_x=None, labeled_features=None, labeled_y=None):
    probs = torch.tensor(probs, dtype=torch.float32) if probs is not None else None
    logits = probs.log() if probs is not None else torch.zeros(len(features), 2)
    B = len(logits)
    features = torch.as_tensor(features, dtype=torch.float32) if features is not None else torch.zeros(B, 3)
    x = torch.as_tensor(x, dtype=torch.float32) if x is not None else torch.zeros(B, 2)
    ly = torch.tensor(labeled_y if labeled_y is not None else [0])
    lf = (torch.as_tensor(labeled_features, dtype=torch.float32) if labeled_features is not None
          else torch.zeros(len(ly), 3))
    lx = torch.as_tensor(labeled_x, dtype=torch.float32) if labeled_x is not None else torch.zeros(len(ly), 2)
    return RelationInput(x, logits, features, lx, lf, ly)


def test_confidence_threshold_and_temperature():
    r = make({"name": "confidence", "threshold": 0.95})
    out = r(inp([[0.96, 0.04], [0.6, 0.4], [0.02, 0.98]]))
    assert torch.allclose(out.probs, torch.tensor([[0.96, 0.04], [0.6, 0.4], [0.02, 0.98]]), atol=1e-6)
    assert out.weight.tolist() == [1.0, 0.0, 1.0]
    # T = 2: softmax(log p / 2) = sqrt(p) / sum sqrt(p)
    r = make({"name": "confidence", "threshold": 0.0, "temperature": 2.0})
    out = r(inp([[0.64, 0.36]]))
    assert torch.allclose(out.probs, torch.tensor([[0.8 / 1.4, 0.6 / 1.4]]), atol=1e-6)
    assert out.weight.tolist() == [1.0]


def test_confidence_bad_threshold_names_the_path():
    with pytest.raises(ConfigError, match=r"objectives\[0\]\.relation\.threshold"):
        make({"name": "confidence", "threshold": 1.5})


def test_soft_sharpening_and_threshold():
    r = make({"name": "soft", "temperature": 0.5, "threshold": 0.55})
    out = r(inp([[0.6, 0.4], [0.5, 0.5]]))
    # p^2 / sum p^2: [0.36, 0.16] / 0.52
    assert torch.allclose(out.probs[0], torch.tensor([0.36 / 0.52, 0.16 / 0.52]), atol=1e-6)
    assert torch.allclose(out.probs[1], torch.tensor([0.5, 0.5]), atol=1e-6)
    assert out.weight.tolist() == [1.0, 0.0]
    assert torch.allclose(sharpen(torch.tensor([[0.2, 0.8]]), 1.0), torch.tensor([[0.2, 0.8]]))


def test_soft_distribution_alignment():
    # labeled prior 3:1; momentum 0 makes the running mean the batch mean [0.5, 0.5]
    r = make({"name": "soft", "temperature": 1.0, "align": True, "momentum": 0.0}, labeled_y=[0, 0, 0, 1])
    assert torch.allclose(r.prior, torch.tensor([0.75, 0.25]))
    out = r(inp([[0.6, 0.4], [0.4, 0.6]]))
    assert torch.allclose(r.running_mean, torch.tensor([0.5, 0.5]))
    # p * prior / mean, renormalised: [0.6*1.5, 0.4*0.5] = [0.9, 0.2] -> [9/11, 2/11]
    assert torch.allclose(out.probs[0], torch.tensor([9 / 11, 2 / 11]), atol=1e-6)
    assert torch.allclose(out.probs[1], torch.tensor([0.6 / 0.9, 0.3 / 0.9]), atol=1e-6)
    r.eval()  # evaluation does not move the running mean
    r(inp([[0.9, 0.1]]))
    assert torch.allclose(r.running_mean, torch.tensor([0.5, 0.5]))


def test_adaptive_freematch_thresholds():
    r = make({"name": "adaptive", "mode": "freematch", "momentum": 0.5})
    out = r(inp([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]]))
    # t = 0.5*0.5 + 0.5*mean(0.9, 0.7, 0.6); q = 0.5*[0.5, 0.5] + 0.5*[0.6, 0.4]
    t = 0.25 + 0.5 * (2.2 / 3)
    q = torch.tensor([0.55, 0.45])
    assert math.isclose(float(r.global_conf), t, rel_tol=1e-6)
    assert torch.allclose(r.class_prob, q)
    tau = t * q / q.max()
    assert torch.allclose(r.class_thresholds(), tau)
    # 0.9 >= tau0 = 0.617; 0.7 >= tau1 = 0.505; 0.6 < tau0
    assert out.weight.tolist() == [1.0, 1.0, 0.0]


def test_adaptive_flexmatch_thresholds():
    r = make({"name": "adaptive", "mode": "flexmatch", "momentum": 0.0, "threshold": 0.8})
    assert torch.allclose(r.class_thresholds(), torch.zeros(2))  # nothing learned yet: low thresholds
    out = r(inp([[0.9, 0.1], [0.85, 0.15], [0.3, 0.7], [0.55, 0.45]]))
    # confident (>= 0.8): two rows of class 0 -> s = [0.5, 0]; beta = s / max(0.5, 1 - 0.5) = [1, 0]
    assert torch.allclose(r.class_share, torch.tensor([0.5, 0.0]))
    assert torch.allclose(r.class_thresholds(), torch.tensor([0.8 * 1 / (2 - 1), 0.0]))
    assert out.weight.tolist() == [1.0, 1.0, 1.0, 0.0]


def test_teacher_ema_and_targets():
    torch.manual_seed(0)
    encoder, head = nn.Linear(2, 4), nn.Linear(4, 2)
    r = make({"name": "teacher", "decay": 0.75}, encoder=encoder, head=head)
    assert not any(p.requires_grad for p in r.teacher.parameters())
    before = [p.clone() for p in r.teacher.parameters()]
    with torch.no_grad():
        for p in list(encoder.parameters()) + list(head.parameters()):
            p.add_(1.0)
    r.after_step(encoder, head)
    student = list(encoder.parameters()) + list(head.parameters())
    for t, b, s in zip(r.teacher.parameters(), before, student):
        assert torch.allclose(t, 0.75 * b + 0.25 * s, atol=1e-6)  # b == s - 1 initially
    x = torch.tensor([[1.0, -2.0], [0.5, 0.5]])
    out = r(inp(x=x, features=torch.zeros(2, 3)))
    expected = torch.softmax(r.teacher[1](r.teacher[0](x)), 1)
    assert torch.allclose(out.probs, expected, atol=1e-6)
    assert out.weight.tolist() == [1.0, 1.0]
    r.train()
    assert not r.teacher.training  # always predicts in eval mode


def test_affinity_and_knn_graph_by_hand():
    pts = torch.tensor([[0.0], [1.0], [3.0], [10.0]])
    sim = affinity(pts, "gaussian", k=1, bandwidth=1.0)
    assert math.isclose(float(sim[0, 1]), math.exp(-0.5), rel_tol=1e-5)
    assert math.isclose(float(sim[1, 2]), math.exp(-2.0), rel_tol=1e-5)
    assert float(sim[0, 0]) == 0.0
    W = knn_graph(sim, k=1)
    # nearest neighbours: 0->1, 1->0, 2->1, 3->2; W = A + A^T
    A = torch.zeros(4, 4)
    for i, j in [(0, 1), (1, 0), (2, 1), (3, 2)]:
        A[i, j] = sim[i, j]
    assert torch.allclose(W, A + A.T)
    cos = affinity(torch.tensor([[1.0, 0.0], [1.0, 1.0], [-1.0, 0.0]]), "cosine", gamma=2.0)
    assert math.isclose(float(cos[0, 1]), 0.5, rel_tol=1e-5)  # cos 45 deg squared
    assert float(cos[0, 2]) == 0.0  # negative similarity clipped


def test_propagation_matches_closed_form():
    # labeled: x=0 (class 0), x=3 (class 1); unlabeled: x=1, x=2.5
    r = make({"name": "propagation", "space": "input", "k": 3, "alpha": 0.9, "bandwidth": 1.0,
              "certainty_weight": True})
    out = r(inp(x=[[1.0, 0.0], [2.5, 0.0]], features=torch.zeros(2, 3), labeled_x=[[0.0, 0.0], [3.0, 0.0]],
                labeled_y=[0, 1]))
    xs = np.array([0.0, 3.0, 1.0, 2.5])
    S = np.exp(-(xs[:, None] - xs[None, :]) ** 2 / 2)
    np.fill_diagonal(S, 0)
    W = 2 * S  # k = 3: every node links to the 3 others, A + A^T = 2 S
    d = 1 / np.sqrt(W.sum(1))
    Fm = np.linalg.solve(np.eye(4) - 0.9 * d[:, None] * W * d[None, :], np.array([[1, 0], [0, 1], [0, 0], [0, 0]]))
    p = Fm[2:] / Fm[2:].sum(1, keepdims=True)
    assert np.allclose(out.probs.numpy(), p, atol=1e-5)
    assert out.probs[0].argmax() == 0 and out.probs[1].argmax() == 1
    H = -(p * np.log(p)).sum(1)
    assert np.allclose(out.weight.numpy(), 1 - H / np.log(2), atol=1e-5)


def test_propagation_class_mass_normalisation():
    # class 0 seeded twice at x=0, class 1 once at x=3: raw propagation hands even x=2.5, next to the
    # class-1 seed, to class 0 (more seed mass); class mass normalisation rescales each class's column
    # to the labeled rows' prior (uniform without labeled rows in the context; 2/3, 1/3 with rows
    # [0, 0, 1]) before normalising rows
    x = [[0.5, 0.0], [1.5, 0.0], [2.5, 0.0]]
    kw = dict(x=x, features=torch.zeros(3, 3), labeled_x=[[0.0, 0.0], [0.0, 0.0], [3.0, 0.0]], labeled_y=[0, 0, 1])
    cfg = {"name": "propagation", "space": "input", "k": 5, "alpha": 0.9, "bandwidth": 1.0, "certainty_weight": False}
    raw = make(cfg)(inp(**kw))
    xs = np.array([0.0, 0.0, 3.0, 0.5, 1.5, 2.5])
    S = np.exp(-(xs[:, None] - xs[None, :]) ** 2 / 2)
    np.fill_diagonal(S, 0)
    W = 2 * S  # k = 5: every node links to the 5 others
    d = 1 / np.sqrt(W.sum(1))
    Y = np.zeros((6, 2))
    Y[[0, 1], 0], Y[2, 1] = 1, 1
    Fm = np.linalg.solve(np.eye(6) - 0.9 * d[:, None] * W * d[None, :], Y)[3:]
    assert np.allclose(raw.probs.numpy(), Fm / Fm.sum(1, keepdims=True), atol=1e-5)
    assert raw.probs.argmax(1).tolist() == [0, 0, 0]
    for prior, labeled_y, expected in (([0.5, 0.5], None, [0, 0, 1]), ([2 / 3, 1 / 3], [0, 0, 1], [0, 0, 0])):
        out = build("relations", {**cfg, "class_mass": True}, ctx(labeled_y=labeled_y),
                    path="objectives[0].relation")(inp(**kw))
        G = Fm * np.array(prior) / Fm.sum(0)
        assert np.allclose(out.probs.numpy(), G / G.sum(1, keepdims=True), atol=1e-5)
        assert out.probs.argmax(1).tolist() == expected


def test_propagation_unreached_node_is_masked():
    # k = 1: the far unlabeled pair only links to itself, so no label reaches it
    r = make({"name": "propagation", "space": "input", "k": 1, "bandwidth": 1.0})
    out = r(inp(x=[[100.0, 0.0], [101.0, 0.0], [0.5, 0.0]], features=torch.zeros(3, 3),
                labeled_x=[[0.0, 0.0], [1.0, 0.0]], labeled_y=[0, 1]))
    assert torch.allclose(out.probs[:2], torch.full((2, 2), 0.5))
    assert out.weight[:2].tolist() == [0.0, 0.0]
    assert out.weight[2] > 0


def test_propagation_on_features_uses_cosine():
    r = make({"name": "propagation", "k": 1, "certainty_weight": False})
    out = r(inp(features=[[1.0, 0.1, 0.0], [0.1, 1.0, 0.0]], labeled_features=[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
                labeled_y=[0, 1]))
    assert out.probs.argmax(1).tolist() == [0, 1]
    assert out.weight.tolist() == [1.0, 1.0]


def test_propagation_rejects_input_space_for_text():
    info = DataInfo("text", (8,), 2, ["a", "b"], name="t")
    with pytest.raises(ConfigError, match=r"relation\.space"):
        build("relations", {"name": "propagation", "space": "input"},
              RelationContext(info, nn.Linear(2, 2), nn.Linear(2, 2)), path="objectives[0].relation")


def test_prototype_nearest_centroid():
    r = make({"name": "prototype", "temperature": 0.1, "threshold": 0.99}, C=3)
    # class 0 features [1, 0] and [2, 0] (same direction), class 1 [0, 1]; class 2 absent from the batch
    out = r(inp(features=[[3.0, 1.0], [1.0, 1.0]], labeled_features=[[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]],
                labeled_y=[0, 0, 1]))
    s = torch.tensor([3 / math.sqrt(10), 1 / math.sqrt(10)]) / 0.1
    p0 = torch.softmax(s, 0)
    assert torch.allclose(out.probs[0, :2], p0, atol=1e-5)
    assert out.probs[:, 2].tolist() == [0.0, 0.0]  # absent class never chosen
    assert torch.allclose(out.probs[1, :2], torch.tensor([0.5, 0.5]), atol=1e-6)  # equidistant
    assert out.weight.tolist() == [1.0, 0.0]  # p0 max = 0.998 >= 0.99; 0.5 < 0.99


def test_unknown_relation_key_suggests():
    with pytest.raises(ConfigError, match=r"relation\.treshold.*did you mean 'threshold'"):
        make({"name": "confidence", "treshold": 0.9})


def test_propagation_graph_on_an_ema_teacher():
    """The teacher follows ``0.75 * teacher + 0.25 * student`` and the graph is built on its features of
    the labeled rows and the weak views (the student's features are ignored); with decay 0 the teacher
    is the student itself (no BatchNorm here, so eval mode changes nothing) and the targets are those
    of the student path."""
    torch.manual_seed(0)
    encoder = nn.Linear(2, 4)
    cfg = {"name": "propagation", "k": 2, "certainty_weight": False}
    r = make({**cfg, "teacher_decay": 0.75}, encoder=encoder)
    r0 = make({**cfg, "teacher_decay": 0.0}, encoder=encoder)
    assert not any(p.requires_grad for p in r.teacher.parameters())
    before = [p.clone() for p in r.teacher.parameters()]
    with torch.no_grad():
        for p in encoder.parameters():
            p.mul_(-2.0).add_(1.0)
    for rel in (r, r0):
        rel.after_step(encoder, nn.Linear(4, 2))
    for t, b, s in zip(r.teacher.parameters(), before, encoder.parameters()):
        assert torch.allclose(t, 0.75 * b + 0.25 * s, atol=1e-6)
    for t, s in zip(r0.teacher.parameters(), encoder.parameters()):
        assert torch.equal(t, s)
    x, lx = torch.randn(6, 2), torch.randn(2, 2)
    student = make(cfg)
    with torch.no_grad():
        by_hand = student(inp(x=x, features=r.teacher(x), labeled_x=lx, labeled_features=r.teacher(lx),
                              labeled_y=[0, 1]))
        student_path = student(inp(x=x, features=encoder(x), labeled_x=lx, labeled_features=encoder(lx),
                                   labeled_y=[0, 1]))
    junk = dict(x=x, features=torch.randn(6, 3), labeled_x=lx, labeled_features=torch.randn(2, 3), labeled_y=[0, 1])
    assert torch.allclose(r(inp(**junk)).probs, by_hand.probs, atol=1e-6)
    assert torch.allclose(r0(inp(**junk)).probs, student_path.probs, atol=1e-6)
    assert not torch.allclose(by_hand.probs, student_path.probs, atol=1e-3)  # the teacher differs here
    r.train()
    assert not r.teacher.training  # features from running statistics, always
    with pytest.raises(ConfigError, match=r"relation\.teacher_decay"):
        make({"name": "propagation", "space": "input", "teacher_decay": 0.9})


def spreading_ctx(x, y, modality="tabular", tokenizer=None, C=2):
    info = DataInfo(modality, tuple(x.shape[1:]), C, [str(c) for c in range(C)], tokenizer=tokenizer, name="toy")
    train = TensorData({"x": x, "y": torch.tensor(y)})
    return RelationContext(info, nn.Linear(2, 4), nn.Linear(4, C), None, "objectives[0].relation", train)


def test_label_spreading_matches_closed_form_and_looks_up_rows():
    # rbf kernel: scikit-learn's graph is exp(-gamma d^2) without self-loops, normalised by its degrees,
    # so its fixed point is the closed form of propagate() with the same affinities
    xs = torch.tensor([[0.0, 0.0], [3.0, 0.0], [1.0, 0.0], [2.5, 0.0], [0.5, 0.5]])
    y = [0, 1, -1, -1, -1]
    r = build("relations", {"name": "label_spreading", "kernel": "rbf", "gamma": 0.5, "alpha": 0.9, "tol": 1e-9},
              spreading_ctx(xs, y), path="objectives[0].relation")
    d2 = ((xs[:, None, :] - xs[None, :, :]) ** 2).sum(-1).numpy()
    W = np.exp(-0.5 * d2)
    np.fill_diagonal(W, 0)
    d = 1 / np.sqrt(W.sum(1))
    Y = np.zeros((5, 2))
    Y[0, 0] = Y[1, 1] = 1
    Fm = np.linalg.solve(np.eye(5) - 0.9 * d[:, None] * W * d[None, :], Y)
    p = Fm / Fm.sum(1, keepdims=True)
    rows = torch.tensor([3, 0, 2, 4, 1])  # a batch's rows, in the stream's order; labeled rows keep their label
    out = r(RelationInput(torch.zeros(5, 2), torch.zeros(5, 2), torch.zeros(5, 3), torch.zeros(1, 2),
                          torch.zeros(1, 3), torch.tensor([0]), rows))
    expected = p[rows.numpy()]
    expected[1], expected[4] = [1, 0], [0, 1]
    assert np.allclose(out.probs.numpy(), expected, atol=1e-4)
    assert out.probs.argmax(1).tolist() == [1, 0, 0, 0, 1]
    assert out.weight.tolist() == [1.0] * 5
    with pytest.raises(ValueError, match="no `row` column"):
        r(RelationInput(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 3), torch.zeros(1, 2),
                        torch.zeros(1, 3), torch.tensor([0])))


def test_label_spreading_threshold_and_unreached_rows():
    # knn, k = 3 (scikit-learn counts the row itself): rows 5-7 only reach each other, far from the seeds
    xs = torch.tensor([[0.0], [1.0], [0.1], [-0.1], [0.55], [100.0], [101.0], [102.0]])
    r = build("relations", {"name": "label_spreading", "k": 3, "alpha": 0.5, "threshold": 0.9},
              spreading_ctx(xs, [0, 1, -1, -1, -1, -1, -1, -1]), path="objectives[0].relation")
    assert torch.allclose(r.probs[5:], torch.full((3, 2), 0.5))
    assert r.weight[5:].tolist() == [0.0, 0.0, 0.0]
    assert r.probs[2:4].argmax(1).tolist() == [0, 0] and r.weight[2:4].tolist() == [1.0, 1.0]
    p4 = r.probs[4]  # its neighbours are row 1 (class 1) and row 2 (class 0): below the threshold, masked
    assert p4.argmax() == 1 and p4.max() < 0.9 and r.weight[4] == 0.0


def test_bag_of_words_tfidf_by_hand():
    from sslkit.text.bag_of_words import bag_of_words

    ids = torch.tensor([[5, 6, 6, 0], [5, 7, 1, 0]])  # 0 and 1 are special ids (padding, a boundary)
    X = bag_of_words(ids, 8, (0, 1)).toarray()
    idf_rare = math.log(3 / 2) + 1  # smoothed idf of a word in 1 of 2 rows; a word in both: log(3/3) + 1 = 1
    row0 = np.zeros(8)
    row0[5], row0[6] = 1.0, (1 + math.log(2)) * idf_rare  # sublinear tf: 1 + log(count)
    row1 = np.zeros(8)
    row1[5], row1[7] = 1.0, idf_rare
    assert np.allclose(X, np.stack([row0 / np.linalg.norm(row0), row1 / np.linalg.norm(row1)]))


def test_label_spreading_reads_lazy_rows_within_its_memory_limit(monkeypatch):
    from sslkit.data import LazyColumn
    from sslkit.relations import label_spreading

    xs = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.2, 0.0], [2.8, 0.0]])
    lazy = LazyColumn(lambda i: xs[i], len(xs))  # as an image folder's rows: read one by one, on demand
    c = spreading_ctx(xs, [0, 1, -1, -1])
    c.train = TensorData({"x": lazy, "y": torch.tensor([0, 1, -1, -1])})
    r = build("relations", {"name": "label_spreading", "k": 2}, c, path="objectives[0].relation")
    assert r.probs.argmax(1).tolist() == [0, 1, 0, 1]
    monkeypatch.setattr(label_spreading, "MAX_INPUT_BYTES", 16)  # 4 rows x 2 floats = 32 bytes
    with pytest.raises(ConfigError, match=r"relation\.name: .*4 rows of shape \(2,\)"):
        build("relations", {"name": "label_spreading", "k": 2}, c, path="objectives[0].relation")


def test_label_spreading_needs_training_rows():
    with pytest.raises(ConfigError, match=r"relation\.name"):
        build("relations", {"name": "label_spreading"}, ctx(), path="objectives[0].relation")


def test_agreement_keeps_the_rows_where_its_relations_agree():
    # label_spreading (rows 2-3 near class 0's seed, row 4 near class 1's) against the student's own predictions
    xs = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.2, 0.0], [0.1, 0.1], [2.9, 0.0]])
    c = spreading_ctx(xs, [0, 1, -1, -1, -1])
    spec = {"name": "agreement", "relations": [{"name": "label_spreading", "k": 2},
                                               {"name": "confidence", "threshold": 0.7}]}
    r = build("relations", spec, c, path="objectives[0].relation")
    assert r.reads_weak_view  # confidence reads the student's view of z
    student = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]])  # rows 2, 3, 4: agrees, disagrees, agrees
    rows = torch.tensor([2, 3, 4])
    out = r(RelationInput(torch.zeros(3, 2), student.log(), torch.zeros(3, 3), torch.zeros(1, 2),
                          torch.zeros(1, 3), torch.tensor([0]), rows))
    spread = r.relations[0].probs[rows]
    assert spread.argmax(1).tolist() == [0, 0, 1]
    assert torch.allclose(out.probs, (spread + student) / 2, atol=1e-6)
    # row 3: the labels differ; row 4: they agree, but the student's 0.6 is under its 0.7 threshold
    assert out.weight.tolist() == [1.0, 0.0, 0.0]
    ls_only = {"name": "agreement", "relations": [{"name": "label_spreading", "k": 2}, {"name": "label_spreading", "k": 3}]}
    assert not build("relations", ls_only, c, path="objectives[0].relation").reads_weak_view
    with pytest.raises(ConfigError, match=r"^objectives\[0\]\.relation\.relations: .*at least two"):
        build("relations", {"name": "agreement", "relations": [{"name": "confidence"}]}, c,
              path="objectives[0].relation")
    with pytest.raises(ConfigError, match=r"^objectives\[0\]\.relation\.relations\[1\]\.threshold"):
        build("relations", {"name": "agreement", "relations": [{"name": "confidence"},
                                                               {"name": "confidence", "threshold": 2}]}, c,
              path="objectives[0].relation")


def test_agreement_passes_after_step_to_its_relations():
    enc, head = nn.Linear(2, 4), nn.Linear(4, 2)
    r = build("relations", {"name": "agreement", "relations": [{"name": "teacher", "decay": 0.5}, {"name": "confidence"}]},
              ctx(encoder=enc, head=head), path="objectives[0].relation")
    before = r.relations[0].teacher[0].weight.clone()
    with torch.no_grad():
        enc.weight.add_(1.0)
    r.after_step(enc, head)
    assert torch.allclose(r.relations[0].teacher[0].weight, 0.5 * before + 0.5 * enc.weight)
