"""Shared plumbing for text datasets: tokenise a list of documents into an id matrix, with the tokenizer
fitted on the training documents only."""
from __future__ import annotations

from typing import Annotated

import torch

from ..errors import ConfigError
from ..schema import Part, build
from .base import UNLABELED, DataInfo, Examples

TokenizerSpec = Annotated[dict, Part("tokenizers", default="byte")]


def text_examples(texts, labels, class_names, tokenizer: dict, max_length: int, name: str) -> Examples:
    """Documents tokenised into ``x: [N, max_length]`` ids once the test split is drawn: the tokenizer is
    fitted on the training rows' texts only (:attr:`Examples.fit`), as a vocabulary learned from the test
    documents would carry their words into training; then every row, test rows included, is encoded."""
    if max_length < 3:
        raise ConfigError("data.max_length", f"must leave room for <cls> and <sep> plus one token, got {max_length}")
    texts = list(texts)
    y = torch.full((len(texts),), UNLABELED, dtype=torch.long) if labels is None else torch.as_tensor(labels, dtype=torch.long)

    def describe(tok=None) -> DataInfo:
        return DataInfo("text", (max_length,), len(class_names), list(class_names), tokenizer=tok, name=name)

    def fit(train_rows):
        tok = build("tokenizers", tokenizer, [texts[i] for i in train_rows], path="data.tokenizer")
        return {"x": tok.encode_batch(texts, max_length)}, describe(tok)

    return Examples({"y": y}, describe(), fit=fit)
