"""The DPO and PPO objectives end to end on hand-built, padded sequences, against plain-Python
computations: sequence log-probabilities over response tokens only (prompt and padding masked out),
the DPO loss over ranked pairs, PPO's clipped policy, clipped value and entropy terms with the approximate
KL, and the rollout's minibatch queue. The policy is a bigram model (the next token's logits depend only
on the current token: ``E[s_t] E^T + b``) so every probability can be written down by hand."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from sslkit.data import DataBundle, DataInfo, TensorData
from sslkit.objectives.base import ObjectiveContext
from sslkit.objectives.dpo import DPO
from sslkit.objectives.ppo import PPO
from sslkit.text.policy import response_mask
from sslkit.text.tokenizers import ByteTokenizer

TOK = ByteTokenizer()
PAD, CLS, SEP = TOK.pad_id, TOK.cls_id, TOK.sep_id
T = 8


class Bigram(nn.Module):
    """A causal "encoder" whose state at position t is the embedding of token t."""

    causal, max_length, pad_id = True, T, PAD

    def __init__(self, dim: int = 3):
        super().__init__()
        self.tok, self.out_dim = nn.Embedding(TOK.vocab_size, dim), dim

    def forward_tokens(self, ids):
        return self.tok(ids)

    def token_embedding(self):
        return self.tok

    def forward(self, ids):
        return self.tok(ids).mean(1)


def ctx():
    torch.manual_seed(0)
    return ObjectiveContext(DataInfo("text", (T,), 0, tokenizer=TOK), Bigram())


def log_softmax(v):
    m = max(v)
    z = math.log(sum(math.exp(a - m) for a in v)) + m
    return [a - z for a in v]


def next_logprobs(enc, head, token):
    """log p(. | token) of the bigram policy, as a plain list."""
    E, b = enc.tok.weight.tolist(), head.bias.tolist()
    return log_softmax([sum(x * y for x, y in zip(E[token], E[v])) + b[v] for v in range(TOK.vocab_size)])


def response_logprob(enc, head, row, prompt_len):
    """sum_{c >= prompt_len, row[c] not padding} log p(row[c] | row[c - 1])."""
    return sum(next_logprobs(enc, head, row[c - 1])[row[c]] for c in range(prompt_len, len(row)) if row[c] != PAD)


def perturb(obj, enc):
    """Move the policy away from its frozen snapshot (the reference), so log-ratios are not zero."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        enc.tok.weight.add_(torch.randn(enc.tok.weight.shape, generator=g))
        obj.head.bias.add_(torch.randn(obj.head.bias.shape, generator=g))


# two prompts (prompt_len 2 and 3), three ranked responses each, of different lengths, right-padded
RANKED = torch.tensor([
    [[CLS, 10, 20, 21, SEP, PAD, PAD, PAD],
     [CLS, 10, 22, SEP, PAD, PAD, PAD, PAD],
     [CLS, 10, 20, 23, 24, 25, SEP, PAD]],
    [[CLS, 11, 12, 30, SEP, PAD, PAD, PAD],
     [CLS, 11, 12, 31, 32, 33, 34, SEP],
     [CLS, 11, 12, SEP, PAD, PAD, PAD, PAD]],
])
PROMPT_LEN = torch.tensor([2, 3])
SCORES = torch.tensor([[3.0, 1.0, 2.0], [0.5, 0.5, 0.1]])  # row 1: a tie between responses 0 and 1


def test_response_mask_by_hand():
    mask = response_mask(RANKED[0], PROMPT_LEN[:1].repeat(3), PAD)
    # targets seq[:, 1:]: response tokens from column 2 on, up to and including <sep>
    assert mask.int().tolist() == [[0, 1, 1, 1, 0, 0, 0], [0, 1, 1, 0, 0, 0, 0], [0, 1, 1, 1, 1, 1, 0]]


def test_dpo_loss_and_pairwise_accuracy_by_hand():
    c = ctx()
    obj = DPO(c, beta=0.5, reference=None)  # the reference: a frozen snapshot of the initial policy
    ref_enc = Bigram()
    ref_enc.load_state_dict(c.encoder.state_dict())
    ref_head = SimpleNamespace(bias=obj.head.bias.detach().clone())
    perturb(obj, c.encoder)
    batch = {"ranked": RANKED, "scores": SCORES, "prompt_len": PROMPT_LEN}
    out = obj({"all": batch}, c.encoder)
    losses, correct = [], 0
    for b in range(2):
        lp = [response_logprob(c.encoder, obj.head, RANKED[b, k].tolist(), int(PROMPT_LEN[b])) for k in range(3)]
        rp = [response_logprob(ref_enc, ref_head, RANKED[b, k].tolist(), int(PROMPT_LEN[b])) for k in range(3)]
        for i, j in ((0, 1), (0, 2), (1, 2)):
            if SCORES[b, i] > SCORES[b, j]:  # the better-scored response is listed first; ties compare nothing
                margin = 0.5 * ((lp[i] - rp[i]) - (lp[j] - rp[j]))
                losses.append(math.log1p(math.exp(-margin)))
                correct += margin > 0
    assert len(losses) == 4
    assert out.loss.item() == pytest.approx(sum(losses) / len(losses), rel=1e-5)
    data = DataBundle(c.info, TensorData({}), TensorData(batch))
    assert obj.evaluate(data, c.encoder, 1, "cpu")["test_pairwise_accuracy"] == pytest.approx(correct / 4)


def ppo(**kw):
    c = ctx()
    obj = PPO(c, reward_model=None, reward_fn="sslkit.data.rlhf_task:vowel_reward", reference=None, clip=0.2,
              value_clip=0.3, vf_coef=0.1, entropy_coef=0.05, **kw)
    with torch.no_grad():  # a non-zero value head, so the value loss has something to clip
        obj.value_head.weight.copy_(torch.tensor([[0.5, -1.0, 0.25]]))
        obj.value_head.bias.fill_(0.1)
    perturb(obj, c.encoder)
    return obj, c.encoder


def hand_buffer(enc, obj):
    """Three responses with padding, old log-probabilities a little off the current ones (some ratios
    outside [0.8, 1.2]), old values, advantages and returns."""
    seq = torch.tensor([[CLS, 10, 20, 21, SEP, PAD, PAD, PAD],
                        [CLS, 11, 12, 30, 31, 32, SEP, PAD],
                        [CLS, 13, SEP, PAD, PAD, PAD, PAD, PAD]])
    plen = torch.tensor([2, 3, 2])
    mask = response_mask(seq, plen, PAD)
    g = torch.Generator().manual_seed(4)
    shape = (3, T - 1)
    with torch.no_grad():
        logp = torch.log_softmax(obj.head(enc.forward_tokens(seq[:, :-1]), enc.tok.weight), -1)
        logp = logp.gather(2, seq[:, 1:, None]).squeeze(2)
    return {"seq": seq, "mask": mask, "logp": (logp + 0.4 * torch.randn(shape, generator=g)) * mask,
            "values": torch.randn(shape, generator=g) * mask, "adv": torch.randn(shape, generator=g) * mask,
            "returns": torch.randn(shape, generator=g) * mask}


def test_ppo_update_by_hand_on_padded_responses():
    obj, enc = ppo()
    r = hand_buffer(enc, obj)
    out = obj.update(r, {}, enc)
    w, b = obj.value_head.weight[0].tolist(), float(obj.value_head.bias)
    E = enc.tok.weight.tolist()
    pg, vf, ent, kl, n = 0.0, 0.0, 0.0, 0.0, 0
    for i in range(3):
        row = r["seq"][i].tolist()
        for t in range(T - 1):  # action row[t + 1] from state row[t]
            if not r["mask"][i, t]:
                continue
            lp = next_logprobs(enc, obj.head, row[t])
            ratio = math.exp(lp[row[t + 1]] - float(r["logp"][i, t]))
            a = float(r["adv"][i, t])
            pg += max(-a * ratio, -a * min(max(ratio, 0.8), 1.2))
            v, v_old, ret = sum(x * y for x, y in zip(w, E[row[t]])) + b, float(r["values"][i, t]), float(r["returns"][i, t])
            v_clip = v_old + min(max(v - v_old, -0.3), 0.3)
            vf += 0.5 * max((v - ret) ** 2, (v_clip - ret) ** 2)
            ent += -sum(math.exp(x) * x for x in lp)
            kl += 0.5 * (lp[row[t + 1]] - float(r["logp"][i, t])) ** 2
            n += 1
    assert n == 3 + 4 + 1  # response tokens incl. <sep>; prompts and padding excluded
    pg, vf, ent, kl = pg / n, vf / n, ent / n, kl / n
    m = out.metrics
    assert float(m["policy_loss"]) == pytest.approx(pg, rel=1e-4)
    assert float(m["value_loss"]) == pytest.approx(vf, rel=1e-4)
    assert float(m["entropy"]) == pytest.approx(ent, rel=1e-4)
    assert float(m["approx_kl"]) == pytest.approx(kl, rel=1e-4)
    assert out.loss.item() == pytest.approx(pg + 0.1 * vf - 0.05 * ent, rel=1e-4)
    assert 0 < float(m["clipfrac"]) < 1  # the hand-built ratios clip some tokens, not all


def test_ppo_minibatch_queue_covers_each_rollout_row_once_per_epoch():
    obj, enc = ppo(ppo_epochs=2, minibatch_size=2)
    buffer = hand_buffer(enc, obj)
    collected, seen = [], []
    obj.collect = lambda batch, encoder: collected.append(batch) or {**buffer, "stats": {}}
    update = obj.update
    obj.update = lambda rows, stats, encoder: seen.append(rows["seq"]) or update(rows, stats, encoder)
    assert obj.updates_per_batch(3) == 4 and obj.needs_batch()
    for step in range(5):
        obj({"all": f"batch {len(collected)}"}, enc)
        assert obj.needs_batch() == (step in (3,))  # a new batch only once the 4 updates are spent
    assert [b["all"] for b in collected] == ["batch 0", "batch 1"]
    assert [len(s) for s in seen] == [2, 1, 2, 1, 2]
    for epoch in (seen[0:2], seen[2:4]):  # every row exactly once per pass
        rows = sorted(tuple(x.tolist()) for s in epoch for x in s)
        assert rows == sorted(tuple(x.tolist()) for x in buffer["seq"])
