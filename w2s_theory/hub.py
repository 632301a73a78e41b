r"""Any model: the one resolver, the one loader and the one pooling function.

A *model spec* is one string:

* a preset of `w2s_theory.presets.REGISTRY` (``all-MiniLM-L6-v2``, ...) or its feature set's
  name (``SmolLM2-135M-layer15``), resolved by `w2s_theory.presets.model_dir`;
* a local folder holding a transformers model (``config.json`` and weights);
* a hub id, optionally pinned: ``EleutherAI/pythia-160m``, ``Qwen/Qwen2.5-0.5B@<revision>``
  (a commit, tag or branch), fetched through ``huggingface_hub.snapshot_download`` into the
  usual hub cache. A hub id has a slash: a bare name that is no preset is an error, never a
  download. Offline mode is the user's choice: with ``HF_HUB_OFFLINE=1`` only the local
  cache is read (this library never sets it).

`resolve_model` returns a `ResolvedModel` with the local folder and a ``digest`` that keys
every cache derived from the weights (features, fits): the preset's weights sha256, the hub
snapshot's commit hash, or a folder's weights sha256, so two different models never share a
cache entry. `load` returns ``(model, tokenizer, resolved)`` for any spec and any
transformers auto class.

`pool` turns hidden states into one vector per text: ``mean`` over real tokens,
``last`` real token (left or right padding, read from the attention mask) or ``cls``
(the first token). `default_pooling` picks ``last`` for decoders (as decoder
reward models read the last token) and ``mean`` for encoders.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import presets
from ._validation import ArgumentTypeError, check_float_tensor, check_path
from .runtime import resolve_device

__all__ = ["ResolvedModel", "parse_spec", "resolve_model", "load", "pool", "POOLINGS",
           "default_pooling", "is_decoder", "load_auto_model"]

POOLINGS = ("mean", "last", "cls")
_WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.json", "*.model", "*.txt", "*.tiktoken", "*.py")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.txt", "vocab.json", "spiece.model",
                    "sentencepiece.bpe.model", "*.tiktoken")
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model spec's files are, and what identifies its weights.

    Attributes:
        spec: the spec as given.
        kind: ``preset``, ``folder`` or ``hub``.
        name: the preset name, the folder, or the hub repo id.
        revision: the requested hub revision (``None`` = the default branch).
        path: the local folder (transformers layout).
        cache: the toolkit's cache a preset was built in (read by ``digest``).
        digest: the weights' identity (sha256 of the weights, or the hub commit hash),
            computed on first use.
    """

    spec: str
    kind: str
    name: str
    revision: str | None
    path: Path
    cache: str | os.PathLike | None = field(default=None, repr=False, compare=False)

    @functools.cached_property
    def digest(self) -> str:
        if self.kind == "preset":
            return presets.weights_sha256(self.name, cache=self.cache)
        if self.kind == "hub":
            return f"hub:{self.name}@{self.path.name}"
        return _folder_digest(self.path)


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``"org/name@rev"`` -> ``("org/name", "rev")``; no ``@`` -> revision ``None``.

    Examples:
        >>> parse_spec("Qwen/Qwen2.5-0.5B@main"), parse_spec("gpt2")
        (('Qwen/Qwen2.5-0.5B', 'main'), ('gpt2', None))
    """
    if isinstance(spec, os.PathLike) and not isinstance(spec, (bytes, bytearray)):
        spec = os.fspath(spec)
    if not isinstance(spec, str):
        raise ArgumentTypeError(f"spec: a model (preset name, folder or hub id) as a string, got "
                                f"{spec!r:.60} ({type(spec).__name__})")
    spec = str(spec)
    if not spec.strip():
        raise ValueError(f"spec: a model (preset name, folder or hub id), got {spec!r}")
    if "\x00" in spec:
        raise ValueError(f"spec: the model name contains a NUL character: {spec!r:.60}")
    if "@" in spec and not Path(spec).expanduser().exists():
        name, rev = spec.rsplit("@", 1)
        if not name or not rev:
            raise ValueError(f"spec: model {spec!r}: use 'org/name@revision'")
        return name, rev
    return spec, None


def _folder_digest(path: Path) -> str:
    files = sorted(p for pat in ("*.safetensors", "*.bin", "*.gguf") for p in path.glob(pat))
    stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns)
                  for p in (*files, path / "config.json") if p.is_file())
    return _hash_files(Path(path), tuple(files), stamp)


@functools.lru_cache(maxsize=64)
def _hash_files(path: Path, files: tuple, _stamp: tuple) -> str:
    """sha256 of the weight files (memoised per file sizes and mtimes: hashed once per process)."""
    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode())
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
    if not files:
        h.update((path / "config.json").read_bytes())
    return h.hexdigest()


def resolve_model(spec: str | os.PathLike | ResolvedModel, *,
                  cache_dir: str | os.PathLike | None = None,
                  cache: str | os.PathLike | None = None) -> ResolvedModel:
    """The one resolver: a model spec to a local folder (downloading a hub id when allowed).

    Order: a preset of `w2s_theory.presets.REGISTRY` or its feature set's name (no
    ``@revision``); an existing folder (or a path starting with ``.``, ``/`` or ``~``); a hub
    id ``org/name[@revision]``. A `ResolvedModel` is returned as is.

    Args:
        spec: the model spec.
        cache_dir: the Hugging Face hub cache (``None``: the default one).
        cache: the toolkit's cache, where pip presets are built (`w2s_theory.presets.model_dir`).

    Raises:
        ValueError: a bare name that is no preset (listing the presets); a folder without
            ``config.json``; a malformed spec; a hub id that cannot be had (offline and not in
            the cache, unknown id, no network), with what to do.

    Examples:
        >>> resolve_model("all-MiniLM-L6-v2").kind
        'preset'
    """
    if isinstance(spec, ResolvedModel):
        return spec
    name, rev = parse_spec(spec)
    spec = os.fspath(spec)
    if cache_dir is not None:
        cache_dir = check_path(cache_dir, "cache_dir")
        if cache_dir.exists() and not cache_dir.is_dir():
            raise ValueError(f"cache_dir: {cache_dir} is a file, not a folder")
    preset = presets.preset_of(name) if rev is None else None
    if preset is not None:
        return ResolvedModel(spec, "preset", preset.name, None,
                             presets.model_dir(preset.name, cache=cache), cache)
    p = Path(name).expanduser()
    if rev is None and (p.is_dir() or name.startswith((".", "/", "~"))):
        if not p.exists():
            raise ValueError(f"spec: model folder not found: {p}")
        if not p.is_dir():
            raise ValueError(f"spec: {p} is a file, not a model folder")
        if not (p / "config.json").is_file():
            raise ValueError(f"spec: {p} has no config.json: not a transformers model folder")
        _check_config_json(p / "config.json")
        return ResolvedModel(spec, "folder", str(p), None, p.resolve())
    if not _HUB_ID.match(name):
        raise ValueError(f"spec: {spec!r} is neither a preset ({', '.join(presets.REGISTRY)}), "
                         "an existing folder, nor a hub id 'org/name[@revision]' (a hub id has "
                         "a slash)")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    try:
        local = snapshot_download(name, revision=rev, cache_dir=cache_dir,
                                  allow_patterns=list(_WEIGHT_PATTERNS))
    except HFValidationError as e:
        raise ValueError(f"spec: {spec!r} is not a valid hub id: {e}") from e
    except Exception as e:  # noqa: BLE001 -- offline / not found / network: one clear message
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
        hint = ("HF_HUB_OFFLINE is set and the model is not in the local hub cache: download "
                "it once online, or point at a local folder" if offline else
                "check the id and the network, or point at a local folder")
        raise ValueError(f"spec: cannot get {spec!r} from the Hugging Face hub "
                         f"({type(e).__name__}): {hint}") from e
    local = Path(local)
    if not (local / "config.json").is_file():
        raise ValueError(f"spec: the hub snapshot of {spec!r} has no config.json")
    return ResolvedModel(spec, "hub", name, rev, local)


def _check_config_json(path: Path) -> None:
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"spec: {path} is not valid JSON ({e}): not a transformers model "
                         f"folder") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"spec: {path} holds {type(cfg).__name__}, not a JSON object")


def _check_config(config) -> None:
    if not isinstance(getattr(config, "model_type", None), str) or isinstance(config, type):
        raise ArgumentTypeError(f"config: a transformers model config (PretrainedConfig, with a "
                                f"model_type), got {config!r:.60} ({type(config).__name__})")


def is_decoder(config) -> bool:
    """True for causal LMs (GPT-2, Llama, Qwen2, Pythia, ...), False for encoders (BERT, MPNet)."""
    _check_config(config)
    archs = " ".join(getattr(config, "architectures", None) or [])
    if "CausalLM" in archs or "LMHeadModel" in archs:
        return True
    if getattr(config, "is_decoder", False):
        return True
    return config.model_type in ("gpt2", "gpt_neox", "llama", "qwen2", "qwen3", "mistral", "gemma",
                                 "gemma2", "gemma3_text", "phi", "phi3", "opt", "gptj", "falcon")


def default_pooling(config) -> str:
    """``last`` for decoders (decoder reward models read the last real token), else ``mean``."""
    _check_config(config)
    return "last" if is_decoder(config) else "mean"


def pool(hidden, mask, how: str = "mean", *, check: bool = True):
    r"""The one pooling function: one vector per text from hidden states ``(..., L, H)`` and an
    attention mask ``(..., L)``.

    * ``mean``: :math:`\sum_t m_t h_t / \sum_t m_t` (real tokens only);
    * ``last``: :math:`h_{t^*}`, :math:`t^*` the last position with :math:`m_t = 1`
      (right padding: ``sum(m) - 1``; left padding: ``L - 1``; read from the mask,
      never from token ids: id 0 is a real token in several vocabularies);
    * ``cls``: :math:`h_0` (BERT's ``[CLS]``; with right padding).

    Computed in ``hidden``'s dtype, gradients kept. With ``check`` (the default) ``hidden``
    must be a finite floating-point ``(n, L, H)`` tensor and ``mask`` a 0/1 tensor (bool, int or
    float) with at least one real token per row: a row of zeros (an empty text) has no pooled
    vector and is refused, naming the row. ``check=False`` skips every test of the values (no
    device synchronisation: the training loops' hot path); a row without real tokens then pools
    to zeros (``mean``) or to position 0 (``last``).

    Examples:
        >>> import torch
        >>> h = torch.arange(6.0).view(1, 3, 2).repeat(2, 1, 1)
        >>> m = torch.tensor([[1, 1, 0], [0, 1, 1]])          # right- and left-padded
        >>> pool(h, m, "last").tolist(), pool(h, m, "mean").tolist()
        ([[2.0, 3.0], [4.0, 5.0]], [[1.0, 2.0], [3.0, 4.0]])
    """
    import torch

    if not isinstance(how, str):
        raise ArgumentTypeError(f"how: the pooling, one of {POOLINGS}, got {how!r:.40} "
                                f"({type(how).__name__})")
    if how not in POOLINGS:
        raise ValueError(f"how: unknown pooling {how!r}; one of {POOLINGS}")
    if check:
        _check_pool_inputs(hidden, mask)
    if how == "cls":
        return hidden[..., 0, :]
    if how == "mean":
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(-2) / m.sum(-2).clamp_min(1.0)
    pos = torch.arange(mask.shape[-1], device=mask.device).expand_as(mask)
    last = torch.where(mask.bool(), pos, torch.zeros_like(pos)).amax(-1)      # (...,)
    idx = last[..., None, None].expand(*last.shape, 1, hidden.shape[-1])
    return torch.gather(hidden, -2, idx.to(hidden.device)).squeeze(-2)


def _check_pool_inputs(hidden, mask) -> None:
    import torch

    hidden = check_float_tensor(hidden, "hidden")
    if hidden.layout != torch.strided:
        raise ArgumentTypeError(f"hidden: a dense tensor, got layout {hidden.layout}")
    if not isinstance(mask, torch.Tensor):
        raise ArgumentTypeError(f"mask: the attention mask as a torch.Tensor (n, L), got "
                                f"{type(mask).__name__}")
    if mask.device.type == "meta" or mask.layout != torch.strided or mask.is_complex():
        raise ArgumentTypeError(f"mask: a dense real tensor with values, got {mask.dtype} "
                                f"{mask.layout} on {mask.device}")
    if hidden.ndim != 3 or hidden.numel() == 0:
        raise ValueError(f"hidden: expected a non-empty shape (n, L, H), got {tuple(hidden.shape)}")
    if mask.shape != hidden.shape[:2]:
        raise ValueError(f"mask: shapes (n, L, H) and (n, L) for hidden/mask, got "
                         f"{tuple(hidden.shape)} and {tuple(mask.shape)}")
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError("mask: entries must be 0 or 1 (an attention mask)")
    empty = ~mask.bool().any(1)
    if bool(empty.any()):
        i = int(torch.nonzero(empty)[0, 0])
        raise ValueError(f"mask: row {i} has no real token (all zeros): its pooled vector is "
                         f"undefined; drop empty texts first")
    if not bool(torch.isfinite(hidden).all()):
        raise ValueError("hidden: contains NaN or inf (a model run in too low a precision?)")


def _auto_class(auto_class):
    import transformers

    if isinstance(auto_class, type) and auto_class.__name__.startswith("Auto"):
        return auto_class
    if not isinstance(auto_class, str):
        raise ArgumentTypeError(f"auto_class: a transformers auto class or its name, got "
                                f"{auto_class!r:.60} ({type(auto_class).__name__})")
    cls = getattr(transformers, auto_class, None) if auto_class.startswith("Auto") else None
    if not isinstance(cls, type) or not hasattr(cls, "from_pretrained"):
        raise ValueError(f"auto_class: not a transformers auto class: {auto_class!r} (e.g. "
                         f"'AutoModel', 'AutoModelForCausalLM', 'AutoModelForSequenceClassification')")
    return cls


def _tokenizer(r: ResolvedModel):
    from transformers import AutoTokenizer

    if not any(any(r.path.glob(pat)) for pat in _TOKENIZER_FILES):
        raise ValueError(f"spec: {r.path} has no tokenizer files ({', '.join(_TOKENIZER_FILES)}): "
                         f"save the tokenizer the model was trained with beside it "
                         f"(tokenizer.save_pretrained(folder))")
    try:
        tok = AutoTokenizer.from_pretrained(str(r.path), local_files_only=True, use_fast=True)
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise ValueError(f"spec: cannot load the tokenizer of {r.spec!r} from {r.path} "
                         f"({type(e).__name__}: {str(e)[:200]})") from None
    if tok.pad_token_id is None:
        if tok.eos_token is None:
            raise ValueError(f"spec: the tokenizer of {r.spec!r} has neither a pad nor an EOS token")
        tok.pad_token = tok.eos_token
    return tok


@contextlib.contextmanager
def _quiet_transformers(quiet: bool):
    if not quiet:
        yield
        return
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load(spec, *, auto_class="AutoModel", dtype="float32", device=None, model: bool = True,
         tokenizer: bool = True, quiet: bool = False, cache_dir=None, cache=None, **kwargs):
    """The one loader: ``(model, tokenizer, resolved)`` for any model spec and auto class.

    Args:
        spec: a preset, a folder or a hub id (`resolve_model`), or a `ResolvedModel`.
        auto_class: a transformers auto class or its name: ``"AutoModel"`` (features,
            backbones), ``"AutoModelForCausalLM"``, ``"AutoModelForSequenceClassification"``, ...
        dtype: `w2s_theory.models.resolve_dtype` (``"auto"``: bf16 on CUDA, else fp32).
        device: where the model goes (``None``: where ``from_pretrained`` puts it, the CPU).
        model, tokenizer: which of the two to load (the other is ``None``). The tokenizer is
            the fast one, with its EOS token as the pad token when it has none (GPT-2); a
            folder without tokenizer files is refused (transformers would build an empty
            tokenizer that maps every word to ``[UNK]``).
        quiet: silence transformers' warnings and progress bars while loading.
        cache_dir, cache: see `resolve_model`.
        **kwargs: passed to ``from_pretrained`` (``config``, ``num_labels``, ...).

    Returns:
        ``(model in eval mode or None, tokenizer or None, ResolvedModel)``.

    Examples:
        >>> m, tok, r = load("all-MiniLM-L6-v2", device="cpu")
        >>> m.config.hidden_size, tok.pad_token, r.kind
        (384, '[PAD]', 'preset')
    """
    r = resolve_model(spec, cache_dir=cache_dir, cache=cache)
    if r.kind == "preset" and presets.REGISTRY[r.name].kind == "static":
        raise ValueError(f"spec: {r.name} is static token embeddings, not a transformers model; "
                         f"use w2s_theory.models.load_wordllama()")
    cls = _auto_class(auto_class)
    dev = None if device is None else resolve_device(device)
    for key, value in presets.dtype_kwargs(dtype, dev or "cpu").items():
        kwargs.setdefault(key, value)
    tok = _tokenizer(r) if tokenizer else None
    if not model:
        return None, tok, r
    try:
        with _quiet_transformers(quiet):
            net = cls.from_pretrained(str(r.path), local_files_only=True, **kwargs)
    except (OSError, ValueError) as e:
        raise ValueError(f"spec: cannot load the model {r.spec!r} from {r.path} "
                         f"({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    if dev is not None:
        net = net.to(dev)
    return net.eval(), tok, r


def load_auto_model(spec: str, *, dtype: str = "float32", cache_dir=None):
    """``(model, tokenizer, resolved)`` through ``AutoModel``: `load` with a named ``dtype``
    (``float32`` | ``bfloat16`` | ``float16`` or their short names), kept for its callers."""
    if not isinstance(dtype, str):
        raise ArgumentTypeError(f"dtype: one of {sorted(presets.DTYPES)} (a string), got {dtype!r:.40}")
    if dtype not in presets.DTYPES:
        raise ValueError(f"dtype: one of {sorted(presets.DTYPES)}, got {dtype!r}")
    return load(spec, dtype=dtype, cache_dir=cache_dir)
