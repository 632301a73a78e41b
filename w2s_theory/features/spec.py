"""What a feature set is: `FeatureSpec` (model, layer, pooling, length, dtype), the presets' feature
sets and the resolution of a spec to a model folder and a pooling rule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from ..hub import default_pooling, parse_spec, resolve_model
from ..presets import PresetView

#: Environment variable naming a read-only folder of prebuilt features.
ENV_FEATURES = "W2S_FEATURES_DIR"
#: Pooling rules of `FeatureSpec` (``auto``: by architecture, see `resolve_spec`).
POOLINGS = ("mean", "last", "cls", "auto")


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
