"""Any model: presets, folders, hub ids through a local hub cache (offline), pooling."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import COMMIT, _tiny
from w2s_theory.hub import (
    default_pooling,
    is_decoder,
    load_auto_model,
    parse_spec,
    pool,
    resolve_model,
)


def test_pooling_against_loops():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(4, 5, 3, generator=g)
    m = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]])
    for i in range(4):
        real = [t for t in range(5) if m[i, t]]
        assert torch.allclose(pool(h, m, "mean")[i], h[i, real].mean(0))
        assert torch.equal(pool(h, m, "last")[i], h[i, real[-1]])
        assert torch.equal(pool(h, m, "cls")[i], h[i, 0])
    with pytest.raises(ValueError, match="pooling"):
        pool(h, m, "max")
    with pytest.raises(ValueError, match="shapes"):
        pool(h, m[:, :3], "mean")


def test_specs_presets_and_folders(tmp_path):
    assert parse_spec("org/m@v1") == ("org/m", "v1") and parse_spec("gpt2") == ("gpt2", None)
    with pytest.raises(ValueError, match="org/name@revision"):
        parse_spec("org/m@")
    r = resolve_model("all-MiniLM-L6-v2")
    assert r.kind == "preset" and (r.path / "config.json").is_file() and len(r.digest) == 64
    f = tmp_path / "m"
    _tiny("gpt2").save_pretrained(str(f))
    a = resolve_model(str(f))
    assert a.kind == "folder" and a.path == f.resolve()
    torch.manual_seed(1)
    g = tmp_path / "m2"
    _tiny("gpt2").save_pretrained(str(g))
    assert resolve_model(str(g)).digest != a.digest         # other weights, other cache key
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="has no config.json"):
        resolve_model(str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="folder not found"):
        resolve_model(str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="neither a preset"):
        resolve_model("not a model!")


def test_hub_ids_from_the_local_cache_offline(hub_cache, offline):
    r = resolve_model("tiny-org/tiny-gpt2", cache_dir=hub_cache)
    assert r.kind == "hub" and r.path.name == COMMIT and r.digest.endswith(COMMIT)
    assert resolve_model(f"tiny-org/tiny-llama@{COMMIT}", cache_dir=hub_cache).path.name == COMMIT
    with pytest.raises(ValueError, match="HF_HUB_OFFLINE is set and the model is not in the local"):
        resolve_model("tiny-org/not-there", cache_dir=hub_cache)


@pytest.mark.parametrize("kind", ["gpt2", "llama", "qwen2"])
def test_decoders_load_by_hub_id_and_pool_the_last_real_token(hub_cache, offline, kind):
    model, tok, r = load_auto_model(f"tiny-org/tiny-{kind}", cache_dir=hub_cache)
    assert is_decoder(model.config) and default_pooling(model.config) == "last"
    assert tok.pad_token_id is not None                      # EOS stands in for the missing pad
    texts = ["Human: w1 w2 Assistant: yes", "Human: w3 Assistant: no w4 w5 w6"]
    tok.padding_side = "right"
    b = tok(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        hb = pool(model(**b).last_hidden_state, b["attention_mask"], "last")
        for i, t in enumerate(texts):
            one = tok([t], return_tensors="pt")
            h1 = model(**one).last_hidden_state[0, -1]
            np.testing.assert_allclose(hb[i].numpy(), h1.numpy(), rtol=1e-5, atol=1e-5)


def test_encoders_default_to_mean():
    from transformers import BertConfig

    assert not is_decoder(BertConfig()) and default_pooling(BertConfig()) == "mean"
    assert json.loads(json.dumps({"p": default_pooling(BertConfig(is_decoder=True))})) == {"p": "last"}
