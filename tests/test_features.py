"""Feature extraction: pooling, bucketing, tokenization, batching invariance, the shared
reference features, the verified cache, the prebuilt folder and the GPU script (on CPU)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from w2s_theory import data as D
from w2s_theory import features as F
from w2s_theory import models as M

os.environ.setdefault("HF_HUB_OFFLINE", "1")
SHARED_FEATURES = D.project_root().parent / "shared" / "features"


@pytest.fixture(scope="module")
def minilm():
    return M.load_model("all-MiniLM-L6-v2", device="cpu", dtype="float32"), M.load_tokenizer("all-MiniLM-L6-v2")


def _cos(a, b):
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


# ------------------------------------------------------------------ pooling
@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5), st.integers(1, 7), st.integers(0, 2**31 - 1), st.booleans())
def test_pool_hidden_matches_loop(b, L, seed, left_pad):
    rng = np.random.default_rng(seed)
    h = rng.normal(size=(b, L, 3)).astype(np.float32)
    lens = rng.integers(1, L + 1, size=b)
    mask = np.zeros((b, L), dtype=np.int64)
    for i, n in enumerate(lens):
        if left_pad:
            mask[i, L - n:] = 1
        else:
            mask[i, :n] = 1
    mean = F.pool_hidden(torch.from_numpy(h), torch.from_numpy(mask), "mean").numpy()
    last = F.pool_hidden(torch.from_numpy(h), torch.from_numpy(mask), "last").numpy()
    for i in range(b):
        real = np.flatnonzero(mask[i])
        np.testing.assert_allclose(mean[i], h[i, real].astype(np.float64).mean(0), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(last[i], h[i, real[-1]])


def test_last_token_uses_the_mask_not_token_ids():
    # id 0 is a real token at the end of row 0; padding (also id 0) follows in row 1
    ids = torch.tensor([[5, 7, 0], [5, 0, 0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    h = torch.arange(6.0).reshape(2, 3, 1)
    got = F.pool_hidden(h, mask, "last")[:, 0].tolist()
    assert got == [2.0, 3.0]
    wrong = [h[i, int((ids[i] != 0).nonzero().max())].item() for i in range(2)]
    assert wrong != got      # the id heuristic picks position 1 in row 0: the check can fail
    with pytest.raises(ValueError, match="no real token"):
        F.pool_hidden(h, torch.tensor([[1, 0, 0], [0, 0, 0]]), "last")


# ------------------------------------------------------------------ buckets and ids
@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 50), min_size=1, max_size=80), st.integers(1, 200), st.integers(1, 9))
def test_length_buckets_partition_and_budget(lengths, max_tokens, max_batch):
    lengths = np.array(lengths)
    batches = F.length_buckets(lengths, max_tokens=max_tokens, max_batch=max_batch)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(lengths.size))                  # a partition
    assert np.all(np.diff(lengths[flat]) >= 0)                                 # sorted by length
    for b in batches:
        assert 1 <= b.size <= max_batch
        assert b.size == 1 or b.size * lengths[b].max() <= max_tokens          # padded budget


def test_token_ids_roundtrip_and_corruption(tmp_path):
    t = F.TokenIds.from_lists([[1, 2, 3], [70000], [4]])
    assert t.ids.dtype == np.int32 and t.lengths.tolist() == [3, 1, 1]
    t.save(tmp_path / "t.npz")
    u = F.TokenIds.load(tmp_path / "t.npz")
    assert [u.row(i).tolist() for i in range(3)] == [[1, 2, 3], [70000], [4]]
    np.savez(tmp_path / "bad.npz", ids=t.ids, offsets=np.array([0, 3, 2, 5]))
    with pytest.raises(ValueError, match="offsets"):
        F.TokenIds.load(tmp_path / "bad.npz")


def test_tokenize_left_truncation_keeps_the_end(minilm):
    _, tok = minilm
    text = " ".join(f"w{i}" for i in range(300))
    left = F.tokenize(tok, [text, "short"], max_length=16, truncation_side="left")
    right = F.tokenize(tok, [text], max_length=16, truncation_side="right")
    full = tok(text)["input_ids"]
    assert left.lengths.tolist()[0] == 16 and tok.truncation_side == "right"   # restored
    assert left.row(0).tolist() == [full[0]] + full[-15:]                       # [CLS] + the end
    assert right.row(0).tolist() == full[:15] + [full[-1]]                      # start + [SEP]
    assert left.row(1).tolist() == tok("short")["input_ids"]


# ------------------------------------------------------------------ embedding
def test_batching_is_invisible_and_layers_differ(minilm):
    model, tok = minilm
    texts = ["a", "the cat sat on the mat", "x " * 40, "Human: hi\n\nAssistant: hello there"]
    tokens = F.tokenize(tok, texts, max_length=32)
    big = F.embed_token_ids(model, tokens, max_tokens=100_000, progress=False)
    small = F.embed_token_ids(model, tokens, max_tokens=40, progress=False)    # 1-2 texts a batch
    np.testing.assert_allclose(big, small, atol=2e-5)
    last3 = F.embed_token_ids(model, tokens, layer=3, pooling="last", progress=False)
    with torch.inference_mode():            # independent: each text alone, no padding at all
        for i in range(len(texts)):
            ids = torch.from_numpy(tokens.row(i).astype(np.int64))[None]
            res = model(input_ids=ids, output_hidden_states=True)
            np.testing.assert_allclose(big[i], res.last_hidden_state[0].mean(0).numpy(), atol=2e-5)
            np.testing.assert_allclose(last3[i], res.hidden_states[3][0, -1].numpy(), atol=2e-5)
    np.testing.assert_allclose(F.embed_token_ids(model, tokens, layer=6, progress=False), big, atol=1e-6)
    assert np.abs(F.embed_token_ids(model, tokens, layer=2, progress=False) - big).max() > 0.05


def test_reproduces_shared_minilm_features(minilm):
    """32 texts of harmless/test (those > 512 tokens and random others) vs the H100 bf16 features."""
    model, tok = minilm
    pairs = D.load_hh_rlhf("harmless", "test")
    ref = np.load(SHARED_FEATURES / "hh_rlhf" / "all-MiniLM-L6-v2" / "harmless" / "test.npz")
    texts = pairs.chosen + pairs.rejected
    refs = np.concatenate([ref["chosen"], ref["rejected"]]).astype(np.float32)
    n_tok = F.tokenize(tok, texts, max_length=513).lengths
    longest = np.flatnonzero(n_tok > 512)[:4]                      # texts that get truncated
    assert longest.size >= 2
    rest = np.random.default_rng(0).choice(len(texts), 32 - longest.size, replace=False)
    idx = np.concatenate([longest, rest])
    spec = F.FEATURE_SETS["all-MiniLM-L6-v2"]
    tokens = F.tokenize(tok, [texts[i] for i in idx], max_length=spec.max_length,
                        truncation_side=spec.truncation_side)
    assert tokens.lengths[:longest.size].min() == 512              # truncation really happens
    x = F.embed_token_ids(model, tokens, progress=False)
    cos = _cos(x, refs[idx])
    assert cos.min() > 0.999, cos.min()
    assert np.abs(x - refs[idx]).max() < 0.03
    # break the protocol on purpose: truncating from the right fails the same check
    wrong = F.tokenize(tok, [texts[i] for i in longest], max_length=512, truncation_side="right")
    y = F.embed_token_ids(model, wrong, progress=False)
    assert _cos(y, refs[longest]).min() < 0.999


def test_wordllama_static_matches_package_embed():
    wl = M.load_wordllama()
    texts = ["good movie", "Terrible, awful service.", "neutral statement about tables"]
    tokens = F.tokenize(wl.tokenizer, texts, max_length=512, add_special_tokens=False)
    np.testing.assert_allclose(F.static_embed(wl.embedding, tokens), wl.embed(texts), atol=1e-5)
    short = F.tokenize(wl.tokenizer, texts, max_length=2, add_special_tokens=False)
    assert short.lengths.max() == 2 and wl.tokenizer.padding is not None     # settings restored


# ------------------------------------------------------------------ cache
def test_cache_hits_and_rebuilds_corrupt_or_stale_entries(tmp_path, monkeypatch):
    calls = []
    real_extract = F.extract

    def counting(*a, **k):
        calls.append(1)
        return real_extract(*a, **k)

    monkeypatch.setattr(F.extraction, "extract", counting)
    texts = D.load_vader(seed=0)["test"].texts[:50]          # the sentiment task's texts
    x = F.features_for_texts("wordllama", texts, dataset="vader-test", cache=tmp_path, progress=False)
    assert len(calls) == 1 and x.shape == (50, 256) and x.dtype == np.float32
    y = F.features_for_texts("wordllama", texts, dataset="vader-test", cache=tmp_path, progress=False)
    assert len(calls) == 1 and np.array_equal(x, y)                           # hit
    (npz,) = (tmp_path / "features").rglob("*.npz")
    meta = npz.with_suffix(".json")
    raw = bytearray(npz.read_bytes())
    raw[len(raw) // 2] ^= 0xFF                                                # corrupt one byte
    npz.write_bytes(bytes(raw))
    z = F.features_for_texts("wordllama", texts, dataset="vader-test", cache=tmp_path, progress=False)
    assert len(calls) == 2 and np.array_equal(x, z)                           # rebuilt
    info = json.loads(meta.read_text())
    info["key"]["text_digest"] = "0" * 64                                     # stale entry
    meta.write_text(json.dumps(info))
    F.features_for_texts("wordllama", texts, dataset="vader-test", cache=tmp_path, progress=False)
    assert len(calls) == 3
    npz.unlink()                                                              # missing payload
    F.features_for_texts("wordllama", texts, dataset="vader-test", cache=tmp_path, progress=False)
    assert len(calls) == 4
    # anything that changes the numbers is a different entry
    F.features_for_texts("wordllama", texts[:49], dataset="vader-test", cache=tmp_path, progress=False)
    F.features_for_texts(F.FeatureSpec("wordllama", max_length=8), texts, dataset="vader-test",
                         cache=tmp_path, progress=False)
    assert len(calls) == 6 and len(list((tmp_path / "features").rglob("*.npz"))) == 3


def test_cache_key_covers_weights_and_spec():
    base = F.cache_key(F.FeatureSpec("m"), "w", "d", "t", "float32")
    variants = [F.cache_key(F.FeatureSpec("m", layer=3), "w", "d", "t", "float32"),
                F.cache_key(F.FeatureSpec("m", pooling="last"), "w", "d", "t", "float32"),
                F.cache_key(F.FeatureSpec("m", truncation_side="right"), "w", "d", "t", "float32"),
                F.cache_key(F.FeatureSpec("m", max_length=256), "w", "d", "t", "float32"),
                F.cache_key(F.FeatureSpec("m"), "w2", "d", "t", "float32"),
                F.cache_key(F.FeatureSpec("m"), "w", "d", "t", "bfloat16")]
    assert all(v != base for v in variants)


# ------------------------------------------------------------------ prebuilt folder
def _fake_prebuilt(root: Path, name: str, sha: str, n: int = 4000, hidden: int = 4) -> np.ndarray:
    folder = root / "hh_rlhf" / name
    (folder / "harmless").mkdir(parents=True)
    x = np.random.default_rng(0).normal(size=(n, hidden)).astype(np.float16)
    np.savez(folder / "harmless" / "test.npz", chosen=x, rejected=-x)
    (folder / "manifest.json").write_text(json.dumps({"sources": {"harmless/test.jsonl": sha}}))
    return x


def test_load_features_prefers_verified_prebuilt(tmp_path, monkeypatch):
    def no_compute(*a, **k):
        raise AssertionError("computed although prebuilt features exist")

    monkeypatch.setattr(F.prebuilt, "features_for_texts", no_compute)
    f = F.load_features("all-MiniLM-L6-v2", "harmless", "test")               # the shared folder
    ref = np.load(SHARED_FEATURES / "hh_rlhf" / "all-MiniLM-L6-v2" / "harmless" / "test.npz")
    assert f["chosen"].dtype == np.float32 and np.array_equal(f["rejected"], ref["rejected"].astype(np.float32))
    sha = D.load_hh_rlhf("harmless", "test").sha256
    x = _fake_prebuilt(tmp_path / "p", "wordllama", sha)
    monkeypatch.setenv(F.ENV_FEATURES, str(tmp_path / "p"))
    got = F.load_features("wordllama", "harmless", "test")
    assert np.array_equal(got["chosen"], x.astype(np.float32))


def test_prebuilt_with_wrong_digest_or_shape_is_not_used(tmp_path, monkeypatch):
    sentinel = np.zeros((8000, 256), np.float32)
    monkeypatch.setattr(F.prebuilt, "features_for_texts", lambda *a, **k: sentinel)
    _fake_prebuilt(tmp_path / "p", "wordllama", "0" * 64)
    with pytest.warns(UserWarning, match="different harmless/test.jsonl"):
        f = F.load_features("wordllama", "harmless", "test", root=tmp_path / "p")
    assert f["chosen"] is not None and np.array_equal(f["chosen"], sentinel[:4000])
    sha = D.load_hh_rlhf("harmless", "test").sha256
    _fake_prebuilt(tmp_path / "q", "wordllama", sha, n=10)
    with pytest.warns(UserWarning, match="shape"):
        F.load_features("wordllama", "harmless", "test", root=tmp_path / "q")
    with pytest.raises(FileNotFoundError, match="W2S_FEATURES_DIR"):
        monkeypatch.setenv(F.ENV_FEATURES, str(tmp_path / "missing"))
        F.load_features("wordllama", "harmless", "test")


# ------------------------------------------------------------------ GPU script, on CPU
def test_gpu_script_runs_on_cpu_and_matches_reference(tmp_path):
    from w2s_theory.pipelines import features as pipeline

    prep = tmp_path / "minilm"
    man = pipeline.prepare_gpu(prep, limit=4, ref_rows=1)
    assert man["n_texts"] == 48 and (prep / "model.safetensors").is_file()
    assert "prebuilt" in man["reference"]["source"]
    out = tmp_path / "out"
    script = D.project_root() / "experiments" / "gpu" / "extract_features.py"
    # standalone: runs from any cwd without the package on PYTHONPATH (imports from the tree)
    res = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True,
                         cwd=tmp_path, env={**os.environ, "PYTHONPATH": ""})
    assert res.returncode == 0 and "--model-dir" in res.stdout, res.stderr[-2000:]
    spec = importlib.util.spec_from_file_location("extract_features_script", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--model-dir", str(prep), "--out", str(out), "--limit", "2", "--repeats", "1",
                     "--device", "cpu", "--save-features"]) == 0
    (r,) = json.loads((out / "timings.json").read_text())
    assert r["n_texts"] == 24 and r["check"]["rows"] == 24 and r["check"]["cosine_min"] > 0.999
    assert r["check"]["ok"]
    assert r["texts_per_s"] > 0 and "CPU" in r["device"]
    saved = np.load(out / "hh_rlhf" / "all-MiniLM-L6-v2" / "helpful" / "test.npz")
    ref = np.load(SHARED_FEATURES / "hh_rlhf" / "all-MiniLM-L6-v2" / "helpful" / "test.npz")
    assert saved["chosen"].shape == (2, 384)
    assert _cos(saved["rejected"].astype(np.float32), ref["rejected"][:2].astype(np.float32)).min() > 0.999
    with warnings.catch_warnings(record=True) as w:                          # 2 rows, not 4000
        warnings.simplefilter("always")
        assert F.load_prebuilt("all-MiniLM-L6-v2", "helpful", "test", root=out) is None
    assert any("shape" in str(x.message) for x in w)
    shutil.rmtree(prep)


# ------------------------------------------------------------------ CLI
def test_cli_info_and_extract_from_toml(tmp_path, capsys):
    from w2s_theory.cli import main
    from w2s_theory.pipelines import features as pipeline

    assert main(["features", "info", "--cache", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "all-MiniLM-L6-v2" in out and "Gemma-3-270M" in out
    (tmp_path / "vader").mkdir()
    shutil.copy(D.fetch_vader(), tmp_path / "vader" / D.VADER_SDIST)      # no second download
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[features]\nmodel = "wordllama"\ndata = "vader"\nsplits = ["test", "train_gt"]\n'
                   f'cache = "{tmp_path}"\n')
    assert pipeline.ExtractConfig.from_toml(cfg).splits == ("test", "train_gt")
    assert main(["features", "extract", "--config", str(cfg)]) == 0
    assert len(list((tmp_path / "features" / "wordllama").rglob("*.npz"))) == 2
    cfg.write_text('model = "wordllama"\nlayers = 3\n')
    with pytest.raises(ValueError, match="unknown key"):
        pipeline.ExtractConfig.from_toml(cfg)
    with pytest.raises(ValueError, match="data"):
        pipeline.ExtractConfig(data="imdb")
    for f in ("features_minilm.toml", "features_vader.toml"):
        pipeline.ExtractConfig.from_toml(D.project_root() / "experiments" / f)


def test_decoder_middle_layer_and_last_token_match_a_full_run():
    """A tiny random Llama (no weights needed): only the blocks up to ``layer`` run, yet
    ``hidden_states[layer]`` pooled over the mask equals the full model's, text by text."""
    from transformers import LlamaConfig, LlamaModel

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=4,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64)
    model = LlamaModel(cfg).eval()
    rows = [[3, 0, 7, 9, 0], [5, 4], [0, 1, 2, 3, 4, 5, 6, 0]]     # id 0 as a real token
    tokens = F.TokenIds.from_lists(rows)
    for layer in (0, 2, 3, None):
        for pooling in ("mean", "last"):
            got = F.embed_token_ids(model, tokens, layer=layer, pooling=pooling, pad_id=0,
                                    max_tokens=10, progress=False)
            with torch.inference_mode():
                for i, r in enumerate(rows):
                    res = model(input_ids=torch.tensor([r]), output_hidden_states=True)
                    h = (res.last_hidden_state if layer is None else res.hidden_states[layer])[0]
                    want = h.mean(0) if pooling == "mean" else h[-1]
                    np.testing.assert_allclose(got[i], want.numpy(), atol=1e-5)
    assert len(model.layers) == 4                                      # restored
    calls = []
    model.layers[3].register_forward_hook(lambda *a: calls.append(1))
    F.embed_token_ids(model, tokens, layer=2, pad_id=0, max_tokens=10, progress=False)
    assert len(calls) == 1           # block 3 ran once (the full-stack self-check), not per batch
    with torch.inference_mode():
        full = model(input_ids=torch.tensor([rows[2]]), output_hidden_states=True)
    # the last entry of hidden_states is the normed output: a different number
    assert not torch.allclose(full.hidden_states[4], full.hidden_states[3])


def test_vader_features_written_by_the_cli_are_the_ones_the_real_pipeline_reads(tmp_path, monkeypatch):
    """`w2s-theory features extract --data vader` writes under the data registry's cache tag and
    the real pipeline's FeatureBank reads exactly those entries: nothing is recomputed."""
    from w2s_theory.cli import main
    from w2s_theory.datasets import feature_cache_tag
    from w2s_theory.pipelines.real import FeatureBank, RealConfig

    sdist = D.fetch_vader()
    monkeypatch.setenv(D.ENV_CACHE, str(tmp_path))
    (tmp_path / "vader").mkdir()
    shutil.copy(sdist, tmp_path / "vader" / D.VADER_SDIST)                  # no second download
    assert main(["features", "extract", "--model", "wordllama", "--data", "vader"]) == 0
    written = sorted(p.parent.name for p in (tmp_path / "features" / "wordllama").rglob("*.npz"))
    assert written == sorted(feature_cache_tag("vader", sp) for sp in D.SPLITS)

    def no_compute(*a, **k):
        raise AssertionError("the real pipeline recomputed features the CLI had cached")

    monkeypatch.setattr(F.extraction, "extract", no_compute)
    cfg = RealConfig(name="v", datasets=("vader",), pairs=(("wordllama", "all-MiniLM-L6-v2"),))
    base = FeatureBank(cfg, progress=False).base("vader", "wordllama")
    assert {sp: x.shape for sp, x in base.items()} == {sp: (4000, 257) for sp in D.SPLITS}
