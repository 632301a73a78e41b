"""From texts to vectors: token ids (`TokenIds`), length buckets, pooling of hidden states, and
the batched forward pass (`embed_token_ids`) or static embedding (`static_embed`)."""

from __future__ import annotations

import contextlib
import inspect
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix

from ..atomic_io import atomic_write_bytes
from ..hub import pool
from .spec import POOLINGS


# ----------------------------------------------------------------------- tokens
@dataclass(frozen=True)
class TokenIds:
    """Token ids of ``n`` texts, flat: text ``i`` is ``ids[offsets[i]:offsets[i+1]]``."""

    ids: np.ndarray
    offsets: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return self.offsets.size - 1

    def row(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i]:self.offsets[i + 1]]

    @classmethod
    def from_lists(cls, rows: Sequence[Sequence[int]]) -> TokenIds:
        """Pack lists of token ids.

        Examples:
            >>> TokenIds.from_lists([[5, 6], [7]]).lengths
            array([2, 1])
        """
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.fromiter((t for r in rows for t in r), dtype=np.int64, count=int(offsets[-1]))
        dt = np.uint16 if flat.size == 0 or flat.max() < 65536 else np.int32
        return cls(flat.astype(dt), offsets)

    def save(self, path: str | os.PathLike) -> None:
        buf = io.BytesIO()
        np.savez(buf, ids=self.ids, offsets=self.offsets)
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike) -> TokenIds:
        with np.load(path) as z:
            ids, offsets = z["ids"], z["offsets"]
        if offsets.ndim != 1 or offsets[0] != 0 or offsets[-1] != ids.size or np.any(np.diff(offsets) < 0):
            raise ValueError(f"{path}: inconsistent token offsets")
        return cls(ids, offsets)


def tokenize(tokenizer, texts: Sequence[str], *, max_length: int = 512,
             truncation_side: str = "left", add_special_tokens: bool = True) -> TokenIds:
    """Tokenize ``texts`` in one batched fast-tokenizer call, truncated to ``max_length``.

    Works with a transformers tokenizer (truncation side set for the call) or a raw
    ``tokenizers.Tokenizer`` (truncated here, keeping the last ``max_length`` tokens when
    ``truncation_side == "left"``).

    Examples:
        >>> from tokenizers import Tokenizer, models, pre_tokenizers
        >>> tk = Tokenizer(models.WordLevel({"a": 0, "b": 1, "[UNK]": 2}, unk_token="[UNK]"))
        >>> tk.pre_tokenizer = pre_tokenizers.Whitespace()
        >>> t = tokenize(tk, ["a b b a", "b"], max_length=3, add_special_tokens=False)
        >>> t.row(0).tolist(), t.row(1).tolist()
        ([1, 1, 0], [1])
    """
    texts = list(texts)
    if hasattr(tokenizer, "encode_batch") and not hasattr(tokenizer, "batch_encode_plus"):
        # a raw tokenizers.Tokenizer: switch padding off and truncation on for this call only
        pad, trunc = tokenizer.padding, tokenizer.truncation
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length, direction=truncation_side)
        try:
            enc = tokenizer.encode_batch(texts, add_special_tokens=add_special_tokens)
        finally:
            tokenizer.no_truncation()
            if trunc:
                tokenizer.enable_truncation(**trunc)
            if pad:
                tokenizer.enable_padding(**pad)
        return TokenIds.from_lists([e.ids for e in enc])
    old = tokenizer.truncation_side
    tokenizer.truncation_side = truncation_side
    try:
        rows = tokenizer(texts, truncation=True, max_length=max_length, padding=False,
                         add_special_tokens=add_special_tokens, return_attention_mask=False,
                         return_token_type_ids=False)["input_ids"]
    finally:
        tokenizer.truncation_side = old
    return TokenIds.from_lists(rows)


def length_buckets(lengths: np.ndarray, *, max_tokens: int = 16384, max_batch: int = 1024) -> list[np.ndarray]:
    """Split indices sorted by length into batches of at most ``max_tokens`` padded tokens.

    A batch's padded size is ``len(batch) * max(lengths[batch])``; every batch has at
    least one text (a text longer than ``max_tokens`` gets a batch of its own).

    Examples:
        >>> [b.tolist() for b in length_buckets(np.array([5, 1, 3, 2]), max_tokens=6)]
        [[1, 3], [2], [0]]
    """
    lengths = np.asarray(lengths)
    order = np.argsort(lengths, kind="stable")
    ls = lengths[order]
    batches, start = [], 0
    n = order.size
    while start < n:
        # (e - start) * ls[e - 1] grows with e: binary-search the largest end that fits
        lo, hi = start + 1, min(n, start + max_batch)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if (mid - start) * int(ls[mid - 1]) <= max_tokens:
                lo = mid
            else:
                hi = mid - 1
        batches.append(order[start:lo])
        start = lo
    return batches


def pool_hidden(hidden, mask, pooling: str = "mean"):
    """`w2s_theory.hub.pool` in float32, ``mask`` moved to ``hidden``'s device: ``(B, L, H)`` and
    ``(B, L)`` -> ``(B, H)``. On the CPU a row without real tokens is refused for ``last``.

    Examples:
        >>> import torch
        >>> h = torch.arange(12.).reshape(2, 3, 2); m = torch.tensor([[1, 1, 0], [0, 1, 1]])
        >>> pool_hidden(h, m, "mean").tolist(), pool_hidden(h, m, "last").tolist()
        ([[1.0, 2.0], [9.0, 10.0]], [[2.0, 3.0], [10.0, 11.0]])
    """
    if pooling not in POOLINGS[:3]:
        raise ValueError(f"pooling: must be 'mean', 'last' or 'cls', got {pooling!r}")
    h = hidden.float()
    m = mask.to(h.device)
    if pooling == "last" and h.device.type == "cpu" and not bool(m.bool().any(-1).all()):
        raise ValueError("mask: a row has no real token")   # no device sync on CUDA
    return pool(h, m, pooling, check=False)


@contextlib.contextmanager
def _layers_up_to(model, layer: int | None):
    """Run only the first ``layer + 1`` blocks while ``hidden_states[layer]`` is all we need.

    ``hidden_states[layer]`` (0 = embeddings) is the input of block ``layer``, so the blocks
    after it cannot change it; block ``layer`` itself is kept so that the final norm some
    decoders apply to the last entry never touches index ``layer``. Applies to stacks at
    ``model.layers`` (decoders) or ``model.encoder.layer`` (BERT-style); restored on exit.
    Roughly halves the cost of SmolLM2 at layer 15 of 30 and Gemma-3 at layer 9 of 18.
    """
    import torch

    n = getattr(model.config, "num_hidden_layers", None)
    holder = attr = None
    if isinstance(getattr(model, "layers", None), torch.nn.ModuleList):
        holder, attr = model, "layers"
    elif isinstance(getattr(getattr(model, "encoder", None), "layer", None), torch.nn.ModuleList):
        holder, attr = model.encoder, "layer"
    if layer is None or layer < 0 or n is None or holder is None or layer + 1 >= len(getattr(holder, attr)):
        yield
        return
    full = getattr(holder, attr)
    # self-check on a 3-token input: the truncated stack must give the same hidden_states[layer]
    # (transformers >= 5 records hidden states by hooks installed on the first call: make that
    # call on the full stack, then compare); on any mismatch the full model runs instead.
    probe = torch.ones((1, 3), dtype=torch.long, device=next(iter(model.parameters())).device)
    extra = _no_cache_kwargs(model)
    with torch.inference_mode():
        want = model(input_ids=probe, output_hidden_states=True, **extra).hidden_states[layer]
        setattr(holder, attr, full[:layer + 1])
        try:
            hs = model(input_ids=probe, output_hidden_states=True, **extra).hidden_states
            ok = len(hs) == layer + 2 and torch.allclose(hs[layer].float(), want.float(),
                                                         rtol=1e-3, atol=1e-3)
        except Exception:  # noqa: BLE001 - the optimisation is optional
            ok = False
    if not ok:
        setattr(holder, attr, full)
    try:
        yield
    finally:
        setattr(holder, attr, full)


def _no_cache_kwargs(model) -> dict:
    """``{"use_cache": False}`` for models whose forward takes it (decoders), else ``{}``."""
    return {"use_cache": False} if "use_cache" in inspect.signature(model.forward).parameters else {}


def embed_token_ids(model, tokens: TokenIds, *, layer: int | None = None, pooling: str = "mean",
                    device=None, max_tokens: int | None = None, max_batch: int = 1024,
                    pad_id: int = 0, pad_multiple: int | None = None, progress: bool = True,
                    desc: str = "embed") -> np.ndarray:
    """Pooled hidden states of pre-tokenized texts, in the input order -> float32 ``(n, H)``.

    The flat ids go to the device once; each length-sorted bucket (`length_buckets`)
    is gathered there into a right-padded ``(B, L)`` batch with its attention mask
    (``L`` rounded up to ``pad_multiple``: 8 on CUDA for tensor cores, 1 on CPU), run
    through the model in its own dtype under ``torch.inference_mode`` (no KV cache; for a
    middle ``layer`` only the blocks up to it run) and pooled in float32
    (`pool_hidden`). Only the final ``(n, H)`` array returns to the host.

    Args:
        model: a transformers base model (``AutoModel``), already on ``device``.
        layer: ``hidden_states`` index (``None`` = last layer, via ``last_hidden_state``).
        max_tokens: padded tokens per batch (default 8192 on CPU, 65536 on CUDA).

    Examples:
        >>> import torch
        >>> class Toy(torch.nn.Module):  # hidden state = token id, broadcast to 2 dims
        ...     config = type("C", (), {"hidden_size": 2})
        ...     def forward(self, input_ids, attention_mask, output_hidden_states=False):
        ...         h = input_ids.float()[..., None].expand(-1, -1, 2)
        ...         return type("O", (), {"last_hidden_state": h, "hidden_states": (h,)})
        >>> embed_token_ids(Toy(), TokenIds.from_lists([[1, 3], [0, 0, 6]]), device="cpu",
        ...                 progress=False)[:, 0].tolist()
        [2.0, 2.0]
    """
    import torch
    from tqdm.auto import tqdm

    if device is None:
        dev = next(iter(model.parameters())).device
    else:
        dev = torch.device(device)
    if max_tokens is None:
        max_tokens = 65536 if dev.type == "cuda" else 8192
    if pad_multiple is None:
        pad_multiple = 8 if dev.type == "cuda" else 1
    lengths = tokens.lengths
    n = len(tokens)
    if n and int(lengths.min()) < 1:
        raise ValueError(f"tokens: text {int(np.argmin(lengths))} has no tokens")
    out = torch.empty((n, model.config.hidden_size), dtype=torch.float32, device=dev)
    if n == 0:
        return out.cpu().numpy()
    batches = length_buckets(lengths, max_tokens=max_tokens, max_batch=max_batch)
    order = torch.from_numpy(np.concatenate(batches)).to(dev)
    ids_all = torch.from_numpy(tokens.ids.astype(np.int64)).to(dev)
    starts_all = torch.from_numpy(tokens.offsets[:-1].astype(np.int64)).to(dev)
    lens_all = torch.from_numpy(lengths.astype(np.int64)).to(dev)
    last_pos = max(int(tokens.ids.size) - 1, 0)
    want_hidden = layer is not None
    extra = _no_cache_kwargs(model)
    pos0 = 0
    with torch.inference_mode(), _layers_up_to(model, layer):
        for idx in tqdm(batches, desc=desc, disable=not progress, unit="batch", leave=False):
            b = idx.size
            L = int(lengths[idx].max())
            L = -(-L // pad_multiple) * pad_multiple
            idx_t = order[pos0:pos0 + b]
            pos0 += b
            ar = torch.arange(L, device=dev)
            mask = ar[None, :] < lens_all[idx_t][:, None]
            gather = (starts_all[idx_t][:, None] + ar[None, :]).clamp_max(last_pos)
            ids = torch.where(mask, ids_all[gather], pad_id)
            res = model(input_ids=ids, attention_mask=mask.long(), output_hidden_states=want_hidden,
                        **extra)
            h = res.hidden_states[layer] if want_hidden else res.last_hidden_state
            out[idx_t] = pool_hidden(h, mask, pooling)
    return out.cpu().numpy()


def static_embed(embedding: np.ndarray, tokens: TokenIds, pooling: str = "mean") -> np.ndarray:
    """Pool rows of a static embedding table over each text's tokens -> float32 ``(n, H)``.

    Examples:
        >>> E = np.arange(6, dtype=np.float32).reshape(3, 2)
        >>> static_embed(E, TokenIds.from_lists([[0, 2], [1]])).tolist()
        [[2.0, 3.0], [2.0, 3.0]]
    """
    lens = tokens.lengths
    if np.any(lens == 0):
        raise ValueError(f"tokens: text {int(np.flatnonzero(lens == 0)[0])} has no tokens")
    ids = np.clip(tokens.ids.astype(np.int64), 0, embedding.shape[0] - 1)
    if pooling == "last":
        return embedding[ids[tokens.offsets[1:] - 1]].astype(np.float32)
    if pooling != "mean":
        raise ValueError(f"pooling: must be 'mean' or 'last', got {pooling!r}")
    # row i of A holds 1/len_i at each of text i's token ids (repeats add up): A @ E = means
    weights = np.repeat(1.0 / lens, lens)
    a = csr_matrix((weights, ids, tokens.offsets), shape=(len(tokens), embedding.shape[0]))
    return np.asarray(a @ embedding.astype(np.float64), dtype=np.float32)
