"""What ``Trainer`` reads: data sets of one training split (token ids, cached features or cached
hidden states) and their collators (`PadCollator` runs transformers' ``DataCollatorWithPadding``)."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch

from .tokens import TextTask, TokenizedTexts

__all__ = ["pad_tokenizer", "TokenRows", "PadCollator", "FeatureRows", "StackCollator",
           "StateRows", "StateCollator", "TokenCount"]


@functools.lru_cache(maxsize=8)
def pad_tokenizer(pad_id: int):
    """A tokenizer that knows only its padding id: what ``DataCollatorWithPadding`` needs to pad
    ids that were tokenized once, up front (`TokenizedTexts`)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(WordLevel({"[PAD]": int(pad_id)}, unk_token="[PAD]"))
    out = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="[PAD]")
    out.padding_side = "right"
    if out.pad_token_id != int(pad_id):
        raise RuntimeError(f"pad_id: the padding tokenizer gives {out.pad_token_id}, not {pad_id}")
    return out


class TokenCount:
    """Real (attention-mask) and padded tokens the collator handed out."""

    def __init__(self):
        self.real = 0
        self.padded = 0


class TokenRows(torch.utils.data.Dataset):
    """Example ``i`` of a `TextTask`: framed ids of each slot (``input_ids_a``, ``input_ids_b``)
    and, when ``targets`` are given, its ``labels`` row."""

    def __init__(self, texts: Sequence[TokenizedTexts], targets: np.ndarray | None, max_length: int,
                 truncation_side: str):
        self.texts, self.max_length, self.side = tuple(texts), max_length, truncation_side
        self.targets = None if targets is None else np.asarray(targets, dtype=np.float32)

    @classmethod
    def of(cls, task: TextTask, targets, max_length: int, truncation_side: str) -> TokenRows:
        return cls(task.inputs, targets, max_length, truncation_side)

    def __len__(self) -> int:
        return len(self.texts[0])

    def __getitem__(self, i):
        out = {f"input_ids_{k}": t.framed(i, self.max_length, self.side) for k, t in zip("ab", self.texts)}
        if self.targets is not None:
            out["labels"] = self.targets[i]
        return out


class PadCollator:
    """Examples -> ``{"input_ids", "attention_mask"[, "labels"]}``: slot ``a`` texts, then slot
    ``b`` texts, padded together on the right by ``DataCollatorWithPadding`` (so ``r(A)`` and
    ``r(B)`` come from one forward pass); real and padded tokens counted in ``count``."""

    def __init__(self, pad_id: int, count: TokenCount | None = None):
        from transformers import DataCollatorWithPadding

        self.pad = DataCollatorWithPadding(pad_tokenizer(int(pad_id)), padding="longest",
                                           return_tensors="pt")
        self.count = count

    def __call__(self, features: list[dict]) -> dict:
        texts = [{"input_ids": f[k]} for k in ("input_ids_a", "input_ids_b") if k in features[0]
                 for f in features]
        out = dict(self.pad(texts))
        if self.count is not None:
            self.count.real += int(out["attention_mask"].sum())
            self.count.padded += int(out["attention_mask"].numel())
        if "labels" in features[0]:
            out["labels"] = torch.from_numpy(np.stack([f["labels"] for f in features]))
        return out


class FeatureRows(torch.utils.data.Dataset):
    """Example ``i`` as cached pooled features of each slot (head-only runs)."""

    def __init__(self, features: Sequence[np.ndarray], targets: np.ndarray):
        self.features = tuple(torch.as_tensor(np.asarray(f, dtype=np.float32)) for f in features)
        self.targets = np.asarray(targets, dtype=np.float32)

    def __len__(self) -> int:
        return int(self.features[0].shape[0])

    def __getitem__(self, i):
        out = {f"features_{k}": f[i] for k, f in zip("ab", self.features)}
        out["labels"] = self.targets[i]
        return out


class StackCollator:
    """Examples -> ``{"features": (slots * m, H), "labels"}`` (slot ``a`` rows, then ``b``)."""

    def __call__(self, features: list[dict]) -> dict:
        keys = [k for k in ("features_a", "features_b") if k in features[0]]
        return {"features": torch.stack([f[k] for k in keys for f in features]),
                "labels": torch.from_numpy(np.stack([f["labels"] for f in features]))}


class StateRows(torch.utils.data.Dataset):
    """Example ``i`` as the cached hidden states entering the top blocks (`w2s_theory.partial`)."""

    def __init__(self, cached: Sequence, targets: np.ndarray | None):
        self.cached = tuple(cached)
        self.targets = None if targets is None else np.asarray(targets, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.cached[0])

    def __getitem__(self, i):
        out = {f"states_{k}": c.states[c.offsets[i]:c.offsets[i + 1]] for k, c in zip("ab", self.cached)}
        if self.targets is not None:
            out["labels"] = self.targets[i]
        return out


class StateCollator:
    """Examples -> ``{"states": (slots * m, L, H), "mask": (slots * m, L), "labels"}``, padded on
    the right to the longest text of the batch."""

    def __call__(self, features: list[dict]) -> dict:
        rows = [f[k] for k in ("states_a", "states_b") if k in features[0] for f in features]
        L, H = max(r.shape[0] for r in rows), rows[0].shape[1]
        states = np.zeros((len(rows), L, H), dtype=np.float32)
        mask = np.zeros((len(rows), L), dtype=np.int64)
        for j, r in enumerate(rows):
            states[j, :r.shape[0]] = r
            mask[j, :r.shape[0]] = 1
        out = {"states": torch.from_numpy(states), "mask": torch.from_numpy(mask)}
        if "labels" in features[0]:
            out["labels"] = torch.from_numpy(np.stack([f["labels"] for f in features]))
        return out
