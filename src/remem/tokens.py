"""Counting the tokens a model would be handed, with the bundled MiniLM WordPiece tokenizer
(tiktoken downloads its encodings at run time, which an offline machine cannot). It
approximates a chat model's own tokenizer; it does not match it."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from remem.embedders.minilm import TOKENIZER_PATH

TOKENIZER_NAME = "all-MiniLM-L6-v2 WordPiece"


@functools.cache
def _tokenizer() -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def token_counts(texts: Sequence[str]) -> list[int]:
    """Tokens in each text, special tokens excluded."""
    if not texts:
        return []
    encodings = _tokenizer().encode_batch(list(texts), add_special_tokens=False)
    return [len(encoding.ids) for encoding in encodings]


def count_tokens(texts: Sequence[str]) -> int:
    """Tokens in all texts together, special tokens excluded."""
    return sum(token_counts(texts))
