"""The real-model sweep: rows, bound invariants, resume after a kill, same config -> same row,
and one live end-to-end run on MiniLM features computed now."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import w2s_theory.training as training
from w2s_theory.pipelines import real
from w2s_theory.pipelines.real import (
    PROVENANCE_COLUMNS,
    FeatureBank,
    RealConfig,
    derive_seed,
    enumerate_runs,
    run_sweep,
)

SHARED = Path(__file__).resolve().parents[2] / "shared"
PREBUILT = SHARED / "features" / "hh_rlhf"
WEAK, STRONG = "all-MiniLM-L6-v2", "SmolLM2-135M-layer15"

TOML = f"""
name = "tiny"
datasets = ["harmless"]
pairs = [["{WEAK}", "{STRONG}"]]
losses = ["forward_kl", "reverse_kl", "forward_ce", "reverse_ce"]
confidence = [false, true]
noise = [0.0, 0.3]
seeds = [0, 1]
n_rows = 96
gamma = 1e-3
[train]
lr = 0.003
dtype = "float64"
min_count = 32
[convex]
pca_dim = 6
"""


def _cfg(tmp: Path) -> RealConfig:
    p = tmp / "tiny.toml"
    p.write_text(TOML)
    return replace(RealConfig.from_toml(p), cache=str(tmp / "cache"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tiny")
    cfg = _cfg(tmp)
    df = run_sweep(cfg, out=tmp / "tiny.csv", progress=False)
    return cfg, df, tmp


def _results(df):
    cols = [c for c in df.columns if c not in PROVENANCE_COLUMNS]
    return df[cols].sort_values("run_key").reset_index(drop=True)


def test_config_roundtrip_and_errors(tmp_path):
    cfg = _cfg(tmp_path)
    assert cfg.train.lr == 0.003 and cfg.confidence == (False, True) and cfg.convex.pca_dim == 6
    assert len(enumerate_runs(cfg)) == 1 * 1 * 2 * 2 * 4 * 2
    bad = tmp_path / "bad.toml"
    bad.write_text(TOML + "\nlearning_rate = 1\n")
    with pytest.raises(ValueError, match="learning_rate"):
        RealConfig.from_toml(bad)
    bad.write_text(TOML.replace("lr = 0.003", "lrr = 0.003"))
    with pytest.raises(ValueError, match="lrr"):
        RealConfig.from_toml(bad)
    with pytest.raises(ValueError, match="datasets"):
        replace(cfg, datasets=("imdb",))
    with pytest.raises(ValueError, match="noise"):
        replace(cfg, noise=(1.5,))


def test_rows_and_bound_invariants(tiny):
    cfg, df, _ = tiny
    assert len(df) == 32 and df["run_key"].is_unique
    # Lemma 1: every stage bounds |gap| on every run, and the chain is ordered
    assert df["l1_holds"].all()
    assert (df["l1_gap"].abs() <= df["l1_data_dependent_bound"] * (1 + 1e-12)).all()
    assert (df["l1_data_dependent_bound"] <= df["l1_tv_bound"] * (1 + 1e-12)).all()
    # Theorem 2 slack is R(F_w) - d_rev - R(F_sw), per its own columns
    ident = df["t2test_truth_risk_weak"] - df["t2test_d_reverse"] - df["t2test_truth_risk_strong"]
    assert np.allclose(ident, df["t2test_truth_slack"], atol=1e-10)
    # Convex reverse-KL head: Theorem 2 holds on its fitting population with the realizable
    # reference (the convex ceiling), within the solver's own tolerance, on every run
    assert df["cvx_rkl_t2fit_ceil_holds"].all()
    assert (df["cvx_rkl_t2fit_ceil_slack"] >= -df["cvx_rkl_t2fit_ceil_tol"]).all()
    assert (df["cvx_rkl_status"] == "Solved").all()
    # Theorem 2 without realizability (the misspecified form) on every reverse-KL convex fit:
    # it holds (a check that can fail: tests/test_misspecification.py breaks it on purpose),
    # its terms add up, and two independent code paths agree (bounds.theorem2 on the same
    # fit population gives the realizable slack and d_rev)
    assert df["cvx_rkl_t2mis_holds"].astype(bool).all()
    assert (df["cvx_rkl_t2mis_slack"] >= -df["cvx_rkl_t2mis_tol"]).all()
    assert np.allclose(df["cvx_rkl_t2mis_guaranteed_gain"],
                       df["cvx_rkl_t2mis_d_reverse"] - 2 * df["cvx_rkl_t2mis_epsilon"], atol=1e-12)
    assert np.allclose(df["cvx_rkl_t2mis_slack"],
                       df["cvx_rkl_t2mis_gain"] - df["cvx_rkl_t2mis_guaranteed_gain"], atol=1e-10)
    assert np.allclose(df["cvx_rkl_t2mis_realizable_slack"], df["cvx_rkl_t2fit_truth_slack"],
                       atol=1e-9)
    assert np.allclose(df["cvx_rkl_t2mis_d_reverse"], df["cvx_rkl_d_reverse_fit"], atol=1e-12)
    assert (df["cvx_rkl_t2mis_epsilon"] > 0).all()          # one-hot truth: not in the class
    # PGR from its own columns
    pg = (df["student_acc"] - df["weak_acc"]) / (df["ceiling_acc"] - df["weak_acc"])
    ok = df["ceiling_acc"] > df["weak_acc"]          # defined only where there is a gap
    assert np.allclose(pg[ok], df.loc[ok, "pgr"]) and df.loc[~ok, "pgr"].isna().all()
    # forward KL and forward CE have the same gradient (docs/theory.md): same students
    k = ["seed", "noise", "confidence"]
    fk = df[df.loss == "forward_kl"].sort_values(k)
    fc = df[df.loss == "forward_ce"].sort_values(k)
    assert np.allclose(fk["student_acc"].values, fc["student_acc"].values)
    assert np.allclose(fk["t2test_truth_slack"].values, fc["t2test_truth_slack"].values, atol=1e-9)
    # reverse KL students differ from forward ones (the comparison above can fail)
    rk = df[df.loss == "reverse_kl"].sort_values(k)
    assert not np.allclose(rk["t2test_truth_slack"].values, fk["t2test_truth_slack"].values)
    # label noise: flipping 30% of weak labels lowers their accuracy against the truth
    clean = df[df.noise == 0.0].groupby("seed")["weak_label_acc"].first()
    noisy = df[df.noise == 0.3].groupby("seed")["weak_label_acc"].first()
    assert (noisy < clean).all()
    # provenance present
    assert df["git_commit"].notna().all() and (df["device"] == "cpu").all()


def test_weak_accuracy_independently(tiny):
    """Rebuild seed 0's weak model from the raw shared files and the one-by-one trainer."""
    cfg, df, _ = tiny
    n = cfg.n_rows
    z = {sp: np.load(PREBUILT / WEAK / "harmless" / f"{sp}.npz") for sp in ("train_gt", "test")}
    c, r = (z["train_gt"][k][:n].astype(np.float64) for k in ("chosen", "rejected"))
    sd = np.concatenate([c, r]).std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    from w2s_theory.data import preference_slots

    def task(sp):
        cc, rr = (z[sp][k][:n].astype(np.float64) for k in ("chosen", "rejected"))
        y = preference_slots(4000, derive_seed(0, "slots", "harmless", sp))[:n]
        a = np.where(y[:, None] == 1, cc, rr)      # slot A
        b = np.where(y[:, None] == 1, rr, cc)      # slot B
        return (a - b) / sd, y

    x, y = task("train_gt")
    w = training.train_head(x, y.astype(float), training.HeadSpec(
        "forward_ce", seed=derive_seed(0, "weak", "harmless", WEAK)), cfg.train)
    xt, yt = task("test")
    acc = np.mean((training.predict_proba(xt, w) > 0.5) == (yt == 1))
    got = df[df.seed == 0]["weak_acc"].unique()
    assert got.size == 1 and got[0] == pytest.approx(acc, abs=1e-12)


def test_resume_after_interrupt_recomputes_nothing(tiny, tmp_path, monkeypatch):
    cfg, full, _ = tiny
    cfg = replace(cfg, cache=str(tmp_path / "cache"))
    out = tmp_path / "r.csv"

    class Stop(Exception):
        pass

    seen = []

    def stop_after_5(row):
        seen.append(row["run_key"])
        if len(seen) == 5:
            raise Stop

    with pytest.raises(Stop):
        run_sweep(cfg, out=out, progress=False, after_row=stop_after_5)
    assert len(pd.read_csv(out)) == 5

    calls = {"train": 0, "eval": 0}
    orig_train, orig_eval = training.train_heads, real.sweep.evaluate_run

    def count_train(*a, **k):
        calls["train"] += 1
        return orig_train(*a, **k)

    def count_eval(*a, **k):
        calls["eval"] += 1
        return orig_eval(*a, **k)

    monkeypatch.setattr(training, "train_heads", count_train)
    monkeypatch.setattr(real.sweep, "evaluate_run", count_eval)   # the module that calls it
    df = run_sweep(cfg, out=out, progress=False)
    assert calls == {"train": 0, "eval": 32 - 5}
    # the stored first rows were kept, not recomputed
    assert set(seen) <= set(df["run_key"])
    # and the table equals an uninterrupted sweep with its own, fresh cache (same config and
    # seeds -> the same rows)
    pd.testing.assert_frame_equal(_results(df), _results(full), check_exact=True)
    # a finished sweep does nothing at all
    calls.update(train=0, eval=0)
    run_sweep(cfg, out=out, progress=False)
    assert calls == {"train": 0, "eval": 0}


def test_cli_dry_run_and_bad_config(tmp_path, capsys):
    p = tmp_path / "c.toml"
    p.write_text(TOML)
    from w2s_theory.cli import main

    assert main(["real", "--config", str(p), "--dry-run", "--seeds", "3"]) == 0
    outp = capsys.readouterr().out
    assert "16 runs" in outp and "seed=3" in outp
    p.write_text(TOML + "\nbogus = 1\n")
    assert main(["real", "--config", str(p)]) == 2
    assert "bogus" in capsys.readouterr().err


def test_live_minilm_end_to_end(tmp_path):
    """A real transformer, run now: MiniLM and wordllama features of 3 x 24 HH-RLHF pairs
    computed by w2s_theory.features feed a tiny sweep (reverse vs forward KL)."""
    from w2s_theory.data import load_hh_rlhf
    from w2s_theory.features import features_for_texts

    n = 24
    cache = tmp_path / "fcache"

    def loader(dataset, model, split):
        p = load_hh_rlhf(dataset, split)
        x = features_for_texts(model, p.chosen[:n] + p.rejected[:n], dataset=f"live-{split}",
                               cache=cache, device="cpu", progress=False)
        return {"chosen": x[:n], "rejected": x[n:]}

    live = loader("harmless", WEAK, "test")
    ref = np.load(PREBUILT / WEAK / "harmless" / "test.npz")["chosen"][:n].astype(np.float64)
    cos = np.sum(live["chosen"] * ref, 1) / np.linalg.norm(live["chosen"], axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() > 0.999          # the live model reproduces the shared H100 features
    cfg = RealConfig(name="live", datasets=("harmless",), pairs=(("wordllama", WEAK),),
                     losses=("forward_kl", "reverse_kl"), seeds=(0,), n_rows=n,
                     cache=str(tmp_path / "cache"),
                     convex=real.ConvexConfig(pca_dim=4))
    cfg = replace(cfg, train=replace(cfg.train, min_count=16))
    df = run_sweep(cfg, out=tmp_path / "live.csv", progress=False,
                   bank=FeatureBank(cfg, progress=False, loader=loader))
    assert len(df) == 2 and df["l1_holds"].all() and df["cvx_rkl_t2fit_ceil_holds"].all()
    assert set(df["loss"]) == {"forward_kl", "reverse_kl"}
    assert df["student_acc"].between(0, 1).all()
    assert json.loads(json.dumps(df.iloc[0].to_dict(), default=str))["weak"] == "wordllama"


def test_misspecified_columns_completed_on_old_rows_and_caches(tiny, tmp_path, monkeypatch):
    """A table and convex cache made before the misspecified columns existed: the next run of
    the sweep adds them (reverse-KL refit + LP only), keeps every other value, trains nothing."""
    import shutil

    cfg, full, tmp = tiny
    cache = tmp_path / "cache"
    shutil.copytree(tmp / "cache", cache)
    cfg = replace(cfg, cache=str(cache))
    mis = [c for c in full.columns if c.startswith("cvx_rkl_t2mis_") or c == "cvx_t2mis_wall_s"]
    out = tmp_path / "old.csv"
    full.drop(columns=mis).to_csv(out, index=False)
    from w2s_theory.fingerprint import digest

    for f in (cache / "convex").glob("*.json"):   # as written by a run with misspecified = false
        d = json.loads(f.read_text())
        env = d.pop("__cache__")
        cols = {k: v for k, v in d.items() if k not in mis}
        f.write_text(json.dumps({**cols, "__cache__": {**env, "checksum": digest(cols)}}))
    calls = {"train": 0, "fit": 0}
    orig_train = training.train_heads
    import w2s_theory.heads as heads

    orig_fit = heads.fit_convex_head

    def count_train(*a, **k):
        calls["train"] += 1
        return orig_train(*a, **k)

    def count_fit(*a, **k):
        calls["fit"] += 1
        return orig_fit(*a, **k)

    monkeypatch.setattr(training, "train_heads", count_train)
    monkeypatch.setattr(heads, "fit_convex_head", count_fit)
    df = run_sweep(cfg, out=out, progress=False)
    groups = full.drop_duplicates(["seed", "noise"]).shape[0]
    assert calls == {"train": 0, "fit": groups}            # one reverse-KL refit a group
    a = _results(df)
    b = _results(full)
    pd.testing.assert_frame_equal(a[b.columns], b, check_exact=False, rtol=1e-9)


def test_corrupt_convex_cache_is_refitted_with_a_warning(tiny, tmp_path):
    import shutil

    cfg, full, tmp = tiny
    cache = tmp_path / "cache"
    shutil.copytree(tmp / "cache", cache)
    cfg = replace(cfg, cache=str(cache))
    files = sorted((cache / "convex").glob("*.json"))
    files[0].write_text("{}")                               # parses, but holds nothing
    d = json.loads(files[1].read_text())
    d["cvx_rkl_acc"] = float("nan")
    files[1].write_text(json.dumps(d))
    files[2].write_text('{"cvx_dim": ')                     # torn write
    with pytest.warns(UserWarning, match="convex cache entry"):
        df = run_sweep(cfg, out=tmp_path / "r.csv", progress=False)
    a, b = _results(df), _results(full)
    assert set(a.columns) == set(b.columns)
    pd.testing.assert_frame_equal(a[b.columns], b, check_exact=False, rtol=1e-9)
    for f in files[:3]:
        assert real.read_convex_cache(f, cfg) is not None   # rewritten whole


def test_convex_seeds_subset(tiny, tmp_path):
    """``[convex] seeds``: convex columns on the listed seeds only; run keys unchanged."""
    cfg, full, tmp = tiny
    sub = replace(cfg, convex=replace(cfg.convex, seeds=(0,)))
    assert [r.key for r in enumerate_runs(sub)] == [r.key for r in enumerate_runs(cfg)]
    df = run_sweep(sub, out=tmp_path / "s.csv", progress=False)
    assert df[df.seed == 0]["cvx_rkl_status"].eq("Solved").all()
    assert df[df.seed == 1]["cvx_rkl_status"].isna().all()
    with pytest.raises(ValueError, match="convex.seeds"):
        real.ConvexConfig(seeds=(-1,))


@pytest.mark.parametrize("feature_threads, expect", [(0, 2), (1, 1)])
def test_feature_pass_uses_the_threads_outside_the_sweep(tmp_path, monkeypatch,
                                                         feature_threads, expect):
    """``threads`` (1) pins head training; the model's feature pass gets the thread count in
    force outside the sweep back (``feature_threads = 0``) or its own."""
    import torch

    seen = {}

    def loader(dataset, model, split):
        seen[(model, split)] = torch.get_num_threads()
        rng = np.random.default_rng(len(model) + len(split))
        return {"chosen": rng.normal(size=(32, 3)), "rejected": rng.normal(size=(32, 3))}

    orig = real.FeatureBank.__init__

    def with_loader(self, cfg, progress=True, loader=None, feature_threads=None, **kw):
        orig(self, cfg, progress=progress, loader=loader_fn, feature_threads=feature_threads, **kw)

    loader_fn = loader
    monkeypatch.setattr(real.FeatureBank, "__init__", with_loader)
    cfg = RealConfig(name="thr", datasets=("harmless",), pairs=(("wordllama", WEAK),),
                     losses=("forward_kl",), seeds=(0,), n_rows=32, threads=1,
                     feature_threads=feature_threads, cache=str(tmp_path / "cache"),
                     convex=real.ConvexConfig(enabled=False))
    cfg = replace(cfg, train=replace(cfg.train, min_count=16))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        df = run_sweep(cfg, out=tmp_path / "t.csv", progress=False)
        assert torch.get_num_threads() == 2          # restored after the sweep
    finally:
        torch.set_num_threads(before)
    assert len(df) == 1 and len(seen) == 6 and set(seen.values()) == {expect}, seen
    with pytest.raises(ValueError, match="feature_threads"):
        replace(cfg, feature_threads=-1)
