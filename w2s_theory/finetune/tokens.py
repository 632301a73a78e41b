"""Token containers of fine-tuning: `TokenizedTexts` (ragged ids, framed on demand) and `TextTask`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["special_frame", "TokenizedTexts", "TextTask"]


def special_frame(tokenizer) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The special-token ids a tokenizer puts before and after one text (BERT: ``[CLS]``, ``[SEP]``)."""
    bare = tokenizer("hello world", add_special_tokens=False)["input_ids"]
    full = tokenizer("hello world", add_special_tokens=True)["input_ids"]
    for k in range(len(full) - len(bare) + 1):
        if full[k:k + len(bare)] == bare:
            return tuple(full[:k]), tuple(full[k + len(bare):])
    raise ValueError("tokenizer: cannot locate the text between its special tokens")


@dataclass
class TokenizedTexts:
    """Ragged token ids of ``n`` texts *without* special tokens, plus how to frame them.

    Attributes:
        ids: flat ``(total,)`` integer array (uint16 when the vocabulary fits).
        offsets: ``(n + 1,)`` int64; text ``i`` is ``ids[offsets[i]:offsets[i+1]]``.
        prefix, suffix: special-token ids put around each text (BERT: ``[CLS]``, ``[SEP]``).
        pad_id: padding id (padding is on the right; the mask marks real tokens).

    `batch` truncates each text to ``max_length - len(prefix) - len(suffix)``
    tokens from the left or the right, frames it and pads: the same ids as
    ``tokenizer(texts, truncation=True, max_length=L, padding=True)`` with the
    tokenizer's ``truncation_side`` set alike.

    Examples:
        >>> import numpy as np
        >>> from w2s_theory.finetune import TokenizedTexts
        >>> t = TokenizedTexts(np.array([5, 6, 7, 8, 9], np.uint16), np.array([0, 3, 5]), (1,), (2,), 0)
        >>> ids, mask = t.batch([0, 1], max_length=4, truncation_side="left")
        >>> ids.tolist(), mask.tolist()
        ([[1, 6, 7, 2], [1, 8, 9, 2]], [[1, 1, 1, 1], [1, 1, 1, 1]])
    """

    ids: np.ndarray
    offsets: np.ndarray
    prefix: tuple[int, ...]
    suffix: tuple[int, ...]
    pad_id: int

    def __post_init__(self):
        self.ids = np.asarray(self.ids)
        self.offsets = np.asarray(self.offsets, dtype=np.int64)
        if self.ids.ndim != 1 or self.offsets.ndim != 1 or self.offsets.size < 1:
            raise ValueError("ids/offsets: expected 1-D arrays")
        if self.offsets[0] != 0 or self.offsets[-1] != self.ids.size or np.any(np.diff(self.offsets) < 0):
            raise ValueError("offsets: must start at 0, end at len(ids) and be non-decreasing")
        self.prefix = tuple(int(i) for i in self.prefix)
        self.suffix = tuple(int(i) for i in self.suffix)

    def __len__(self) -> int:
        return int(self.offsets.size - 1)

    @classmethod
    def from_texts(cls, tokenizer, texts: Sequence[str]) -> TokenizedTexts:
        """Tokenise ``texts`` once (no special tokens, no truncation) with a HF tokenizer."""
        enc = tokenizer(list(texts), add_special_tokens=False, truncation=False,
                        verbose=False)["input_ids"]
        lens = np.fromiter((len(e) for e in enc), dtype=np.int64, count=len(enc))
        offsets = np.concatenate([[0], np.cumsum(lens)])
        flat = np.fromiter((t for e in enc for t in e), dtype=np.int64, count=int(offsets[-1]))
        vocab = len(tokenizer)
        dtype = np.uint16 if vocab <= np.iinfo(np.uint16).max + 1 else np.int32
        prefix, suffix = special_frame(tokenizer)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        return cls(flat.astype(dtype), offsets, prefix, suffix, int(pad))

    def lengths(self, max_length: int) -> np.ndarray:
        """Framed lengths after truncation, ``(n,)``."""
        extra = len(self.prefix) + len(self.suffix)
        return np.minimum(np.diff(self.offsets), max_length - extra) + extra

    def subset(self, idx) -> TokenizedTexts:
        """The texts ``idx`` (in that order) as a new object."""
        idx = np.asarray(idx, dtype=np.int64)
        lens = np.diff(self.offsets)[idx]
        offsets = np.concatenate([[0], np.cumsum(lens)])
        parts = [self.ids[self.offsets[i]:self.offsets[i + 1]] for i in idx]
        ids = np.concatenate(parts) if parts else self.ids[:0]
        return TokenizedTexts(ids, offsets, self.prefix, self.suffix, self.pad_id)

    def framed(self, i: int, max_length: int, truncation_side: str = "left") -> list[int]:
        """Text ``i`` truncated to ``max_length`` tokens with its special tokens: the ids
        ``tokenizer(text, truncation=True, max_length=max_length)`` gives (a list of ints).

        Examples:
            >>> import numpy as np
            >>> t = TokenizedTexts(np.array([5, 6, 7], np.uint16), np.array([0, 3]), (1,), (2,), 0)
            >>> t.framed(0, 4), t.framed(0, 4, "right")
            ([1, 6, 7, 2], [1, 5, 6, 2])
        """
        keep = max_length - len(self.prefix) - len(self.suffix)
        t = self.ids[self.offsets[i]:self.offsets[i + 1]]
        if t.size > keep:
            t = t[-keep:] if truncation_side == "left" else t[:keep]
        return [*self.prefix, *t.tolist(), *self.suffix]

    def batch(self, idx, max_length: int, truncation_side: str = "left",
              pad_to: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded ``(input_ids, attention_mask)``, both int64 ``(len(idx), L)``.

        ``L`` is the longest framed text of the batch (or ``pad_to`` when larger).
        """
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        keep = max_length - len(self.prefix) - len(self.suffix)
        rows = []
        for i in idx:
            t = self.ids[self.offsets[i]:self.offsets[i + 1]]
            if t.size > keep:
                t = t[-keep:] if truncation_side == "left" else t[:keep]
            rows.append(t)
        L = max([len(r) for r in rows], default=0) + len(self.prefix) + len(self.suffix)
        if pad_to is not None:
            L = max(L, int(pad_to))
        out = np.full((idx.size, L), self.pad_id, dtype=np.int64)
        mask = np.zeros((idx.size, L), dtype=np.int64)
        p, s = np.asarray(self.prefix, np.int64), np.asarray(self.suffix, np.int64)
        for j, t in enumerate(rows):
            row = np.concatenate([p, t.astype(np.int64), s])
            out[j, :row.size] = row
            mask[j, :row.size] = 1
        return torch.from_numpy(out), torch.from_numpy(mask)


@dataclass
class TextTask:
    """A labelled split: one text per example (binary) or a pair ``(A, B)`` (pairwise).

    Attributes:
        inputs: ``(texts,)`` or ``(texts_a, texts_b)`` as `TokenizedTexts`.
        labels: ``(n,)`` int8 ground truth (pairwise: 1 when slot A holds the chosen reply).
    """

    inputs: tuple[TokenizedTexts, ...]
    labels: np.ndarray

    def __post_init__(self):
        self.inputs = tuple(self.inputs)
        self.labels = np.asarray(self.labels)
        if len(self.inputs) not in (1, 2):
            raise ValueError(f"inputs: 1 (binary) or 2 (pairwise) token sets, got {len(self.inputs)}")
        for t in self.inputs:
            if len(t) != self.labels.shape[0]:
                raise ValueError(f"labels: {self.labels.shape[0]} labels for {len(t)} texts")

    @property
    def task(self) -> str:
        """``pairwise`` (two texts per example) or ``binary`` (one text; also the data of a
        ``classification`` config)."""
        return "pairwise" if len(self.inputs) == 2 else "binary"

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, idx) -> TextTask:
        """Rows ``idx`` (in that order)."""
        return TextTask(tuple(t.subset(idx) for t in self.inputs), self.labels[np.asarray(idx)])

    def real_tokens(self, max_length: int) -> int:
        """Framed, truncated tokens of all texts (what one epoch feeds the backbone)."""
        return int(sum(int(t.lengths(max_length).sum()) for t in self.inputs))
