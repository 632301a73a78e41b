r"""Language-model features of texts: batched extraction, pooling and a verified cache.

A feature of a text :math:`x` with tokens :math:`t_1..t_L` (after truncation to
``max_length`` tokens, from the left by default so the final reply survives) is a
pooled hidden state of one layer :math:`\ell` (``hidden_states[ℓ]``, 0 = embeddings):

* ``mean``: :math:`\phi(x) = \frac{1}{\sum_j m_j}\sum_j m_j h^{(\ell)}_j` with the
  attention mask :math:`m` (special tokens included, padding excluded);
* ``last``: :math:`\phi(x) = h^{(\ell)}_{j^*}`, :math:`j^* = \max\{j : m_j = 1\}` — read
  from the attention mask, never from ``input_ids != 0`` (id 0 is a real token in
  several vocabularies).

Speed: texts are tokenized once (fast tokenizer, batched; ids cached), sorted by
length and cut into buckets of at most ``max_tokens`` padded tokens, so padding
is small and batches are large. Compute runs on CUDA when available (bf16 by
default there), else CPU (fp32).

Cache: `features_for_texts` keys each result by everything that changes the
numbers (model and its weights' sha256, layer, pooling, max length, truncation
side, compute dtype, data set name, text digest), writes ``.npz`` + ``.json`` atomically
with a fingerprint (`w2s_theory.fingerprint`: the key, the content digest of every model
file -- ``config.json`` and tokenizer files included -- and the code version) and the
payload's sha256; on read an entry without a fingerprint (older format), with another
fingerprint, or a corrupt one is rebuilt, with one `w2s_theory.fingerprint.CacheWarning`.
`load_features` reads the read-only prebuilt folder (``../shared/features``,
``$W2S_FEATURES_DIR``) first, after checking its manifest against the data's digests (and
the file's sha256 when the manifest records one under ``files``).
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .data import SPLITS, SUBSETS, DataNotFound, cache_dir, load_hh_rlhf, project_root, text_digest
from .fingerprint import CacheWarning
from .hub import default_pooling, load, pool, resolve_model
from .presets import PresetView

__all__ = ["FeatureSpec", "FEATURE_SETS", "ENV_FEATURES", "feature_spec", "TokenIds",
           "tokenize", "length_buckets", "pool_hidden", "embed_token_ids",
           "static_embed", "extract", "features_for_texts", "prebuilt_roots", "prebuilt_root", "load_prebuilt",
           "load_features", "cache_key", "unavailable_reason", "resolve_spec", "POOLINGS"]

#: Environment variable naming a read-only folder of prebuilt features.
ENV_FEATURES = "W2S_FEATURES_DIR"
#: Pooling rules of `FeatureSpec` (``auto``: by architecture, see `resolve_spec`).
POOLINGS = ("mean", "last", "cls", "auto")
_FORMAT = 1  # bump when the cache layout or the computation changes (part of the entry's path)
#: Version of the feature cache's fingerprint envelope (`w2s_theory.fingerprint`).
_CACHE_FORMAT = 2


@dataclass(frozen=True)
class FeatureSpec:
    """What to extract.

    Attributes:
        model: a `w2s_theory.models.REGISTRY` name, a local transformers folder or a
            Hugging Face hub id (``org/name[@revision]``, `w2s_theory.hub.resolve_model`).
        layer: index into ``hidden_states`` (0 = embeddings; negative counts from the end);
            ``None`` = the last layer.
        pooling: ``"mean"`` (over attention-mask tokens), ``"last"`` (last real token),
            ``"cls"`` (the first token) or ``"auto"`` (``last`` for decoders, ``mean`` for
            encoders: `w2s_theory.hub.default_pooling`; resolved before any cache key).
        max_length: tokens kept per text (special tokens included).
        truncation_side: ``"left"`` (keep the end of the dialogue) or ``"right"``.
        dtype: compute dtype ``"float32" | "bfloat16" | "float16" | "auto"`` (auto = bf16 on
            CUDA, fp32 on CPU).
    """

    model: str
    layer: int | None = None
    pooling: str = "mean"
    max_length: int = 512
    truncation_side: str = "left"
    dtype: str = "auto"

    def __post_init__(self):
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling: must be one of {POOLINGS}, got {self.pooling!r}")
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"model: a preset name, a folder or a hub id, got {self.model!r}")
        if self.truncation_side not in ("left", "right"):
            raise ValueError(f"truncation_side: must be 'left' or 'right', got {self.truncation_side!r}")
        if not isinstance(self.max_length, int) or self.max_length < 2:
            raise ValueError(f"max_length: must be an integer >= 2, got {self.max_length!r}")
        if self.layer is not None and not isinstance(self.layer, int):
            raise ValueError(f"layer: must be an integer or None, got {self.layer!r}")


#: Named feature sets, one per model preset (a live view of `w2s_theory.models.REGISTRY`: each
#: preset's ``feature_set`` name, layer, pooling and dtype); the names match the folders of
#: ``../shared/features/hh_rlhf``.
FEATURE_SETS: Mapping[str, FeatureSpec] = PresetView(
    lambda p: FeatureSpec(p.name, layer=p.layer, pooling=p.pooling, dtype=p.dtype))


def feature_spec(spec: str | FeatureSpec) -> FeatureSpec:
    """A `FeatureSpec` from a `FEATURE_SETS` name, or from any model spec.

    Any other string is a model spec of `w2s_theory.hub.resolve_model` (a preset of
    the model registry, a local folder or a hub id ``org/name[@revision]``): its last layer,
    pooled by architecture (``pooling="auto"``). Nothing is loaded here.

    Examples:
        >>> feature_spec("SmolLM2-135M-layer15").layer
        15
        >>> feature_spec("EleutherAI/pythia-160m@main").pooling
        'auto'
    """
    if isinstance(spec, FeatureSpec):
        return spec
    if spec in FEATURE_SETS:
        return FEATURE_SETS[spec]
    from .hub import parse_spec

    try:
        parse_spec(spec)
    except ValueError:
        raise ValueError(f"model: {spec!r} is neither a feature set ({', '.join(FEATURE_SETS)}) "
                         "nor a model spec (preset, folder or hub id 'org/name[@revision]')") from None
    return FeatureSpec(spec, pooling="auto")


def resolve_spec(spec: FeatureSpec, *, cache=None) -> tuple[FeatureSpec, Path, str]:
    """``(spec with its pooling resolved, model folder, weights digest)``.

    The folder and digest come from the one resolver `w2s_theory.hub.resolve_model` (a
    preset's weights sha256, a folder's weights sha256 or the hub commit).
    ``pooling="auto"`` becomes `w2s_theory.hub.default_pooling` of the model's config.
    """
    r = resolve_model(spec.model, cache=cache)
    if spec.pooling == "auto":
        if spec.model == "wordllama":
            pooling = "mean"
        else:
            from transformers import AutoConfig

            pooling = default_pooling(AutoConfig.from_pretrained(str(r.path)))
        spec = replace(spec, pooling=pooling)
    return spec, Path(r.path), r.digest


def feature_set_name(spec: FeatureSpec) -> str:
    for name, s in FEATURE_SETS.items():
        if replace(s, dtype="auto") == replace(spec, dtype="auto"):
            return name
    return spec.model + ("" if spec.layer is None else f"-layer{spec.layer}") + \
        ("" if spec.pooling == "mean" else f"-{spec.pooling}")


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
        from .atomic_io import atomic_write_bytes

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
    from scipy.sparse import csr_matrix

    # row i of A holds 1/len_i at each of text i's token ids (repeats add up): A @ E = means
    weights = np.repeat(1.0 / lens, lens)
    a = csr_matrix((weights, ids, tokens.offsets), shape=(len(tokens), embedding.shape[0]))
    return np.asarray(a @ embedding.astype(np.float64), dtype=np.float32)


# ----------------------------------------------------------------------- extraction
def _tokens_cached(tokenizer, tok_digest: str, texts: list[str], spec: FeatureSpec,
                   cache: Path | None, add_special_tokens: bool = True) -> TokenIds:
    if cache is None:
        return tokenize(tokenizer, texts, max_length=spec.max_length,
                        truncation_side=spec.truncation_side, add_special_tokens=add_special_tokens)
    from .fingerprint import fingerprint, load_npz, save_npz

    key = hashlib.sha256(json.dumps([_FORMAT, tok_digest, spec.max_length, spec.truncation_side,
                                     add_special_tokens, text_digest(texts)]).encode()).hexdigest()
    path = cache / "tokens" / f"{key[:24]}.npz"
    fp = fingerprint(_CACHE_FORMAT, key=key)
    z = load_npz(path, fp, what="token cache", stacklevel=3)
    if z is not None:
        try:
            ids, offsets = z["ids"], z["offsets"]
            if (offsets.ndim == 1 and offsets.size == len(texts) + 1 and offsets[0] == 0
                    and offsets[-1] == ids.size and not np.any(np.diff(offsets) < 0)):
                return TokenIds(ids, offsets)
        except KeyError:
            pass
        warnings.warn(f"token cache {path}: malformed token ids; recomputing",
                      CacheWarning, stacklevel=3)
    t = tokenize(tokenizer, texts, max_length=spec.max_length,
                 truncation_side=spec.truncation_side, add_special_tokens=add_special_tokens)
    try:
        save_npz(path, {"ids": t.ids, "offsets": t.offsets}, fp)
    except OSError:
        pass
    return t


def _tokenizer_digest(folder: Path) -> str:
    from .models import file_sha256

    h = hashlib.sha256()
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (folder / name).is_file():
            h.update(name.encode() + file_sha256(folder / name).encode())
    return h.hexdigest()


def extract(spec: str | FeatureSpec, texts: Sequence[str], *, device: Any = "auto",
            max_tokens: int | None = None, progress: bool = True,
            cache: str | os.PathLike | None = None, cache_tokens: bool = True) -> np.ndarray:
    """Features of ``texts`` under ``spec`` (no feature cache) -> float32 ``(n, hidden)``.

    Loads the model via `w2s_theory.models`, tokenizes once (ids cached under
    ``<cache>/tokens`` when ``cache_tokens``), embeds length-sorted buckets.

    Examples:
        >>> extract("wordllama", ["hello world", "hi"], progress=False).shape
        (2, 256)
    """
    from . import models

    spec = feature_spec(spec)
    texts = list(texts)
    if not all(isinstance(t, str) for t in texts):
        raise ValueError("texts: must be a list of str")
    tcache = cache_dir(cache) if cache_tokens else None
    if spec.model == "wordllama":
        wl = models.load_wordllama()
        tok_digest = "wordllama:" + hashlib.sha256(
            wl.tokenizer.to_str().encode()).hexdigest()
        tokens = _tokens_cached(wl.tokenizer, tok_digest, texts, spec, tcache, add_special_tokens=False)
        return static_embed(wl.embedding, tokens, spec.pooling)
    import torch

    dev = models.resolve_device(device)
    dtype = models.resolve_dtype(spec.dtype, dev)
    r = resolve_model(spec.model, cache=cache)
    if spec.pooling == "auto":
        spec = resolve_spec(spec, cache=cache)[0]
    _, tokenizer, _ = load(r, model=False)
    tokens = _tokens_cached(tokenizer, _tokenizer_digest(r.path), texts, spec, tcache)
    model = load(r, device=dev, dtype=dtype, tokenizer=False)[0]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    feats = embed_token_ids(model, tokens, layer=spec.layer, pooling=spec.pooling, device=dev,
                            max_tokens=max_tokens, pad_id=pad_id, progress=progress,
                            desc=f"{spec.model} features")
    del model
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return feats


# ----------------------------------------------------------------------- cache
def cache_key(spec: FeatureSpec, weights: str, dataset: str, digest: str, dtype: str) -> dict:
    """The fields that identify a cached feature array (all of them change the numbers).

    Examples:
        >>> sorted(cache_key(FeatureSpec("wordllama"), "w", "d", "t", "float32"))[:3]
        ['dataset', 'dtype', 'format']
    """
    return {"format": _FORMAT, "model": spec.model, "weights_sha256": weights, "layer": spec.layer,
            "pooling": spec.pooling, "max_length": spec.max_length,
            "truncation_side": spec.truncation_side, "dtype": dtype, "dataset": dataset,
            "text_digest": digest}


def _entry_paths(root: Path, spec: FeatureSpec, dataset: str, key: dict) -> tuple[Path, Path]:
    h = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in dataset)
    # hub ids ("org/name@rev") and folders become one path component
    name = "".join(c if c.isalnum() or c in "-_.@" else "--" if c == "/" else "_"
                   for c in feature_set_name(spec)).strip("-.") or "model"
    d = root / "features" / name / safe
    return d / f"{h}.npz", d / f"{h}.json"


def _entry_fingerprint(key: dict, folder: Path) -> dict:
    """What a feature entry was computed from: its key, every model file, the code version."""
    from .fingerprint import fingerprint, model_files_digest

    return fingerprint(_CACHE_FORMAT, key=key, model_files=model_files_digest(folder))


def _read_entry(npz: Path, meta: Path, key: dict, n: int, fp: dict | None = None) -> np.ndarray | None:
    """The cached array, or ``None`` when missing, or (with one `CacheWarning` saying why) when
    written by an older version (no fingerprint), computed from other inputs (key or
    fingerprint ``fp``), corrupt (payload sha256) or malformed."""
    from .fingerprint import mismatch_reason

    if not (npz.is_file() or meta.is_file()):
        return None

    def stale(why: str) -> None:
        warnings.warn(f"feature cache {npz}: {why}; recomputing", CacheWarning, stacklevel=3)

    if not (npz.is_file() and meta.is_file()):
        stale(f"incomplete entry (no {meta.name if npz.is_file() else npz.name})")
        return None
    try:
        info = json.loads(meta.read_text())
        raw = npz.read_bytes()
    except (OSError, ValueError) as exc:
        stale(f"unreadable ({type(exc).__name__}: {exc})")
        return None
    if not isinstance(info, dict) or "fingerprint" not in info:
        stale("no fingerprint (written by an older version)")
        return None
    if info.get("key") != key:
        stale("computed from other inputs (changed: key)")
        return None
    if fp is not None and (why := mismatch_reason(info["fingerprint"], fp)) is not None:
        stale(why)
        return None
    if hashlib.sha256(raw).hexdigest() != info.get("npz_sha256"):
        stale("content checksum mismatch (corrupted)")
        return None
    try:
        with np.load(io.BytesIO(raw)) as z:
            x = z["features"]
    except Exception as exc:  # noqa: BLE001 - anything unreadable is rebuilt
        stale(f"unreadable payload ({type(exc).__name__}: {exc})")
        return None
    if x.shape[0] != n or x.dtype != np.float32 or not np.isfinite(x).all():
        stale(f"array of shape {x.shape} and dtype {x.dtype} for {n} texts, or non-finite")
        return None
    return x


def _write_entry(npz: Path, meta: Path, key: dict, x: np.ndarray, extra: dict,
                 fp: dict | None = None) -> None:
    from .atomic_io import atomic_write_bytes, atomic_write_text

    buf = io.BytesIO()
    np.savez(buf, features=x)
    raw = buf.getvalue()
    atomic_write_bytes(npz, raw)
    atomic_write_text(meta, json.dumps({"key": key, "fingerprint": fp,
                                        "npz_sha256": hashlib.sha256(raw).hexdigest(),
                                        "shape": list(x.shape), **extra}, indent=1))


def features_for_texts(spec: str | FeatureSpec, texts: Sequence[str], *, dataset: str = "custom",
                       cache: str | os.PathLike | None = None, use_cache: bool = True,
                       device: Any = "auto", max_tokens: int | None = None,
                       progress: bool = True) -> np.ndarray:
    """Cached features of ``texts`` -> float32 ``(n, hidden)``, row ``i`` = ``texts[i]``.

    The entry lives under ``<cache>/features/<set>/<dataset>/<key>.npz`` (+ ``.json``) with
    the key of `cache_key` and a fingerprint of the model folder's files (``config.json``,
    tokenizer, weights; `w2s_theory.fingerprint.model_files_digest`) and the code version;
    it is verified (fingerprint, key, payload sha256, shape, finiteness) on every read and
    recomputed, with one `w2s_theory.fingerprint.CacheWarning`, when anything is off.

    Examples:
        >>> import tempfile
        >>> features_for_texts("wordllama", ["good", "bad"], cache=tempfile.mkdtemp(),
        ...                    progress=False).shape
        (2, 256)
    """
    import platform
    import time

    from . import models

    spec = feature_spec(spec)
    texts = list(texts)
    root = cache_dir(cache)
    dtype = "float32" if spec.model == "wordllama" else str(
        models.resolve_dtype(spec.dtype, models.resolve_device(device))).replace("torch.", "")
    spec, folder, weights = resolve_spec(spec, cache=cache)   # auto pooling resolved before the key
    key = cache_key(spec, weights, dataset, text_digest(texts), dtype)
    npz, meta = _entry_paths(root, spec, dataset, key)
    fp = _entry_fingerprint(key, folder) if use_cache else None
    if use_cache:
        x = _read_entry(npz, meta, key, len(texts), fp)
        if x is not None:
            return x
    t0 = time.perf_counter()
    x = extract(replace(spec, dtype=dtype), texts, device=device, max_tokens=max_tokens,
                progress=progress, cache=cache)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if use_cache:
        _write_entry(npz, meta, key, x, {
            "seconds": round(time.perf_counter() - t0, 3), "device": str(models.resolve_device(device)),
            "machine": platform.node(), "processor": platform.processor() or platform.machine()},
            fp)
    return x


# ----------------------------------------------------------------------- HH-RLHF features
def prebuilt_roots(root: str | os.PathLike | None = None, *,
                   cache: str | os.PathLike | None = None) -> list[Path]:
    """Read-only prebuilt folders, searched in order.

    ``root`` (must exist) > ``$W2S_FEATURES_DIR`` (one or more folders separated by
    ``os.pathsep``; each must exist) > the defaults that exist:
    ``<project>/../shared/features`` and ``<cache>/prebuilt`` (where GPU-extracted
    features in the same layout can be dropped, e.g. the output of
    ``experiments/gpu/extract_features.py``).

    Examples:
        >>> all((p / "hh_rlhf").is_dir() for p in prebuilt_roots()) or prebuilt_roots() == []
        True
    """
    if root is not None:
        paths, how = [Path(root).expanduser()], "the root argument"
    elif os.environ.get(ENV_FEATURES):
        paths = [Path(p).expanduser() for p in os.environ[ENV_FEATURES].split(os.pathsep) if p]
        how = "$" + ENV_FEATURES
    else:
        cands = [project_root().parent / "shared" / "features", cache_dir(cache) / "prebuilt"]
        return [p for p in cands if (p / "hh_rlhf").is_dir()]
    for p in paths:
        if not p.is_dir():
            raise DataNotFound(f"prebuilt features folder not found: {p} (from {how})")
    return paths


def prebuilt_root(root: str | os.PathLike | None = None) -> Path | None:
    """The first of `prebuilt_roots`, or ``None`` when there is none.

    Examples:
        >>> p = prebuilt_root(); p is None or (p / "hh_rlhf").is_dir()
        True
    """
    roots = prebuilt_roots(root)
    return roots[0] if roots else None


def load_prebuilt(name: str, subset: str, split: str, *, root: str | os.PathLike | None = None,
                  data_root: str | os.PathLike | None = None,
                  cache: str | os.PathLike | None = None) -> dict[str, np.ndarray] | None:
    """Prebuilt HH-RLHF features of a named set, or ``None`` when absent or not matching the data.

    Looks in each of `prebuilt_roots` for ``hh_rlhf/<name>/<subset>/<split>.npz``.
    Checks the manifest's ``sources`` sha256 of ``<subset>/<split>.jsonl`` against the data
    file actually loaded (a mismatch warns and skips that folder), the file's own sha256
    when the manifest records it (``files: {"<subset>/<split>.npz": sha256}``), the shapes
    (n, hidden) for both arrays and finiteness. Arrays are returned as float32.

    Examples:
        >>> load_prebuilt("no-such-model", "harmless", "test") is None
        True
    """
    for base in prebuilt_roots(root, cache=cache):
        out = _read_prebuilt(base / "hh_rlhf" / name, subset, split, data_root)
        if out is not None:
            return out
    return None


def _read_prebuilt(folder: Path, subset: str, split: str, data_root) -> dict[str, np.ndarray] | None:
    f = folder / subset / f"{split}.npz"
    if not f.is_file():
        return None
    pairs = load_hh_rlhf(subset, split, data_root)
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        want = manifest["sources"][f"{subset}/{split}.jsonl"]
        files = manifest.get("files") or {}
        want_file = files.get(f"{subset}/{split}.npz") if isinstance(files, dict) else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        warnings.warn(f"{folder}/manifest.json unreadable or lacks the source digest ({exc!r}); "
                      f"not using the prebuilt features", stacklevel=3)
        return None
    if want != pairs.sha256:
        warnings.warn(f"{f}: built from a different {subset}/{split}.jsonl (sha256 {want[:12]}... vs "
                      f"{pairs.sha256[:12]}...); not using it", stacklevel=3)
        return None
    if want_file is not None:     # the manifest records the file's own checksum: verify it
        from .fingerprint import file_digest

        have = file_digest(f)
        if have != want_file:
            warnings.warn(f"{f}: sha256 {have[:12]}... differs from the manifest's "
                          f"{str(want_file)[:12]}... (corrupted or replaced); not using it",
                          stacklevel=3)
            return None
    try:
        with np.load(f) as z:
            out = {k: z[k].astype(np.float32) for k in ("chosen", "rejected")}
    except Exception as exc:  # noqa: BLE001 - a broken file is skipped, not fatal
        warnings.warn(f"{f}: unreadable ({exc!r}); not using it", stacklevel=3)
        return None
    n = len(pairs)
    shapes = {x.shape for x in out.values()}
    for k, x in out.items():
        if x.ndim != 2 or x.shape[0] != n or len(shapes) != 1 or not np.isfinite(x).all():
            warnings.warn(f"{f}: {k} has shape {x.shape} or non-finite values; not using it",
                          stacklevel=3)
            return None
    return out


def unavailable_reason(name: str, subsets: Sequence[str] = (), splits: Sequence[str] = SPLITS, *,
                       texts: bool = False, root: str | os.PathLike | None = None,
                       cache: str | os.PathLike | None = None) -> str | None:
    """Why feature set ``name`` cannot be had here, or ``None`` when it can (nothing is loaded).

    HH-RLHF features of ``subsets`` x ``splits`` are available when the model's weights are
    installed (`w2s_theory.models.is_installed`) or every one of those files exists in
    a prebuilt folder (`prebuilt_roots`; their digests are checked when read). With
    ``texts=True`` features of other texts (VADER, a first-rows cut) are needed too, which
    only the weights can compute. A cheap check of files, for a command to run before any work.

    Example:
        >>> unavailable_reason("no-such-set")[:33]
        "unknown feature set 'no-such-set'"
    """
    from . import models

    if name not in FEATURE_SETS:
        # not a preset feature set: a local model folder, or a hub id the pipeline resolves
        # through the Hugging Face cache before any work (hub ids: ``org/name[@rev]``)
        p = Path(str(name)).expanduser()
        if p.is_dir():
            return None
        if str(name).startswith(("/", ".", "~")):
            return f"no such model folder {str(name)!r}, and not a feature set (known: " \
                   f"{', '.join(FEATURE_SETS)})"
        if "/" in str(name):
            return None
        return f"unknown feature set {name!r} (known: {', '.join(FEATURE_SETS)}; or give a " \
               f"model folder or a hub id org/name)"
    model = FEATURE_SETS[name].model
    if models.is_installed(model):
        return None
    if texts:
        return f"the weights of {model} are not installed (needed to compute its features)"
    roots = prebuilt_roots(root, cache=cache)
    absent = [f"{sub}/{sp}" for sub in subsets for sp in splits
              if not any((r / "hh_rlhf" / name / sub / f"{sp}.npz").is_file() for r in roots)]
    if not absent:
        return None
    where = ", ".join(map(str, roots)) or "no prebuilt folder found"
    return (f"the weights of {model} are not installed and no prebuilt features hold "
            f"{', '.join(absent[:3])}{' ...' if len(absent) > 3 else ''} ({where})")


def load_features(model: str | FeatureSpec, subset: str, split: str, *,
                  root: str | os.PathLike | None = None, data_root: str | os.PathLike | None = None,
                  cache: str | os.PathLike | None = None, compute: bool = True,
                  device: Any = "auto", progress: bool = True) -> dict[str, np.ndarray]:
    """HH-RLHF features ``{"chosen": (4000, H), "rejected": (4000, H)}`` (float32).

    Order: (1) the prebuilt read-only folders (`prebuilt_roots`, verified by
    `load_prebuilt`), (2) the project's cache, (3) computed now (when ``compute``)
    and cached. Row ``i`` belongs to line ``i`` of ``<subset>/<split>.jsonl``.

    Args:
        model: a `FEATURE_SETS` name (``"all-MiniLM-L6-v2"``, ``"SmolLM2-135M-layer15"``,
            ``"wordllama"``, ``"all-mpnet-base-v2"``, ...) or a `FeatureSpec`.
        root: prebuilt folder; data_root: HH-RLHF folder (see `w2s_theory.data.hh_rlhf_root`).

    Examples:
        >>> f = load_features("all-MiniLM-L6-v2", "harmless", "test")
        >>> f["chosen"].shape, f["rejected"].dtype
        ((4000, 384), dtype('float32'))
    """
    if subset not in SUBSETS:
        raise ValueError(f"subset: must be one of {SUBSETS}, got {subset!r}")
    if split not in SPLITS:
        raise ValueError(f"split: must be one of {SPLITS}, got {split!r}")
    spec = feature_spec(model)
    name = model if isinstance(model, str) else feature_set_name(spec)
    if isinstance(model, str) or name in FEATURE_SETS:
        pre = load_prebuilt(name, subset, split, root=root, data_root=data_root, cache=cache)
        if pre is not None:
            return pre
    pairs = load_hh_rlhf(subset, split, data_root)
    texts = pairs.chosen + pairs.rejected
    if not compute:
        raise FileNotFoundError(f"no prebuilt features for {name} {subset}/{split} and compute=False")
    from .datasets import feature_cache_tag

    x = features_for_texts(spec, texts, dataset=feature_cache_tag(subset, split), cache=cache,
                           device=device, progress=progress)
    n = len(pairs)
    return {"chosen": x[:n], "rejected": x[n:]}

