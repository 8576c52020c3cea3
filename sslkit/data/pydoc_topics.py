"""An unlabeled English corpus that ships with every CPython: the help topics of ``pydoc_data.topics``."""
from __future__ import annotations

from ..registry import register
from ..schema import Count, NonNegativeInt
from .text import TokenizerSpec, text_examples


def paragraphs(min_chars: int = 40) -> list:
    from pydoc_data.topics import topics

    out = []
    for key in sorted(topics):
        for para in topics[key].split("\n\n"):
            para = " ".join(para.split())
            if len(para) >= min_chars:
                out.append(para)
    return out


@register("datasets", "pydoc_topics")
def pydoc_topics(seed: int, *, tokenizer: TokenizerSpec = "byte", max_length: Count = 128, min_chars: NonNegativeInt = 40):
    """Paragraphs of Python's built-in help topics (``pydoc_data.topics``) as an unlabeled text corpus.

    tokenizer: a registered tokenizer. max_length: ids per paragraph. min_chars: skip shorter paragraphs.
    """
    return text_examples(paragraphs(min_chars), None, [], tokenizer, max_length, "pydoc_topics")
