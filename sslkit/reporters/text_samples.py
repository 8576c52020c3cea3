"""``samples.txt``: continuations of test prompts by a causal language model."""
from __future__ import annotations

import torch

from ..objectives.clm import CausalLM
from ..registry import register
from ..text.generate import generate, lm_stepper
from .base import Reporter, RunContext


@register("reporters", "text_samples")
class TextSamples(Reporter):
    """Writes, for the first two test rows cut to their first 16 ids, the greedy continuation and one
    sampled with the ``clm`` objective's ``temperature``, ``top_k`` and ``top_p`` (``sample_tokens`` ids
    each, seed ``seed``) into ``samples.txt``."""

    needs = (CausalLM, "is a causal language model (clm)")

    def report(self, run: RunContext) -> dict:
        _, obj = self.objective(run)
        if run.run_dir is None or not obj.sample_tokens or len(run.data.test) == 0:
            return {}
        encoder, tok = run.encoder, obj.tokenizer
        prompt = run.data.test["x"][:2, :16].to(run.device)
        g = torch.Generator(device=run.device).manual_seed(run.seed)
        fn = lambda ids: obj.token_logits(ids, encoder)  # noqa: E731
        step = lm_stepper(encoder, obj.head)  # key/value-cached decoding where the encoder has it
        greedy = generate(fn, prompt, obj.sample_tokens, encoder.max_length, greedy=True, step_fn=step)
        sampled = generate(fn, prompt, obj.sample_tokens, encoder.max_length, obj.temperature, obj.top_k,
                           obj.top_p, generator=g, step_fn=step)
        lines = []
        for i in range(len(prompt)):
            lines += [f"prompt : {tok.decode(prompt[i].tolist())!r}",
                      f"greedy : {tok.decode(greedy[i, 16:].tolist())!r}",
                      f"sampled: {tok.decode(sampled[i, 16:].tolist())!r}", ""]
        run.file("samples.txt").write_text("\n".join(lines))
        return {}
