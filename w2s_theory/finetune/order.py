"""Training order: a seeded permutation per epoch, optionally length-grouped (transformers'
``get_length_grouped_indices``), cut to whole batches; and the `OrderSampler` that feeds it to
``Trainer``."""

from __future__ import annotations

import numpy as np
import torch

from .config import FinetuneConfig
from .data import MAX_CHUNKS, padded_tokens
from .tokens import TextTask

__all__ = ["batch_order", "task_lengths", "train_order", "OrderSampler", "real_token_fraction"]


def _grouped(lengths: np.ndarray, batch_size: int, group: int, seed: int, epoch: int) -> np.ndarray:
    from transformers.trainer_pt_utils import get_length_grouped_indices

    g = torch.Generator().manual_seed(int(np.random.default_rng([int(seed), 1, epoch]).integers(2**62)))
    return np.asarray(get_length_grouped_indices(lengths.tolist(), batch_size, mega_batch_mult=int(group),
                                                 generator=g), dtype=np.int64)


def batch_order(n: int, batch_size: int, seed: int, epochs: int = 1, *,
                lengths: np.ndarray | None = None, group: int = 0) -> np.ndarray:
    """Training order: per epoch a seeded permutation, cut to whole batches; ``(steps, batch_size)``.

    Epoch ``e`` uses ``numpy.random.default_rng([seed, 0, e])``; the incomplete last
    batch of each epoch is dropped (so every step averages ``batch_size`` examples).

    With ``group > 0`` and ``lengths`` (``(n,)`` token lengths), epoch ``e`` is transformers'
    ``get_length_grouped_indices(lengths, batch_size, mega_batch_mult=group)`` (what
    ``group_by_length`` runs) under a torch generator seeded from ``[seed, 1, e]``: a random
    permutation cut into mega-batches of ``group`` batches, each sorted by length (longest
    first), the longest example moved to the first batch; every example is still seen once per
    epoch. ``group = 0`` gives the plain order.

    Examples:
        >>> import numpy as np
        >>> from w2s_theory.finetune import batch_order
        >>> batch_order(10, 4, seed=0).shape
        (2, 4)
        >>> lens = np.arange(64) % 8
        >>> o = batch_order(64, 8, seed=0, lengths=lens, group=8)
        >>> sorted(o.ravel().tolist()) == list(range(64)), int(np.ptp(lens[o], axis=1).max())
        (True, 0)
    """
    if n < batch_size:
        raise ValueError(f"batch_size: {batch_size} exceeds the {n} training examples")
    if not isinstance(group, (int, np.integer)) or group < 0:
        raise ValueError(f"group: must be an integer >= 0, got {group!r}")
    if group and lengths is None:
        raise ValueError("lengths: needed when group > 0")
    per = n // batch_size
    out = []
    for e in range(epochs):
        if group:
            lens = np.asarray(lengths).reshape(-1)
            if lens.shape != (n,):
                raise ValueError(f"lengths: shape {lens.shape}, expected ({n},)")
            perm = _grouped(lens, batch_size, group, seed, e)[: per * batch_size]
        else:
            perm = np.random.default_rng([int(seed), 0, e]).permutation(n)[: per * batch_size]
        out.append(perm)
    return np.concatenate(out).reshape(epochs * per, batch_size)


def task_lengths(task: TextTask, max_length: int) -> np.ndarray:
    """Per example, the longest framed text after truncation (pairs: max of both), ``(n,)``."""
    return np.max(np.stack([t.lengths(max_length) for t in task.inputs]), axis=0)


def train_order(task: TextTask, cfg: FinetuneConfig) -> np.ndarray:
    """`batch_order` of a run (length-grouped when ``cfg.group_by_length``)."""
    if cfg.group_by_length:
        return batch_order(len(task), cfg.batch_size, cfg.seed, cfg.epochs,
                           lengths=task_lengths(task, cfg.max_length), group=cfg.group_by_length)
    return batch_order(len(task), cfg.batch_size, cfg.seed, cfg.epochs)


def real_token_fraction(task: TextTask, order: np.ndarray, max_length: int, micro_batch: int,
                        max_chunks: int = MAX_CHUNKS) -> float:
    """Real tokens / padded tokens fed to the backbone when ``order`` (``(steps, batch)``) is cut
    into micro-batches of ``micro_batch`` examples whose texts (both slots of a pair) are padded
    in at most ``max_chunks`` length chunks (`w2s_theory.finetune.data.padded_tokens`, what the
    training collator does).

    Examples:
        >>> import numpy as np
        >>> from w2s_theory.finetune import TextTask, TokenizedTexts
        >>> t = TokenizedTexts(np.arange(6, dtype=np.uint16), np.array([0, 1, 6]), (), (), 0)
        >>> real_token_fraction(TextTask((t,), np.array([0, 1])), np.array([[0, 1]]), 8, 2, 1)
        0.6
    """
    lens = np.stack([t.lengths(max_length) for t in task.inputs])      # (slots, n)
    rows = np.asarray(order, dtype=np.int64).reshape(-1, micro_batch)
    real = int(lens[:, rows].sum())
    padded = sum(padded_tokens(lens[:, r].ravel(), max_chunks) for r in rows)
    return float(real / padded)


class OrderSampler(torch.utils.data.Sampler):
    """Example indices of one epoch of a fixed ``(steps, batch)`` order (`train_order`); ``Trainer``
    calls ``set_epoch`` at each epoch (and a resumed run skips the batches already trained)."""

    def __init__(self, order: np.ndarray, epochs: int):
        self.order = np.asarray(order, dtype=np.int64).reshape(-1)
        if self.order.size % epochs:
            raise ValueError(f"order: {self.order.size} indices do not split into {epochs} epochs")
        self.per_epoch = self.order.size // epochs
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.per_epoch

    def __iter__(self):
        s = self.epoch * self.per_epoch
        return iter(self.order[s:s + self.per_epoch].tolist())
