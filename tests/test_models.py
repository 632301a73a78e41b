"""`w2s_theory.models`: the presets' names re-exported, and any model loaded through the one
loader (`w2s_theory.hub.load`); the dtype table."""

from __future__ import annotations

import pytest
import torch

from w2s_theory import models as M
from w2s_theory import presets


def test_the_presets_are_re_exported():
    assert M.REGISTRY is presets.REGISTRY and M.Preset is presets.Preset is M.ModelInfo
    assert M.model_dir is presets.model_dir and M.resolve_dtype is presets.resolve_dtype


def test_load_model_and_dtypes():
    m = M.load_model("all-MiniLM-L6-v2", device="cpu", dtype="bfloat16")
    assert not m.training and m.dtype == torch.bfloat16 and m.config.num_hidden_layers == 6
    assert M.resolve_dtype("auto", "cpu") == torch.float32
    with pytest.raises(ValueError, match="dtype"):
        M.resolve_dtype("int8")
    with pytest.raises(ValueError, match="wordllama"):
        M.load_model("wordllama")
    with pytest.raises(ValueError, match="^spec: model folder not found"):
        M.load_model("/nonexistent/folder")
    with pytest.raises(ValueError, match="^spec: 'gpt2' is neither a preset .*all-MiniLM-L6-v2"):
        M.load_model("gpt2")                       # a bare name is no hub id: never a download
    with pytest.raises(TypeError, match="^dtype: "):
        M.resolve_dtype(5)
    with pytest.raises(ValueError, match="^dtype: a floating-point"):
        M.resolve_dtype(torch.int64)




def test_the_one_dtype_table():
    for name, want in presets.DTYPES.items():
        assert M.resolve_dtype(name) == getattr(torch, want)
    assert M.resolve_dtype(torch.float16) == torch.float16
    assert list(M.dtype_kwargs("bf16").values()) == [torch.bfloat16]
