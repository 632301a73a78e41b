"""One model registry and one way in (issue 19): a preset is one `w2s_theory.models.Preset`
entry that features, the real pipeline, plotting and the fine-tuning pipeline all read; one
resolver, one loader (hub ids from the local hub cache), one pooling function."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import COMMIT, _tiny, _tokenizer
from w2s_theory import features, finetune, hub, models, plotting
from w2s_theory.pipelines import finetune as ft_pipeline
from w2s_theory.pipelines import real


@pytest.fixture()
def tiny_preset(tmp_path, monkeypatch):
    """One new preset, added by one registry entry: a tiny GPT-2 in a local folder, layer 1."""
    folder = tmp_path / "tiny-gpt2"
    torch.manual_seed(0)
    net = _tiny("gpt2")
    net.save_pretrained(str(folder))
    _tokenizer().save_pretrained(str(folder))
    params = sum(p.numel() for p in net.parameters())
    preset = models.Preset("tiny-test", "decoder", params, 16, 2, "a tiny random GPT-2",
                           folder=str(folder), layer=1, pooling="last", dtype="float32",
                           display="Tiny GPT-2 (layer 1)", notes="test rung: tiny GPT-2, layer 1")
    monkeypatch.setitem(models.REGISTRY, preset.name, preset)

    def no_download(*args, **kwargs):
        raise AssertionError(f"a preset fell through to a hub download: {args} {kwargs}")

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_download)
    return preset, folder


def test_a_new_preset_is_one_registry_entry(tiny_preset, tmp_path):
    preset, folder = tiny_preset
    assert preset.feature_set == "tiny-test-layer1" and preset.capacity == preset.params > 0
    # features: the feature set, its spec, its availability
    assert features.FEATURE_SETS["tiny-test-layer1"] == features.FeatureSpec(
        "tiny-test", layer=1, pooling="last", dtype="float32")
    assert features.feature_spec("tiny-test-layer1").layer == 1
    assert features.unavailable_reason("tiny-test-layer1", texts=True) is None
    # the real pipeline's notes, plotting's display name
    assert real.MODEL_NOTES["tiny-test-layer1"] == "test rung: tiny GPT-2, layer 1"
    assert plotting.human_name("tiny-test-layer1") == "Tiny GPT-2 (layer 1)"
    assert plotting.NAMES["reverse_kl"] == "reverse KL"         # the fixed names stay
    # the fine-tuning pipeline's resolver, by preset name and by feature-set name (no download)
    assert ft_pipeline.resolve_model_dir("tiny-test") == folder
    assert ft_pipeline.resolve_model_dir("tiny-test-layer1") == folder
    r = hub.resolve_model("tiny-test-layer1")
    assert (r.kind, r.name, r.path) == ("preset", "tiny-test", folder)
    assert r.digest == models.weights_sha256("tiny-test") and len(r.digest) == 64
    # the install script's command takes it (no pip arguments: its weights are a folder)
    assert models.install_command(["tiny-test"]) == "bash scripts/install_models.sh tiny-test"
    assert preset.pip_commands() == [] and models.is_installed("tiny-test")
    # features computed from it: layer 1, last real token, against a plain transformers run
    texts = ["Human: w1 w2 Assistant: yes", "Human: w3 Assistant: no w4 w5 w6"]
    got = features.features_for_texts("tiny-test-layer1", texts, cache=tmp_path / "c",
                                      device="cpu", progress=False)
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    net = AutoModel.from_pretrained(str(folder)).eval()
    for i, t in enumerate(texts):
        with torch.no_grad():
            hs = net(**tok([t], return_tensors="pt"), output_hidden_states=True).hidden_states
        np.testing.assert_allclose(got[i], hs[1][0, -1].numpy(), rtol=1e-5, atol=1e-6)
    # the fine-tuning backbone loads from the preset name, dropout set
    bb = finetune.load_backbone("tiny-test", dropout=0.25)
    assert bb.config.resid_pdrop == 0.25 and bb.dtype == torch.float32


def test_the_registry_view_is_gone_with_the_entry(tiny_preset, monkeypatch):
    monkeypatch.delitem(models.REGISTRY, "tiny-test")
    for view in (features.FEATURE_SETS, real.MODEL_NOTES, plotting.NAMES):
        assert "tiny-test-layer1" not in view
    assert list(features.FEATURE_SETS) == [p.feature_set for p in models.REGISTRY.values()]


def test_a_preset_from_a_hub_id_reads_the_hub_cache(hub_env, monkeypatch):
    preset = models.Preset("tiny-hub", "decoder", 1, 16, 2, "tiny Llama",
                           hub=f"tiny-org/tiny-llama@{COMMIT}", notes="hub rung")
    monkeypatch.setitem(models.REGISTRY, preset.name, preset)
    assert models.is_installed("tiny-hub") and real.MODEL_NOTES["tiny-hub"] == "hub rung"
    r = hub.resolve_model("tiny-hub")
    assert r.kind == "preset" and r.path == hub_env / "models--tiny-org--tiny-llama" / "snapshots" / COMMIT
    assert type(models.load_model("tiny-hub", device="cpu")).__name__ == "LlamaModel"
    monkeypatch.setitem(models.REGISTRY, "gone", models.Preset(
        "gone", "decoder", 1, 16, 2, "not cached", hub="tiny-org/not-there"))
    assert not models.is_installed("gone")
    with pytest.raises(models.ModelNotInstalled, match="not in the local Hugging Face hub cache"):
        hub.resolve_model("gone")
    with pytest.raises(ValueError, match="^install: .*exactly one of"):
        models.Preset("both", "decoder", 1, 16, 2, "x", install="pip install x", hub="o/x")
    with pytest.raises(ValueError, match="^hub: "):
        models.Preset("bare", "decoder", 1, 16, 2, "x", hub="gpt2")


@pytest.mark.parametrize("auto_class", ["AutoModel", "AutoModelForCausalLM",
                                        "AutoModelForSequenceClassification"])
def test_load_model_takes_a_hub_id_from_the_cache(hub_env, auto_class):
    kw = {"num_labels": 3} if auto_class.endswith("Classification") else {}
    m = models.load_model("tiny-org/tiny-gpt2", device="cpu", auto_class=auto_class, **kw)
    assert not m.training and type(m).__name__.startswith("GPT2")
    net, tok, r = hub.load(f"tiny-org/tiny-llama@{COMMIT}", auto_class=auto_class, **kw)
    assert r.kind == "hub" and r.path.name == COMMIT and tok.pad_token == tok.eos_token
    ref = getattr(__import__("transformers"), auto_class).from_pretrained(str(r.path), **kw)
    if not kw:      # same weights as a plain transformers load (a fresh head is random)
        for (k, a), (_, b) in zip(net.state_dict().items(), ref.state_dict().items()):
            assert torch.equal(a, b), k
    assert models.load_tokenizer("tiny-org/tiny-qwen2").pad_token is not None


def test_a_bare_unknown_name_is_an_error_naming_the_argument(hub_env):
    for call in (models.load_model, models.load_tokenizer, hub.resolve_model,
                 ft_pipeline.resolve_model_dir):
        with pytest.raises(ValueError, match=r"^spec: 'tiny-gpt2' is neither a preset \(wordllama, "
                                             r"all-MiniLM-L6-v2, .*a hub id has a slash"):
            call("tiny-gpt2")
    with pytest.raises(ValueError, match="^auto_class: "):
        hub.load("tiny-org/tiny-gpt2", auto_class="NotAnAutoClass")


def _plain_pool(h: torch.Tensor, m: torch.Tensor, how: str) -> torch.Tensor:
    """Independent loops: mean of the real positions, or the last real position."""
    out = torch.empty(h.shape[0], h.shape[2], dtype=torch.float64)
    for i in range(h.shape[0]):
        real_pos = [t for t in range(h.shape[1]) if int(m[i, t]) == 1]
        rows = h[i, real_pos].double()
        out[i] = rows.mean(0) if how == "mean" else rows[-1]
    return out


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("how", ["mean", "last"])
def test_the_old_pooling_functions_are_the_one_pooling(side, how):
    g = torch.Generator().manual_seed(7)
    n, L, H = 6, 9, 5
    h = torch.randn(n, L, H, generator=g)
    lens = torch.tensor([9, 1, 4, 7, 2, 5])
    pos = torch.arange(L)
    m = (pos[None] < lens[:, None]) if side == "right" else (pos[None] >= L - lens[:, None])
    m = m.long()
    want = _plain_pool(h, m, how)
    one = hub.pool(h, m, how)
    np.testing.assert_allclose(one.double().numpy(), want.numpy(), rtol=1e-6, atol=1e-6)
    for old in (features.pool_hidden(h, m, how), finetune.pool_tokens(h, m, how)):
        assert torch.equal(old, one)
    if how == "mean":
        assert torch.equal(finetune.mean_pool(h, m), one)
    # padding content does not leak into the pooled vectors
    noisy = torch.where(m.bool()[..., None], h, torch.full_like(h, 1e3))
    torch.testing.assert_close(hub.pool(noisy, m, how), one)
