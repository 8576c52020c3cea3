"""RLHF on the offline toy task (``sslkit/data/rlhf_task.py``): does PPO raise the labeler's score?

Runs ``recipes/rlhf.yaml`` (pretrain -> sft -> reward -> ppo) with two extra stages, the ``dpo`` stage
of ``recipes/rlhf_dpo.yaml`` and a ``ppo_kl0`` stage (PPO with lambda = beta = 0, no KL penalty),
then samples every policy on the held-out prompts and prints, per policy: the labeler's score
(vowel fraction of the response), how often the response keeps the demonstrated word-chain format,
the mean response length, and the Monte-Carlo KL to the initial (sft) model
``E_y~pi [sum_t log pi(y_t|.) - log pi_sft(y_t|.)]``; plus the reward model's held-out pairwise
accuracy and wall times. Targets (issue 8): PPO beats SFT on the labeler by a clear margin (we ask
for >= 0.15) while its KL stays near the target (within a factor 2); reward-model accuracy >= 0.9;
the default rlhf.yaml pipeline under 10 minutes on 2 CPU cores.

    python benchmarks/rlhf.py [--out DIR] [--threads 1]

``SSLKIT_SMOKE=1`` shrinks every stage to 3 steps (and ``SSLKIT_OUT`` sets the output folder).
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

import sslkit
from sslkit.config import load_yaml
from sslkit.data.rlhf_task import follows_chain, vowel_reward
from sslkit.runner import build_data
from sslkit.objectives.ppo import LearnedReward
from sslkit.text.generate import lm_stepper
from sslkit.text.policy import frozen_lm, load_stage, response_mask, sample_responses, split_texts, token_logprobs

ROOT = Path(__file__).resolve().parents[1]
POLICIES = [("base (pretrain)", "pretrain"), ("SFT", "sft"), ("PPO", "ppo"), ("DPO", "dpo"),
            ("PPO, lambda = 0", "ppo_kl0")]


def recipe() -> dict:
    raw = load_yaml(ROOT / "recipes" / "rlhf.yaml")
    raw["stages"]["dpo"] = load_yaml(ROOT / "recipes" / "rlhf_dpo.yaml")["stages"]["dpo"]
    kl0 = {**raw["stages"]["ppo"], "objectives": [{**raw["stages"]["ppo"]["objectives"][0],
                                                   "kl_coef": 0.0, "kl_target": None}]}
    raw["stages"]["ppo_kl0"] = kl0
    return raw


@torch.no_grad()
def judge(run: Path, stage: str, reference, rm, prompts, prompt_len, tokenizer, tokens: int, seed: int = 0) -> dict:
    """Labeler score, reward-model score, chain format rate, length and KL to ``reference`` of ``stage``'s
    samples."""
    lm = frozen_lm({stage: run / stage}, stage, stage, tokenizer)
    g = torch.Generator().manual_seed(seed)
    seq = sample_responses(lm.logits, prompts, prompt_len, tokens, lm.encoder.max_length, tokenizer.sep_id,
                           tokenizer.pad_id, generator=g, step_fn=lm_stepper(lm.encoder, lm.head))
    mask = response_mask(seq, prompt_len, tokenizer.pad_id, tokenizer.sep_id)
    kl = ((token_logprobs(lm.logits(seq[:, :-1]), seq) - token_logprobs(reference.logits(seq[:, :-1]), seq))
          * mask).sum(1)
    p, r = split_texts(tokenizer, seq, prompt_len)
    return {"score": sum(vowel_reward(p, r)) / len(r), "rm": float(rm(seq, prompt_len).mean()), "chain": sum(follows_chain(p, r)) / len(r),
            "length": float(mask.sum(1).float().mean()), "kl": float(kl.mean()), "example": (p[0], r[0])}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1 is fastest for these tiny models on a shared 2-core machine)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    smoke = os.environ.get("SSLKIT_SMOKE") == "1"
    out = Path(args.out or os.environ.get("SSLKIT_OUT") or tempfile.mkdtemp(prefix="rlhf-")) / "rlhf_bench"
    if out.exists():
        shutil.rmtree(out)
    overrides = {"trainer.progress": False}
    if smoke:
        overrides.update({"trainer.max_steps": 3, "data.prompts": 200, "data.test_prompts": 40})
    start = time.perf_counter()
    res = sslkit.run(recipe(), overrides=overrides, out=out, overwrite=True)
    m = res.metrics
    default_stages = ("pretrain", "sft", "reward", "ppo")
    pipeline_s = sum(m[f"{s}/train_time_s"] for s in default_stages)

    cfg = load_yaml(out / "ppo" / "config.yaml")
    data = build_data({**cfg, "data": {**cfg["data"], "layout": "prompts"}})
    tok = data.info.tokenizer
    prompts, plen = data.test["x"], data.test["prompt_len"]
    ppo_cfg = cfg["objectives"][0]
    ref = frozen_lm({"sft": out / "sft"}, "sft", "sft", tok)
    model = load_stage({"reward": out / "reward"}, "reward", "reward", tok, "reward model")
    rm = LearnedReward(model, model.objectives[0], tok.sep_id, tok.pad_id)
    rows = {name: judge(out, stage, ref, rm, prompts, plen, tok, ppo_cfg["response_tokens"])
            for name, stage in POLICIES}

    print(f"RLHF toy task: {len(prompts)} held-out prompts, responses of <= {ppo_cfg['response_tokens']} ids sampled "
          f"at temperature 1; labeler = vowel fraction of the response (language's vowel rate 0.2)\n")
    print("| policy | labeler score | reward model score | word-chain format | response length (ids) "
          "| KL to SFT (nats/response) |")
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['score']:.3f} | {r['rm']:.2f} | {r['chain']:.2f} | {r['length']:.1f} | {r['kl']:.2f} |")
    print("\n| example (held-out prompt 0) | response |\n|---|---|")
    for name, r in rows.items():
        print(f"| {name}: `{r['example'][0]}` | `{r['example'][1]}` |")
    acc = m["reward/test_pairwise_accuracy"]
    gain = rows["PPO"]["score"] - rows["SFT"]["score"]
    target = ppo_cfg["kl_target"]
    kl = rows["PPO"]["kl"]
    print("\n| target | measured | met |\n|---|---|---|")
    print(f"| PPO labeler score - SFT's >= 0.15 | {gain:+.3f} | {'yes' if gain >= 0.15 else 'NO'} |")
    print(f"| PPO KL to SFT near the target {target} (within x2) | {kl:.2f} | "
          f"{'yes' if target and target / 2 <= kl <= 2 * target else 'NO'} |")
    print(f"| reward model held-out pairwise accuracy >= 0.9 | {acc:.3f} | {'yes' if acc >= 0.9 else 'NO'} |")
    print(f"| rlhf.yaml pipeline (pretrain+sft+reward+ppo) < 600 s | {pipeline_s:.0f} s training; the whole "
          f"benchmark (6 stages, data, loading, judging) {time.perf_counter() - start:.0f} s wall "
          f"| {'yes' if time.perf_counter() - start < 600 else 'NO'} |")
    print(f"\nDPO held-out pairwise accuracy (implicit reward): {m['dpo/test_pairwise_accuracy']:.3f}; "
          f"final PPO beta: {m['ppo/final_kl_coef']:.3f}; stage times (s): "
          + ", ".join(f"{s} {m[f'{s}/train_time_s']:.0f}" for s in ("pretrain", "sft", "reward", "ppo", "dpo",
                                                                   "ppo_kl0"))
          + f" (threads={args.threads}). Figures: {out}/ppo/ppo_curves.png, "
            f"{out}/ppo_kl0/ppo_curves.png")


if __name__ == "__main__":
    main()
