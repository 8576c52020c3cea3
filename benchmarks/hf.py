"""Hugging Face interop benchmarks (issue 16), each side by side in one process on the same shapes:

* ``generation``: sampling from the ``gpt`` encoder, batch 16, a prompt of 8 ids and 16 -> 256 new ids:
  time per new token with sslkit's key/value cache (``generate`` and ``sample_responses``), without it
  (the prefix recomputed every step, as before issue 16), and Hugging Face ``generate`` (``use_cache``)
  on a GPT-2 of the same width, depth, heads and vocabulary. Targets: cached time per token at 256
  within 1.5x of 16; no slower than Hugging Face.
* ``mlm``: continued MLM pretraining of an ``hf`` BERT-style model (``sslkit run``, objective ``mlm``)
  against a plain PyTorch loop over the same model and batches with ``DataCollatorForLanguageModeling``;
  tokens per second. Target: >= 1.0x the plain loop.
* ``ppo``: one PPO iteration (rollout of batch 16 + 4 PPO epochs over it) with 12/48/128/256-token
  responses, sslkit's ``ppo`` on an ``hf`` tiny GPT-2 against TRL's ``PPOTrainer`` on the same model
  shapes (TRL is optional: ``pip install 'trl==1.12.*'``; without it that column is "not installed").
  Target: sslkit no slower at any length.

    python benchmarks/hf.py [--part generation|mlm|ppo|all] [--threads 1]

``SSLKIT_SMOKE=1`` shrinks every part to a few steps. Timings are the best of ``--repeats`` runs.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

SMOKE = os.environ.get("SSLKIT_SMOKE") == "1"


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


# ---------------------------------------------------------------- generation
def generation(repeats: int) -> list:
    from transformers import GPT2Config, GPT2LMHeadModel

    from sslkit.data import DataInfo
    from sslkit.encoders.gpt import GPTEncoder
    from sslkit.text.generate import generate, lm_stepper
    from sslkit.text.lm_head import embedding_of, lm_head
    from sslkit.text.policy import sample_responses
    from sslkit.text.tokenizers import ByteTokenizer

    lengths = (16, 32) if SMOKE else (16, 64, 128, 256)
    B, P, ctx = 16, 8, 8 + max(lengths)
    tok = ByteTokenizer()
    torch.manual_seed(0)
    enc = GPTEncoder(DataInfo("text", (ctx,), tokenizer=tok), dim=64, depth=2, heads=4, max_length=ctx).eval()
    head = lm_head(enc, transform=False)
    fn = lambda ids: head(enc.forward_tokens(ids), embedding_of(enc))  # noqa: E731
    step = lm_stepper(enc, head)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=tok.vocab_size, n_embd=64, n_layer=2, n_head=4, n_positions=ctx,
                                    pad_token_id=tok.pad_id, bos_token_id=tok.cls_id, eos_token_id=tok.sep_id)).eval()
    prompt = torch.randint(5, tok.vocab_size, (B, P))
    plen = torch.full((B,), P)
    rows = []
    for n in lengths:
        g = torch.Generator().manual_seed(0)
        t_cache = best_time(lambda: generate(fn, prompt, n, ctx, generator=g, step_fn=step), repeats)
        t_plain = best_time(lambda: generate(fn, prompt, n, ctx, generator=g), repeats)
        # an eos id outside the vocabulary: every row samples all n tokens, as in the other columns
        t_sample = best_time(lambda: sample_responses(fn, prompt, plen, n, ctx, tok.vocab_size, tok.pad_id,
                                                      generator=g, step_fn=step), repeats)
        with torch.no_grad():
            t_hf = best_time(lambda: hf.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=True,
                                                 top_k=0, max_new_tokens=n, min_new_tokens=n, use_cache=True,
                                                 pad_token_id=tok.pad_id), repeats)
        rows.append({"new": n, "cache": 1e3 * t_cache / n, "sample_responses": 1e3 * t_sample / n,
                     "no_cache": 1e3 * t_plain / n, "hf": 1e3 * t_hf / n})
    print(f"\ngeneration, batch {B}, prompt {P}: ms per new token (best of {repeats})")
    print(f"{'new ids':>8} {'sslkit cache':>13} {'sample_responses':>17} {'no cache':>9} {'HF generate':>12} "
          f"{'HF / sslkit':>12}")
    for r in rows:
        print(f"{r['new']:>8} {r['cache']:>13.3f} {r['sample_responses']:>17.3f} {r['no_cache']:>9.3f} "
              f"{r['hf']:>12.3f} {r['hf'] / r['cache']:>11.2f}x")
    first, last = rows[0], rows[-1]
    print(f"last/first time per token: sslkit cache {last['cache'] / first['cache']:.2f}x, sample_responses "
          f"{last['sample_responses'] / first['sample_responses']:.2f}x, no cache {last['no_cache'] / first['no_cache']:.2f}x,"
          f" HF {last['hf'] / first['hf']:.2f}x (target <= 1.5x)")
    return rows


# ---------------------------------------------------------------- MLM
def mlm(repeats: int, threads: int) -> dict:
    from transformers import AutoTokenizer, BertForMaskedLM, DataCollatorForLanguageModeling

    import sslkit
    from sslkit.encoders.hf_tiny import save_tiny

    steps, batch, T = (4, 8, 64) if SMOKE else (40, 32, 128)
    tmp = Path(tempfile.mkdtemp(prefix="hf_bench_"))
    folder = save_tiny("bert", tmp / "bert", dim=128, layers=2, heads=4, positions=T)
    recipe = {"seed": 0, "data": {"name": "pydoc_blocks", "max_length": T},
              "encoder": {"name": "hf", "model": str(folder)}, "objectives": [{"name": "mlm"}],
              "trainer": {"max_steps": steps, "batch_size": batch, "progress": False, "threads": threads,
                          "eval_every": 10**9, "log_every": 10**9, "checkpoint_every": 10**9,
                          "optimizer": {"name": "adamw", "lr": 1e-4}}}
    ours = []
    for i in range(repeats):
        m = sslkit.run(recipe, out=tmp / f"run{i}").metrics
        ours.append(m["train_time_s"])
    # the plain loop: same model, same rows, the collator of transformers' run_mlm.py
    data = sslkit.runner.build_data(sslkit.config.resolve(recipe))
    x = data.train["x"]
    tok = AutoTokenizer.from_pretrained(folder)
    collate = DataCollatorForLanguageModeling(tok, mlm_probability=0.15)
    plain = []
    for _ in range(repeats):
        torch.manual_seed(0)
        model = BertForMaskedLM.from_pretrained(folder).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        order = torch.randperm(len(x))
        start = time.perf_counter()
        for s in range(steps):
            rows = x[order[(s * batch) % len(x):][:batch]]
            b = collate([{"input_ids": r} for r in rows])
            loss = model(input_ids=b["input_ids"], labels=b["labels"]).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        plain.append(time.perf_counter() - start)
    tokens = steps * batch * T
    out = {"sslkit": tokens / min(ours), "plain": tokens / min(plain)}
    print(f"\nMLM continued pretraining, BERT dim 128 x 2 layers, batch {batch} x {T} ids, {steps} steps "
          f"(best of {repeats})")
    print(f"sslkit run (mlm objective): {out['sslkit']:.0f} tokens/s; plain loop + DataCollatorForLanguageModeling:"
          f" {out['plain']:.0f} tokens/s; ratio {out['sslkit'] / out['plain']:.2f}x (target >= 1.0x)")
    return out


# ---------------------------------------------------------------- PPO
def ppo(repeats: int, threads: int) -> list:
    import sslkit
    from sslkit.encoders.hf_tiny import save_tiny

    lengths = (12, 24) if SMOKE else (12, 48, 128, 256)
    B, iters = 16, 1 if SMOKE else 2
    tmp = Path(tempfile.mkdtemp(prefix="hf_ppo_"))
    folder = save_tiny("gpt2", tmp / "gpt2", dim=64, layers=2, heads=4, positions=280)
    rows = []
    for n in lengths:
        recipe = {"seed": 0, "data": {"name": "rlhf_toy", "layout": "prompts", "max_length": 16, "prompts": 400,
                                      "test_prompts": 16},
                  "encoder": {"name": "hf", "model": str(folder)},
                  "objectives": [{"name": "ppo", "reward_model": None, "reward_fn": "sslkit.data.rlhf_task:vowel_reward",
                                  "reference": None, "response_tokens": n, "ppo_epochs": 4, "minibatch_size": B,
                                  "eval_prompts": 0}],
                  "trainer": {"max_steps": 4 * iters, "batch_size": B, "progress": False, "threads": threads,
                              "eval_every": 10**9, "log_every": 10**9, "checkpoint_every": 10**9,
                              "optimizer": {"name": "adamw", "lr": 1e-5}}}
        ours = min(sslkit.run(recipe, out=tmp / f"run{n}_{i}").metrics["train_time_s"] for i in range(repeats)) / iters
        theirs = trl_ppo_iteration(folder, n, B, iters, repeats)
        rows.append({"response": n, "sslkit": ours, "trl": theirs})
    print(f"\nPPO iteration (rollout of {B} + 4 epochs of updates), tiny GPT-2 dim 64 x 2 layers: seconds (best of "
          f"{repeats}, mean of {iters} iterations)")
    print(f"{'response':>9} {'sslkit':>8} {'TRL PPOTrainer':>15} {'TRL / sslkit':>13}")
    for r in rows:
        trl = f"{r['trl']:.3f}" if isinstance(r["trl"], float) else r["trl"]
        ratio = f"{r['trl'] / r['sslkit']:.2f}x" if isinstance(r["trl"], float) else "-"
        print(f"{r['response']:>9} {r['sslkit']:>8.3f} {trl:>15} {ratio:>13}")
    return rows


def trl_ppo_iteration(folder, response: int, batch: int, iters: int, repeats: int):
    """Seconds per PPOTrainer iteration (rollout + 4 PPO epochs, one minibatch each) on the model in
    ``folder``, a value and a reward model of the same shapes; or why it could not run."""
    try:
        from datasets import Dataset
        from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
        try:
            from trl import PPOConfig, PPOTrainer
        except ImportError:  # trl >= 1.x keeps it under experimental
            from trl.experimental.ppo import PPOConfig, PPOTrainer
    except ImportError as exc:
        return f"not installed ({exc.name})"
    tok = AutoTokenizer.from_pretrained(folder)
    tok.pad_token = tok.eos_token  # as TRL's examples do for GPT-2
    tok.padding_side = "left"  # what TRL's generation expects
    prompts = Dataset.from_dict({"input_ids": [tok(w + ">")["input_ids"] for w in ["cat", "dog", "tree", "ship"] * 64]})
    times = []
    for r in range(repeats):
        args = PPOConfig(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=batch, num_mini_batches=1,
                         num_ppo_epochs=4, response_length=response, total_episodes=batch * iters,
                         report_to=[], logging_steps=10**9, save_strategy="no", num_sample_generations=0,
                         stop_token="eos", missing_eos_penalty=None, seed=r, use_cpu=True, bf16=False,
                         dataloader_num_workers=0)
        policy = AutoModelForCausalLM.from_pretrained(folder)
        ref = AutoModelForCausalLM.from_pretrained(folder)
        value = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1)
        reward = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1)
        trainer = PPOTrainer(args=args, processing_class=tok, model=policy, ref_model=ref, reward_model=reward,
                             value_model=value, train_dataset=prompts)
        start = time.perf_counter()
        trainer.train()
        times.append((time.perf_counter() - start) / iters)
    return min(times)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", default="all", choices=["generation", "mlm", "ppo", "all"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1 if SMOKE else 3)
    a = parser.parse_args()
    torch.set_num_threads(a.threads)
    print(f"torch threads: {torch.get_num_threads()}")
    if a.part in ("generation", "all"):
        generation(a.repeats)
    if a.part in ("mlm", "all"):
        mlm(a.repeats, a.threads)
    if a.part in ("ppo", "all"):
        ppo(a.repeats, a.threads)
