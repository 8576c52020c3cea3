"""Invariants checked on many generated cases (hypothesis): batch streams, which resumed runs rely on, and
BERT masking, which every masked objective relies on."""
from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sslkit.data import TensorData
from sslkit.data.stream import Stream
from sslkit.text.lm_head import IGNORE
from sslkit.text.masking import mlm_mask, special_mask
from sslkit.text.tokenizers import ByteTokenizer

TOK = ByteTokenizer()
FAST = settings(max_examples=60, deadline=None, database=None)  # nothing written into the repository


def stream(n: int, batch: int, seed: int, rank: int = 0, world: int = 1) -> Stream:
    return Stream(TensorData({"i": torch.arange(n)}), batch, seed, "all|1.0|None", rank, world)


@FAST
@given(n=st.integers(1, 40), batch=st.integers(1, 30), seed=st.integers(0, 2**31), k=st.integers(0, 25),
       m=st.integers(1, 8))
def test_a_stream_restored_from_its_state_continues_identically(n, batch, seed, k, m):
    whole, part = stream(n, batch, seed), stream(n, batch, seed)
    for _ in range(k):
        next(whole), next(part)
    resumed = stream(n, batch, seed)
    resumed.load_state_dict(part.state_dict())
    for _ in range(m):
        assert torch.equal(next(resumed)["i"], next(whole)["i"])


@FAST
@given(n=st.integers(1, 40), batch=st.integers(1, 30), seed=st.integers(0, 2**31), passes=st.integers(1, 4))
def test_every_batch_is_full_and_every_pass_sees_each_row_once(n, batch, seed, passes):
    s = stream(n, batch, seed)
    steps = -(-passes * n // batch)  # enough batches to cover the passes
    seen = torch.cat([next(s)["i"] for _ in range(steps)])
    assert len(seen) == steps * batch
    for p in range(passes):
        assert sorted(seen[p * n:(p + 1) * n].tolist()) == list(range(n))


@FAST
@given(n=st.integers(1, 40), per_rank=st.integers(1, 8), world=st.integers(2, 4), seed=st.integers(0, 2**31),
       k=st.integers(1, 6))
def test_ranks_together_see_the_single_process_batches(n, per_rank, world, seed, k):
    single = stream(n, per_rank * world, seed)
    ranks = [stream(n, per_rank * world, seed, r, world) for r in range(world)]
    for _ in range(k):
        want = next(single)["i"]
        parts = [next(s)["i"] for s in ranks]
        assert all(len(p) == per_rank for p in parts)
        assert torch.equal(torch.stack(parts, 1).flatten(), want)  # rank r takes every world-th row from r


@FAST
@given(rows=st.lists(st.lists(st.integers(5, TOK.vocab_size - 1), min_size=1, max_size=24), min_size=1, max_size=6),
       prob=st.floats(0.05, 0.95), mask_ratio=st.floats(0, 1), seed=st.integers(0, 2**31))
def test_mlm_masking_never_touches_specials_and_labels_exactly_the_selected(rows, prob, mask_ratio, seed):
    T = max(len(r) for r in rows) + 1
    x = torch.full((len(rows), T), TOK.pad_id)
    x[:, 0] = TOK.cls_id
    for i, r in enumerate(rows):
        x[i, 1:len(r) + 1] = torch.tensor(r)
    random_ratio = (1 - mask_ratio) / 2
    inputs, labels, selected = mlm_mask(x, TOK, prob, mask_ratio, random_ratio,
                                        generator=torch.Generator().manual_seed(seed))
    special = special_mask(x, TOK)
    assert not (selected & special).any()
    assert torch.equal(inputs[~selected], x[~selected])  # unselected tokens are left as they are
    assert torch.equal(labels[selected], x[selected]) and (labels[~selected] == IGNORE).all()
    changed = selected & (inputs != x)
    assert (~special_mask(inputs[changed & (inputs != TOK.mask_id)], TOK)).all()  # random tokens are not specials
