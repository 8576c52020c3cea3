"""Users' own text: a folder of ``.txt`` files, with one subfolder per class or none (unlabeled)."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from ..errors import ConfigError
from ..registry import register
from ..schema import Count
from .text import TokenizerSpec, text_examples


@register("datasets", "text_files")
def text_files(seed: int, *, root: str, split: Literal["file", "paragraph", "line"] = "file",
               pattern: str = "*.txt", tokenizer: TokenizerSpec = "byte", max_length: Count = 128):
    """Text documents under ``root``. With subfolders, each subfolder is a class (ImageFolder-style);
    without, the corpus is unlabeled.

    split: one document per file, per blank-line paragraph, or per line. pattern: file glob.
    tokenizer: a registered tokenizer. max_length: ids per document.
    """
    base = Path(root)
    if not base.is_dir():
        raise ConfigError("data.root", f"folder not found: {root}")
    classes = sorted(p.name for p in base.iterdir() if p.is_dir())
    groups = [(c, sorted((base / c).rglob(pattern))) for c in classes] or [(None, sorted(base.glob(pattern)))]
    texts, labels = [], []
    for label, (_, files) in enumerate(groups):
        for f in files:
            try:
                content = f.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise ConfigError("data.root", f"{f}: not UTF-8 text ({exc.reason})") from None
            docs = {"file": [content], "paragraph": content.split("\n\n"), "line": content.splitlines()}[split]
            for d in docs:
                if d.strip():
                    texts.append(d.strip())
                    labels.append(label)
    if not texts:
        raise ConfigError("data.root", f"no non-empty documents matching '{pattern}' under {root}")
    return text_examples(texts, labels if classes else None, classes, tokenizer, max_length, "text_files")
