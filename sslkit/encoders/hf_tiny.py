"""Tiny Hugging Face models with random weights and a tokenizer trained on Python's own help text,
written with ``save_pretrained``: what the tests, the tutorial and the benchmarks load by path, since
nothing may be downloaded. A folder made here has the layout of any model on the Hub
(``config.json``, ``model.safetensors``, ``tokenizer.json`` ...), so it stands in for a real one.

    python -m sslkit.encoders.hf_tiny bert runs/models/tiny-bert    # also: gpt2, llama

Kinds: ``bert`` (WordPiece, ``[PAD] [UNK] [CLS] [SEP] [MASK]``, a masked-LM head), ``gpt2`` (byte-level
BPE with ``<|endoftext|>`` as its only special token, as GPT-2's own tokenizer), ``llama`` (byte-level
BPE with ``<s> </s> <unk>``, a ``<s>`` prepended to every text, no pad token).
"""
from __future__ import annotations

import sys
from pathlib import Path

KINDS = ("bert", "gpt2", "llama")


def python_text() -> list:
    """The help topics of ``pydoc_data`` (ships with CPython): the tokenizers' training corpus."""
    from pydoc_data.topics import topics

    return [topics[k] for k in sorted(topics)]


def tiny_tokenizer(kind: str, vocab_size: int = 1000):
    """A ``transformers`` fast tokenizer of ``kind``, trained with ``tokenizers`` on :func:`python_text`."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if kind == "bert":
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
    else:
        specials = ["<|endoftext|>"] if kind == "gpt2" else ["<unk>", "<s>", "</s>"]
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(python_text(), trainer)
    if kind == "bert":
        cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
        tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
                                                           special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
        return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                       sep_token="[SEP]", mask_token="[MASK]", model_max_length=128)
    if kind == "gpt2":
        return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                       unk_token="<|endoftext|>", model_max_length=128)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", tok.token_to_id("<s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   model_max_length=128)


def tiny_model(kind: str, vocab_size: int, dim: int = 32, layers: int = 2, heads: int = 2, positions: int = 128,
               **ids):
    """A randomly initialised ``transformers`` model of ``kind`` with a language-model head."""
    from transformers import BertConfig, BertForMaskedLM, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    if kind == "bert":
        cfg = BertConfig(vocab_size=vocab_size, hidden_size=dim, num_hidden_layers=layers, num_attention_heads=heads,
                         intermediate_size=4 * dim, max_position_embeddings=positions, **ids)
        return BertForMaskedLM(cfg)
    if kind == "gpt2":
        cfg = GPT2Config(vocab_size=vocab_size, n_embd=dim, n_layer=layers, n_head=heads, n_positions=positions, **ids)
        return GPT2LMHeadModel(cfg)
    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=dim, num_hidden_layers=layers, num_attention_heads=heads,
                      num_key_value_heads=heads, intermediate_size=4 * dim, max_position_embeddings=positions, **ids)
    return LlamaForCausalLM(cfg)


def save_tiny(kind: str, folder, dim: int = 32, layers: int = 2, heads: int = 2, positions: int = 128,
              seed: int = 0) -> Path:
    """Build a tiny ``kind`` model and its tokenizer and ``save_pretrained`` both into ``folder``."""
    import torch

    if kind not in KINDS:
        raise ValueError(f"unknown kind '{kind}' (kinds: {', '.join(KINDS)})")
    tok = tiny_tokenizer(kind)
    tok.model_max_length = positions
    ids = {k: getattr(tok, k) for k in ("pad_token_id", "bos_token_id", "eos_token_id") if getattr(tok, k) is not None}
    torch.manual_seed(seed)
    model = tiny_model(kind, len(tok), dim, layers, heads, positions, **ids)
    folder = Path(folder)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in KINDS:
        sys.exit(f"usage: python -m sslkit.encoders.hf_tiny {{{'|'.join(KINDS)}}} FOLDER")
    print(save_tiny(sys.argv[1], sys.argv[2]))
