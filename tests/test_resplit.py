"""Re-splitting in the real pipeline (``splits``, issue 18): split 0 is the data set's own split
(keys, columns and numbers unchanged), split ``s > 0`` deals the pooled rows out again with the
same sizes, retrains the teachers on its own ``train_gt`` and is reproducible; rows of seeds
left out of ``convex.seeds`` get their convex columns when a rerun widens it."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from w2s_theory.data import SPLITS
from w2s_theory.pipelines import real
from w2s_theory.pipelines.real import (
    PROVENANCE_COLUMNS,
    FeatureBank,
    RealConfig,
    enumerate_runs,
    run_sweep,
)

N, H = 48, 4
WEAK, STRONG = "wordllama", "all-MiniLM-L6-v2"


def loader(dataset, model, split):
    """Features of ``N`` pairs per split: a weak signal (chosen above rejected) plus noise,
    different for every split and model."""
    rng = np.random.default_rng([SPLITS.index(split), len(model)])
    sig = rng.normal(size=(N, H))
    return {"chosen": sig + 0.15, "rejected": sig - 0.15 + rng.normal(size=(N, H))}


def _cfg(tmp_path, **kw):
    cfg = RealConfig(name="rs", datasets=("harmless",), pairs=((WEAK, STRONG),),
                     losses=("forward_kl", "reverse_kl"), seeds=(0, 1), n_rows=N,
                     cache=str(tmp_path / "cache"),
                     convex=real.ConvexConfig(enabled=False), **kw)
    return replace(cfg, train=replace(cfg.train, min_count=16, lr=0.01))


def _run(cfg, path):
    return run_sweep(cfg, out=path, progress=False,
                     bank=FeatureBank(cfg, progress=False, loader=loader))


def _values(df):
    keep = [c for c in df.columns if c not in PROVENANCE_COLUMNS and c != "split"]
    return df[keep].sort_values("run_key").reset_index(drop=True)


def test_splits_config_checked():
    for bad in [(), (-1,), (0, 0), ("1",), (True,)]:
        with pytest.raises(ValueError, match="^splits"):
            RealConfig(name="x", datasets=("harmless",), pairs=((WEAK, STRONG),), splits=bad)


def test_split_zero_is_the_single_split_sweep(tmp_path):
    """Split 0 of a re-split sweep: same run keys and numbers as the sweep without splits;
    rows carry ``split`` only when the sweep re-splits."""
    one = _cfg(tmp_path)
    many = replace(one, splits=(0, 1, 2))
    keys1 = [r.key for r in enumerate_runs(one)]
    keys_many = enumerate_runs(many)
    assert [r.key for r in keys_many if r.split == 0] == keys1
    assert len({r.key for r in keys_many}) == len(keys_many) == 3 * len(keys1)
    a = _run(one, tmp_path / "one.csv")
    b = _run(many, tmp_path / "many.csv")
    assert "split" not in a.columns
    assert sorted(b["split"].unique()) == [0, 1, 2]
    pd.testing.assert_frame_equal(_values(a), _values(b[b["split"] == 0]))


def test_resplit_is_a_same_size_permutation_of_the_pool(tmp_path):
    """Split s > 0: every split has its old size, together they are the pool exactly once,
    splits differ from each other and the same split is dealt the same way in a new bank
    (which rows go where, checked against the raw pool: the next test)."""
    cfg = replace(_cfg(tmp_path), splits=(0, 1, 2))
    seen = {}
    for s in (1, 2):
        bank = FeatureBank(cfg, progress=False, loader=loader, split=s)
        base = bank.base("harmless", STRONG)
        idx = bank.split_index("harmless")
        assert [idx[sp].size for sp in SPLITS] == [N, N, N]
        assert np.array_equal(np.sort(np.concatenate([idx[sp] for sp in SPLITS])), np.arange(3 * N))
        assert all(base[sp].shape == (N, H) for sp in SPLITS)
        seen[s] = idx
        again = FeatureBank(cfg, progress=False, loader=loader, split=s)
        again.base("harmless", WEAK)
        again = again.split_index("harmless")
        assert all(np.array_equal(again[sp], idx[sp]) for sp in SPLITS)
    assert not np.array_equal(seen[1]["test"], seen[2]["test"])
    assert FeatureBank(cfg, progress=False, loader=loader).split_index("harmless") is None


def test_resplit_standardises_on_its_own_train_gt(tmp_path):
    """Each split's rows are chosen - rejected of the pool rows it was dealt (pairs stay
    together) over the sd of its own train_gt: an independent numpy computation."""
    cfg = replace(_cfg(tmp_path), splits=(0, 3))
    bank = FeatureBank(cfg, progress=False, loader=loader, split=3)
    bank.base("harmless", STRONG)
    idx = bank.split_index("harmless")
    pool = {k: np.concatenate([np.asarray(loader("harmless", STRONG, sp)[k]) for sp in SPLITS])
            for k in ("chosen", "rejected")}
    c, r = pool["chosen"][idx["train_gt"]], pool["rejected"][idx["train_gt"]]
    sd = np.concatenate([c, r]).std(axis=0)      # independent: float64 numpy on the raw pool
    for sp in SPLITS:
        want = (pool["chosen"][idx[sp]] - pool["rejected"][idx[sp]]) / sd
        np.testing.assert_allclose(bank.base("harmless", STRONG)[sp], want, rtol=1e-12)


def test_teachers_are_retrained_per_split(tmp_path):
    """The weak teacher and the ceiling of split s are trained on split s's train_gt /
    train_w2s: their accuracies differ between splits, and a split's rows are reproduced by a
    sweep that runs that split alone."""
    cfg = replace(_cfg(tmp_path), splits=(0, 1, 2))
    df = _run(cfg, tmp_path / "a.csv")
    weak = df.groupby("split")["weak_auroc"].apply(lambda x: tuple(sorted(set(x))))
    assert len(set(weak)) == 3
    alone = _run(replace(cfg, splits=(0, 2)), tmp_path / "b.csv")
    pd.testing.assert_frame_equal(_values(df[df.split == 2]), _values(alone[alone.split == 2]))


def test_convex_columns_added_when_convex_seeds_widen(tmp_path):
    """Rows of a seed outside ``convex.seeds`` get every convex column on a rerun that covers
    it, equal to a sweep that fitted them from the start; nothing else is recomputed."""
    base = replace(_cfg(tmp_path), splits=(0, 1),
                   convex=real.ConvexConfig(enabled=True, pca_dim=2, seeds=(0,), misspecified=False))
    path = tmp_path / "c.csv"
    first = _run(base, path)
    assert first[first.seed == 1]["cvx_rkl_status"].isna().all()
    wide = replace(base, convex=replace(base.convex, seeds=(0, 1)))
    again = _run(wide, path)
    assert len(again) == len(first)
    assert again["cvx_rkl_status"].notna().all()
    fresh = _run(wide, tmp_path / "d.csv")
    cols = [c for c in fresh.columns if c.startswith("cvx_") and "wall" not in c]
    pd.testing.assert_frame_equal(again.sort_values("run_key")[cols].reset_index(drop=True),
                                  fresh.sort_values("run_key")[cols].reset_index(drop=True))
