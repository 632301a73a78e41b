"""Caches are verified by content (`w2s_theory.fingerprint`), not trusted.

For each cache -- teacher heads, student heads, convex fits (real pipeline), fine-tuning
predictions and LM features -- a valid cache file computed from *other* inputs, put in the
place of the right one, is detected and recomputed (one warning line naming the cache and
why); a corrupted byte is detected; a changed ``config.json`` of a model folder invalidates
its features; an older-format cache is recomputed with one line, not a crash; and an
unchanged cache is reused without recomputing anything.
"""

from __future__ import annotations

import io
import json
import shutil
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import w2s_theory.features as F
import w2s_theory.heads as heads
import w2s_theory.training as training
from w2s_theory.fingerprint import CacheWarning, digest
from w2s_theory.pipelines import real
from w2s_theory.pipelines.finetune import PredStore, PredStoreWarning
from w2s_theory.pipelines.real import PROVENANCE_COLUMNS, FeatureBank, RealConfig, run_sweep

N = 48


# ============================================================================ real pipeline
def _cfg(cache: Path) -> RealConfig:
    cfg = RealConfig(name="cc", datasets=("harmless",), pairs=(("wordllama", "all-MiniLM-L6-v2"),),
                     losses=("forward_kl", "reverse_kl"), noise=(0.0, 0.3), seeds=(0,), n_rows=N,
                     threads=1, cache=str(cache), convex=real.ConvexConfig(pca_dim=3))
    return replace(cfg, train=replace(cfg.train, min_count=16, dtype="float64"))


def _bank(cfg: RealConfig, seed: int) -> FeatureBank:
    """Features of a "model" whose files differ with ``seed`` (another seed: other numbers)."""
    def loader(dataset, model, split):
        rng = np.random.default_rng([seed, len(model), len(split)])
        c = rng.normal(size=(N, 4))
        c[:, 0] += 0.8                                  # the chosen text is recognisable
        return {"chosen": c, "rejected": rng.normal(size=(N, 4))}

    return FeatureBank(cfg, progress=False, loader=loader)


def _rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[sorted(c for c in df.columns if c not in PROVENANCE_COLUMNS)].sort_values(
        "run_key").reset_index(drop=True)


@pytest.fixture(scope="module")
def two_sweeps(tmp_path_factory):
    """The same sweep on features of seed 0 (cache ``a``) and of seed 1 (cache ``b``)."""
    tmp = tmp_path_factory.mktemp("caches")
    out = {}
    for name, seed in (("a", 0), ("b", 1)):
        cfg = _cfg(tmp / name)
        out[name] = run_sweep(cfg, out=tmp / f"{name}.csv", progress=False, bank=_bank(cfg, seed))
    assert not _rows(out["a"]).equals(_rows(out["b"]))
    return tmp, out["a"]


@pytest.fixture()
def counts(monkeypatch):
    calls = {"train": 0, "fit": 0}
    orig_train, orig_fit = training.train_heads, heads.fit_convex_head

    def count_train(*a, **k):
        calls["train"] += 1
        return orig_train(*a, **k)

    def count_fit(*a, **k):
        calls["fit"] += 1
        return orig_fit(*a, **k)

    monkeypatch.setattr(training, "train_heads", count_train)
    monkeypatch.setattr(heads, "fit_convex_head", count_fit)
    return calls


def _files(cache: Path, which: str) -> list[Path]:
    if which == "convex":
        return sorted((cache / "convex").glob("*.json"))
    return sorted(cache.glob(f"cc-*/{which}.npz"))


def _rerun(tmp: Path, cache: Path, name: str) -> tuple[pd.DataFrame, list[str]]:
    cfg = _cfg(cache)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        df = run_sweep(cfg, out=tmp / f"{name}.csv", progress=False, bank=_bank(cfg, 0))
    return df, [str(x.message) for x in w if issubclass(x.category, CacheWarning)]


def test_unchanged_real_caches_are_reused(two_sweeps, tmp_path, counts):
    tmp, ref = two_sweeps
    cache = tmp_path / "a"
    shutil.copytree(tmp / "a", cache)
    df, msgs = _rerun(tmp_path, cache, "again")
    assert msgs == [] and counts == {"train": 0, "fit": 0}
    pd.testing.assert_frame_equal(_rows(df), _rows(ref), check_exact=True)


@pytest.mark.parametrize("which,what,trained", [("teachers", "teacher cache", 1),
                                                ("students", "student cache", 1),
                                                ("convex", "convex cache entry", 0)])
def test_a_valid_cache_of_other_inputs_in_place_is_recomputed(two_sweeps, tmp_path, counts,
                                                              which, what, trained):
    """The cache file of the same sweep on other features (another seed of the model) is put
    in place: each is detected by its fingerprint and recomputed, to the right rows."""
    tmp, ref = two_sweeps
    cache = tmp_path / "a"
    shutil.copytree(tmp / "a", cache)
    mine, other = _files(cache, which), _files(tmp / "b", which)
    assert [f.name for f in mine] == [f.name for f in other] and mine
    for f, g in zip(mine, other):
        shutil.copyfile(g, f)
    df, msgs = _rerun(tmp_path, cache, which)
    assert len(msgs) == len(mine), msgs
    assert all(what in m and "changed: " in m for m in msgs), msgs
    assert counts["train"] == trained
    assert (counts["fit"] > 0) == (which == "convex")
    pd.testing.assert_frame_equal(_rows(df), _rows(ref), check_exact=False, rtol=1e-9)


def _flip_digit(text: str, key: str) -> str:
    d = json.loads(text)
    v = d[key]
    d[key] = v + 0.125 if v < 0.5 else v - 0.125
    return json.dumps(d)


@pytest.mark.parametrize("which", ["teachers", "students", "convex", "raw_byte"])
def test_a_corrupted_cache_is_detected(two_sweeps, tmp_path, counts, which):
    tmp, ref = two_sweeps
    cache = tmp_path / "a"
    shutil.copytree(tmp / "a", cache)
    if which == "convex":                        # a changed number, still valid JSON
        f = _files(cache, "convex")[0]
        f.write_text(_flip_digit(f.read_text(), "cvx_rkl_acc"))
    elif which == "raw_byte":                    # one flipped byte of the file
        f = _files(cache, "teachers")[0]
        raw = bytearray(f.read_bytes())
        raw[len(raw) // 2] ^= 0x01
        f.write_bytes(bytes(raw))
    else:                                        # an array changed, the envelope kept
        f = _files(cache, which)[0]
        with np.load(f) as z:
            m = {k: z[k] for k in z.files}
        m["w0"] = m["w0"] + 1e-3
        buf = io.BytesIO()
        np.savez(buf, **m)
        f.write_bytes(buf.getvalue())
    df, msgs = _rerun(tmp_path, cache, which)
    assert len(msgs) == 1 and str(f) in msgs[0], msgs
    if which != "raw_byte":
        assert "checksum mismatch" in msgs[0]
    assert counts["train"] + counts["fit"] > 0
    pd.testing.assert_frame_equal(_rows(df), _rows(ref), check_exact=False, rtol=1e-9)


def test_old_format_real_caches_are_recomputed_with_one_line_each(two_sweeps, tmp_path, counts):
    """Caches written before fingerprints existed (no envelope): recomputed, never a crash."""
    tmp, ref = two_sweeps
    cache = tmp_path / "a"
    shutil.copytree(tmp / "a", cache)
    n = 0
    for which in ("teachers", "students"):
        for f in _files(cache, which):
            with np.load(f) as z:
                m = {k: z[k] for k in z.files if not k.startswith("__")}
            buf = io.BytesIO()
            np.savez(buf, **m)
            f.write_bytes(buf.getvalue())
            n += 1
    for f in _files(cache, "convex"):
        d = json.loads(f.read_text())
        del d["__cache__"]
        f.write_text(json.dumps(d))
        n += 1
    df, msgs = _rerun(tmp_path, cache, "old")
    assert len(msgs) == n and all("older version" in m for m in msgs), msgs
    assert counts["train"] == 2 and counts["fit"] > 0
    pd.testing.assert_frame_equal(_rows(df), _rows(ref), check_exact=False, rtol=1e-9)
    _, msgs = _rerun(tmp_path, cache, "old2")                 # rewritten in the new format
    assert msgs == []


# ============================================================================ feature cache
TEXTS = ["a good film", "a bad film", "Human: hi Assistant: hello there", "w1 w2 w3"]


@pytest.fixture()
def extract_calls(monkeypatch):
    calls = []
    orig = F.extract

    def counting(*a, **k):
        calls.append(1)
        return orig(*a, **k)

    monkeypatch.setattr(F.extraction, "extract", counting)      # features_for_texts calls it
    return calls


def test_changed_config_json_invalidates_features(hub_cache, tmp_path, extract_calls):
    """Same weights, another ``config.json``: the cached features are not reused."""
    snap = next((hub_cache / "models--tiny-org--tiny-gpt2" / "snapshots").iterdir())
    model = tmp_path / "tiny-gpt2"
    shutil.copytree(snap, model)
    kw = dict(dataset="t", cache=tmp_path / "c", device="cpu", progress=False)
    x = F.features_for_texts(str(model), TEXTS, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        y = F.features_for_texts(str(model), TEXTS, **kw)          # unchanged: reused
    assert len(extract_calls) == 1 and np.array_equal(x, y)
    cfg = json.loads((model / "config.json").read_text())
    cfg["layer_norm_epsilon"] = 0.5                                # changes the numbers
    (model / "config.json").write_text(json.dumps(cfg))
    with pytest.warns(CacheWarning, match=r"feature cache .*changed: model_files"):
        z = F.features_for_texts(str(model), TEXTS, **kw)
    assert len(extract_calls) == 2
    fresh = F.features_for_texts(str(model), TEXTS, **{**kw, "cache": tmp_path / "fresh"})
    assert np.array_equal(z, fresh) and not np.allclose(z, x)
    (model / "tokenizer_config.json").write_text(
        (model / "tokenizer_config.json").read_text().replace("}", ', "x_note": 1}', 1))
    with pytest.warns(CacheWarning, match="changed: model_files"):  # tokenizer files count too
        F.features_for_texts(str(model), TEXTS, **kw)
    assert len(extract_calls) == 4


def _entry(cache: Path) -> tuple[Path, Path]:
    (npz,) = (cache / "features").rglob("*.npz")
    return npz, npz.with_suffix(".json")


@pytest.mark.parametrize("case", ["corrupt_byte", "old_format", "other_entry"])
def test_feature_cache_entry_not_vouched_for_is_recomputed(tmp_path, extract_calls, case):
    kw = dict(dataset="t", progress=False)
    x = F.features_for_texts("wordllama", TEXTS, cache=tmp_path / "a", **kw)
    npz, meta = _entry(tmp_path / "a")
    if case == "corrupt_byte":
        raw = bytearray(npz.read_bytes())
        raw[len(raw) // 2] ^= 0x01
        npz.write_bytes(bytes(raw))
        why = "checksum mismatch"
    elif case == "old_format":
        info = json.loads(meta.read_text())
        del info["fingerprint"]
        meta.write_text(json.dumps(info))
        why = "older version"
    else:   # a valid entry of the same key, computed by another version of the code
        info = json.loads(meta.read_text())
        info["fingerprint"]["code"] = "0.0.0"
        meta.write_text(json.dumps(info))
        why = "changed: code"
    with pytest.warns(CacheWarning, match=why) as w:
        y = F.features_for_texts("wordllama", TEXTS, cache=tmp_path / "a", **kw)
    assert len([m for m in w if issubclass(m.category, CacheWarning)]) == 1
    assert len(extract_calls) == 2 and np.array_equal(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)                # rewritten: reused again
        F.features_for_texts("wordllama", TEXTS, cache=tmp_path / "a", **kw)
    assert len(extract_calls) == 2


def test_token_cache_of_other_texts_in_place_is_recomputed(tmp_path):
    """The token ids of other texts (same count) put in place of the right ones: not used."""
    x = F.extract("wordllama", TEXTS, cache=tmp_path / "a", progress=False)
    other = [t[::-1] for t in TEXTS]
    F.extract("wordllama", other, cache=tmp_path / "b", progress=False)
    (mine,), (theirs,) = ((tmp_path / d / "tokens").glob("*.npz") for d in "ab")
    shutil.copyfile(theirs, mine)
    with pytest.warns(CacheWarning, match=r"token cache .*changed: key"):
        y = F.extract("wordllama", TEXTS, cache=tmp_path / "a", progress=False)
    assert np.array_equal(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)                # rewritten: reused again
        F.extract("wordllama", TEXTS, cache=tmp_path / "a", progress=False)


def test_prebuilt_file_checksum_in_the_manifest_is_verified(tmp_path, monkeypatch):
    from w2s_theory import data as D
    from w2s_theory.fingerprint import file_digest

    sentinel = np.zeros((8000, 4), np.float32)
    monkeypatch.setattr(F.prebuilt, "features_for_texts", lambda *a, **k: sentinel)
    folder = tmp_path / "p" / "hh_rlhf" / "wordllama"
    (folder / "harmless").mkdir(parents=True)
    x = np.random.default_rng(0).normal(size=(4000, 4)).astype(np.float16)
    f = folder / "harmless" / "test.npz"
    np.savez(f, chosen=x, rejected=-x)
    sha = D.load_hh_rlhf("harmless", "test").sha256
    manifest = {"sources": {"harmless/test.jsonl": sha}, "files": {"harmless/test.npz": file_digest(f)}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    got = F.load_features("wordllama", "harmless", "test", root=tmp_path / "p")
    assert np.array_equal(got["chosen"], x.astype(np.float32))      # verified, used
    np.savez(f, chosen=x, rejected=x)                               # replaced: same shapes
    with pytest.warns(UserWarning, match="differs from the manifest"):
        got = F.load_features("wordllama", "harmless", "test", root=tmp_path / "p")
    assert np.array_equal(got["chosen"], sentinel[:4000])


# ============================================================================ prediction store
REC = {"regime": "full", "role": "ceiling", "seed": 0, "config": {}}


def _fp(data: str) -> dict:
    from w2s_theory.fingerprint import fingerprint

    return fingerprint(1, data=digest(data), strong_model=digest("m"))


def test_pred_store_of_other_inputs_or_older_format_is_dropped(tmp_path):
    p = tmp_path / "s.preds.npz"
    s = PredStore(p, n_test=3, fingerprint=_fp("a"))
    s.add({"k0": (np.arange(3.0), REC), "k1": (np.ones(3), {**REC, "seed": 1})})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sorted(PredStore(p, n_test=3, fingerprint=_fp("a")).logits) == ["k0", "k1"]
    with pytest.warns(PredStoreWarning, match=r"changed: data.*recomputed") as w:
        assert PredStore(p, n_test=3, fingerprint=_fp("b")).logits == {}
    assert len(w) == 1 and str(w[0].message).startswith(str(p))
    with np.load(p) as z:                                           # an older store
        m = {k: z[k] for k in ("keys", "records", "logits")}
    np.savez(p, **m)
    with pytest.warns(PredStoreWarning, match="older version"):
        assert PredStore(p, n_test=3, fingerprint=_fp("a")).logits == {}


@pytest.mark.parametrize("what", ["logits", "record"])
def test_pred_store_checksum_drops_a_changed_run(tmp_path, what):
    p = tmp_path / "s.preds.npz"
    s = PredStore(p, n_test=3, fingerprint=_fp("a"))
    s.add({"k0": (np.arange(3.0), REC), "k1": (np.ones(3), {**REC, "seed": 1})})
    with np.load(p) as z:
        m = {k: z[k] for k in z.files}
    if what == "logits":
        m["logits"][1, 0] += 0.5
    else:
        recs = json.loads(str(m["records"]))
        recs["k1"]["seed"] = 7
        m["records"] = np.array(json.dumps(recs))
    np.savez(p, **m)
    with pytest.warns(PredStoreWarning, match="k1: checksum mismatch"):
        got = PredStore(p, n_test=3, fingerprint=_fp("a"))
    assert sorted(got.logits) == ["k0"]


@pytest.fixture()
def tiny_finetune(tmp_path):
    """A tiny head-only fine-tuning sweep on a random 2-layer BERT folder (5 runs), with the
    same folder fine-tuned as the weak model and an lr selection of one candidate."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from w2s_theory.models import model_dir

    tok = AutoTokenizer.from_pretrained(str(model_dir("all-MiniLM-L6-v2")), local_files_only=True)
    torch.manual_seed(0)
    bb = BertModel(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                              num_attention_heads=4, intermediate_size=64,
                              max_position_embeddings=64, hidden_dropout_prob=0.0,
                              attention_probs_dropout_prob=0.0), add_pooling_layer=False)
    mdir = tmp_path / "tiny"
    bb.save_pretrained(str(mdir))
    tok.save_pretrained(str(mdir))
    out = tmp_path / "res.csv"
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"""
name = "store"
strong = "{mdir}"
[data]
n_train = 32
n_test = 24
[weak]
model = "{mdir}"
kind = "finetune"
lr = 1e-3
[lr_select]
grid = [1e-3]
holdout = 16
[train]
max_length = 24
precision = "fp32"
lr = 1e-3
batch_size = 8
[sweep]
losses = ["forward_kl", "reverse_kl"]
noise = [0.0, 0.4]
seeds = [0]
regimes = ["head_only"]
[run]
out = "{out}"
""")
    return cfg, out, mdir


def _finetune(cfg: Path, capsys) -> str:
    import torch

    from w2s_theory.cli import main as cli_main

    capsys.readouterr()
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert cli_main(["finetune", "--config", str(cfg), "--quiet"]) == 0
    finally:
        torch.set_num_threads(n)
    return capsys.readouterr().out


def test_finetune_caches_of_a_model_with_another_config_json_are_recomputed(tiny_finetune,
                                                                           capsys):
    """The models' ``config.json`` changes (weights and run keys do not): the weak model's
    predictions, the lr selection and the stored predictions are not reused; unchanged,
    they are (nothing trained)."""
    cfg, out, mdir = tiny_finetune
    printed = _finetune(cfg, capsys)
    assert "5 runs trained" in printed and "lr_select: lr" in printed
    assert "fine-tuned on" in printed
    p = out.with_suffix(".preds.npz")
    before = dict(PredStore(p).logits)
    out.unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        printed = _finetune(cfg, capsys)                            # unchanged: reused
    assert "0 runs trained" in printed and "lr_select: lr" not in printed
    assert "fine-tuned on" not in printed
    c = json.loads((mdir / "config.json").read_text())
    c["hidden_act"] = "relu"
    (mdir / "config.json").write_text(json.dumps(c))
    out.unlink()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        printed = _finetune(cfg, capsys)
    msgs = [str(x.message) for x in w if issubclass(x.category, CacheWarning)]
    assert len(msgs) == 3, msgs
    assert any(m.startswith("weak-model cache") and "changed: weak_model" in m for m in msgs)
    assert any(m.startswith("lr-selection cache") and "changed: strong_model" in m for m in msgs)
    assert any(m.startswith(str(p)) and "strong_model" in m for m in msgs)
    assert "5 runs trained" in printed and "lr_select: lr" in printed
    after = PredStore(p).logits
    assert sorted(after) == sorted(before)
    assert any(not np.allclose(after[k], before[k]) for k in before)


def test_sealed_records_older_other_or_corrupt_are_left_out_with_one_line(tmp_path):
    """The keyed JSON records (lr selection, weak model): each verified on its own."""
    from w2s_theory.fingerprint import fingerprint, load_records, save_records

    p = tmp_path / "r.json"
    fp = fingerprint(1, data="a")
    save_records(p, {"k0": {"lr": 0.1}, "k1": {"lr": 0.2}, "k2": {"lr": 0.3}}, fp)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_records(p, fp, what="x cache") == {"k0": {"lr": 0.1}, "k1": {"lr": 0.2},
                                                       "k2": {"lr": 0.3}}
    raw = json.loads(p.read_text())
    raw["k1"]["lr"] = 0.25                                          # a changed number
    del raw["k2"]["__cache__"]                                      # an older record
    p.write_text(json.dumps(raw))
    with pytest.warns(CacheWarning) as w:
        got = load_records(p, fp, what="x cache")
    assert got == {"k0": {"lr": 0.1}} and len(w) == 1
    msg = str(w[0].message)
    assert msg.startswith(f"x cache {p}: 2 of 3 records not used") and "checksum" in msg \
        and "older version" in msg, msg
    with pytest.warns(CacheWarning, match=r"3 of 3 records not used \(computed from other "
                                          r"inputs \(changed: data\)\)"):
        save_records(p, {"k0": {"lr": 0.1}, "k1": {"lr": 0.2}, "k2": {"lr": 0.3}}, fp)
        assert load_records(p, fingerprint(1, data="b"), what="x cache") == {}
    p.write_text("{torn")
    with pytest.warns(CacheWarning, match="unreadable"):
        assert load_records(p, fp, what="x cache") == {}


@pytest.mark.parametrize("call,name", [
    (lambda fp: fp.file_digest(5), "path"),
    (lambda fp: fp.file_digest("/no/such/file"), "path"),
    (lambda fp: fp.model_files_digest("/no/such/folder"), "folder"),
    (lambda fp: fp.fingerprint(-1), "format"),
    (lambda fp: fp.fingerprint("1"), "format"),
    (lambda fp: fp.fingerprint(1, data=object()), "data"),
    (lambda fp: fp.fingerprint(1, code="x"), "code"),
    (lambda fp: fp.digest({1, 2}), "objs"),
    (lambda fp: fp.digest(np.array([None])), "objs"),
    (lambda fp: fp.mismatch_reason({}, None), "expected"),
    (lambda fp: fp.save_npz(5, {}, {}), "path"),
    (lambda fp: fp.save_npz("/tmp/x.npz", [1], {}), "arrays"),
    (lambda fp: fp.save_npz("/tmp/x.npz", {"__checksum__": 1}, {}), "arrays"),
    (lambda fp: fp.load_npz("/tmp/x.npz", None, what=3), "what"),
    (lambda fp: fp.seal([1], {}), "payload"),
    (lambda fp: fp.seal({"a": object()}, {}), "payload"),
    (lambda fp: fp.seal({"__cache__": 1}, {}), "payload"),
    (lambda fp: fp.unseal({}, "fp"), "fp"),
    (lambda fp: fp.load_records(None, None, what="x"), "path"),
    (lambda fp: fp.save_records("/tmp/r.json", {"k": 1}, {}), "records['k']"),
])
def test_fingerprint_refuses_bad_input_naming_the_argument(call, name):
    import w2s_theory.fingerprint as fp

    with pytest.raises((TypeError, ValueError, FileNotFoundError)) as info:
        call(fp)
    assert str(info.value).startswith(f"{name}: "), str(info.value)
