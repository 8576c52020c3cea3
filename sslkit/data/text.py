"""Shared plumbing for text datasets: tokenise a list of documents into an id matrix."""
from __future__ import annotations

from typing import Annotated

import torch

from ..schema import Part, build
from .base import DataInfo, Examples

TokenizerSpec = Annotated[dict, Part("tokenizers", default="byte")]


def text_examples(texts, labels, class_names, tokenizer: dict, max_length: int, name: str) -> Examples:
    """Tokenise ``texts`` (the tokenizer is fitted on them) into ``x: [N, max_length]`` ids."""
    if max_length < 3:
        raise ValueError("max_length must leave room for <cls> and <sep> plus one token")
    tok = build("tokenizers", tokenizer, list(texts), path="data.tokenizer")
    x = tok.encode_batch(texts, max_length)
    columns = {"x": x}
    if labels is not None:
        columns["y"] = torch.as_tensor(labels, dtype=torch.long)
    info = DataInfo("text", (max_length,), len(class_names), list(class_names), tokenizer=tok, name=name)
    return Examples(columns, info)
