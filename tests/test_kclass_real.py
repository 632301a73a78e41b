"""k classes end to end in the last-layer pipeline (issue 19): a user's own 3-class CSV through
``w2s-theory real`` and ``w2s-theory report``, checked against plain-numpy recomputations; the
k-class pieces (softmax heads, one-hot truth, flips, macro AUROC, the convex box) on their own;
and binary runs unchanged (a committed row of ``experiments/results/real/main.csv`` rerun)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import mannwhitneyu

from w2s_theory.cli import main

ROOT = Path(__file__).resolve().parents[1]
WEAK, STRONG = "tiny-org/tiny-gpt2", "tiny-org/tiny-llama"
N_SPLIT = 60                      # rows per split of the 3-class table
WORDS = {0: ["w1", "w2"], 1: ["w4", "w5"], 2: ["yes", "no"]}
LOSSES = ["forward_kl", "reverse_kl"]
LR, EPOCHS = 0.02, 4              # the heads learn on 60 rows (the paper's 1e-3, one epoch: 4 steps)


# ----------------------------------------------------------------------------- independent pieces
def _seed(seed: int, *tags) -> int:
    """The pipeline's sub-seed rule, written out: sha256 of ``[seed, *tags]`` as JSON, 31 bits."""
    blob = json.dumps([int(seed), *map(str, tags)]).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:4], "little") & 0x7FFFFFFF


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _adam_softmax_head(x, y, seed, *, lr=LR, epochs=EPOCHS, batch=16, b1=0.9, b2=0.999,
                       eps=1e-8):
    """Adam from W = 0 on the mean cross-entropy ``-sum_c y_c log softmax(xW)_c`` (forward CE
    and forward KL have this gradient, ``x^T (softmax(xW) - y) / m``); epoch ``e`` visits the
    rows in the order of the ``e``-th ``permutation(n)`` of ``default_rng(seed)``, in batches of
    ``batch`` that never span two epochs: plain numpy, float64."""
    n, d = x.shape
    w = np.zeros((d, y.shape[1]))
    m1, m2 = np.zeros_like(w), np.zeros_like(w)
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(epochs):
        perm = rng.permutation(n)
        batches += [perm[a:a + batch] for a in range(0, n, batch)]
    for t, i in enumerate(batches, start=1):
        g = x[i].T @ (_softmax(x[i] @ w) - y[i]) / len(i)
        m1 = b1 * m1 + (1 - b1) * g
        m2 = b2 * m2 + (1 - b2) * g * g
        w = w - (lr / (1 - b1 ** t)) * m1 / (np.sqrt(m2) / np.sqrt(1 - b2 ** t) + eps)
    return w


def _macro_auroc(y, p):
    """Mean over classes of the one-vs-rest AUROC, each from scipy's Mann-Whitney U."""
    vals = []
    for c in range(p.shape[1]):
        pos, neg = p[y == c, c], p[y != c, c]
        vals.append(mannwhitneyu(pos, neg).statistic / (pos.size * neg.size))
    return float(np.mean(vals))


def _ece_top(y, p, bins=10):
    """Top-label ECE with equal-width bins ``((b-1)/B, b/B]``, written as a loop."""
    conf, pred = p.max(axis=1), p.argmax(axis=1)
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inb = (conf > lo) & (conf <= hi) if b else (conf <= hi)
        if inb.any():
            total += abs(np.sum(pred[inb] == y[inb]) - np.sum(conf[inb]))
    return total / len(y)


# ----------------------------------------------------------------------------- the 3-class sweep
def _three_class_csv(path: Path) -> pd.DataFrame:
    """180 short texts, 3 classes told apart by their words, with a ``split`` column (60/60/60)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 3 * N_SPLIT)
    texts = [" ".join(rng.choice(WORDS[int(c)] + ["w3", "w6"], 5)) for c in y]
    split = np.repeat(["train_gt", "train_w2s", "test"], N_SPLIT)
    df = pd.DataFrame({"text": texts, "label": y, "split": split})
    df.to_csv(path, index=False)
    return df


def _config(tmp: Path, csv: Path) -> Path:
    p = tmp / "three.toml"
    p.write_text(f'''name = "three"
datasets = ["mine"]
pairs = [["{WEAK}", "{STRONG}"]]
losses = {json.dumps(LOSSES)}
confidence = [false, true]
noise = [0.0, 0.2]
seeds = [0, 1]
out = "{tmp / 'three.csv'}"
cache = "{tmp / 'cache'}"
[train]
dtype = "float64"
lr = {LR}
epochs = {EPOCHS}
[convex]
pca_dim = 4
seeds = [0]
[sources.mine]
kind = "table"
data = "{csv}"
task = "classification"
split_column = "split"
''')
    return p


@pytest.fixture(scope="module")
def sweep(hub_cache, tmp_path_factory):
    """The 3-class sweep run once through the command line (tiny hub models, offline)."""
    import huggingface_hub.constants as c

    tmp = tmp_path_factory.mktemp("kclass")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(c, "HF_HUB_OFFLINE", True)
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(c, "HF_HUB_CACHE", str(hub_cache))
        mp.setenv("HF_HUB_CACHE", str(hub_cache))
        mp.setenv("W2S_CACHE_DIR", str(tmp / "w2s_cache"))
        data = _three_class_csv(tmp / "three_class.csv")
        cfg = _config(tmp, tmp / "three_class.csv")
        assert main(["real", "--config", str(cfg), "--quiet"]) == 0
        yield {"tmp": tmp, "cfg": cfg, "data": data, "table": pd.read_csv(tmp / "three.csv"),
               "mp": mp}


def _features(sweep, model: str) -> dict:
    """The sweep's features of each split (its feature cache), standardised on ``train_gt``
    with a constant column appended, in plain numpy."""
    from w2s_theory.features import features_for_texts
    from w2s_theory.sources import check_source, feature_tag

    spec = check_source({"kind": "table", "data": str(sweep["tmp"] / "three_class.csv"),
                         "task": "classification", "split_column": "split"})
    d = sweep["data"]
    raw = {sp: np.asarray(features_for_texts(model, list(d.text[d.split == sp]),
                                             dataset=feature_tag(spec, sp), progress=False),
                          dtype=np.float64) for sp in ("train_gt", "train_w2s", "test")}
    mu, sd = raw["train_gt"].mean(axis=0), raw["train_gt"].std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return {sp: np.hstack([(h - mu) / sd, np.ones((len(h), 1))]) for sp, h in raw.items()}


def _labels(sweep, split: str) -> np.ndarray:
    d = sweep["data"]
    return d.label[d.split == split].to_numpy()


def test_three_class_rows(sweep):
    t = sweep["table"]
    assert len(t) == 2 * 2 * 2 * 2                     # losses x confidence x noise x seeds
    assert (t["n_classes"] == 3).all()
    assert set(t["loss"]) == set(LOSSES) and set(t["noise"]) == {0.0, 0.2}
    for c in [c for c in t.columns if c.endswith(("_acc", "_auroc", "_ece"))]:
        v = t[c].dropna()
        assert len(v) and ((v >= 0) & (v <= 1)).all(), c
    assert (t["ceiling_acc"] > 1 / 3 + 0.2).all()      # well above chance: the words tell classes
    assert (t["weak_acc"] > 1 / 3).all()
    assert t["l1_holds"].astype(bool).all()             # Lemma 1 holds always
    for c in ("l1_gap", "t2test_truth_slack", "t2test_ceil_slack", "t2fit_truth_slack",
              "t2fit_ceil_slack", "t2test_d_reverse"):
        assert np.isfinite(t[c]).all(), c
    # convex heads on seed 0: the k-class exponential-cone fits, Theorem 2 at the convex ceiling
    cv = t[t.seed == 0]
    assert (cv["cvx_rkl_status"] == "Solved").all() and (cv["cvx_fkl_status"] == "Solved").all()
    assert cv["cvx_rkl_t2fit_ceil_holds"].astype(bool).all()
    assert (cv["cvx_ceiling_acc"] > 1 / 3).all() and (cv["cvx_dim"] == 4).all()
    assert t[t.seed == 1]["cvx_rkl_status"].isna().all()
    # noise 0.2 moves weak labels: their accuracy drops (same teacher, flipped rows)
    k = ["loss", "confidence", "seed"]
    m = t[t.noise == 0].set_index(k)["weak_label_acc"].sort_index()
    n = t[t.noise == 0.2].set_index(k)["weak_label_acc"].sort_index()
    assert (n < m).all()


def test_weak_teacher_and_student_recomputed_in_numpy(sweep):
    """The weak teacher (softmax head, forward CE on one-hot train_gt labels) and one student
    (forward KL on its soft labels, no noise), trained again by plain-numpy Adam on the same
    features and split: the same accuracies, AUROC (macro one-vs-rest) and ECE."""
    t = sweep["table"]
    xw, xs = _features(sweep, WEAK), _features(sweep, STRONG)
    y_gt, y_w2s, y_test = (_labels(sweep, sp) for sp in ("train_gt", "train_w2s", "test"))
    for seed in (0, 1):
        w = _adam_softmax_head(xw["train_gt"], np.eye(3)[y_gt], _seed(seed, "weak", "mine", WEAK))
        p_test = _softmax(xw["test"] @ w)
        rows = t[(t.seed == seed)]
        assert rows["weak_acc"].to_numpy() == pytest.approx(np.mean(p_test.argmax(1) == y_test),
                                                            abs=1e-12)
        assert rows["weak_auroc"].to_numpy() == pytest.approx(_macro_auroc(y_test, p_test),
                                                              abs=1e-9)
        assert rows["weak_ece"].to_numpy() == pytest.approx(_ece_top(y_test, p_test), abs=1e-9)
        soft = _softmax(xw["train_w2s"] @ w)
        r = rows[(rows.noise == 0) & ~rows.confidence.astype(bool)].set_index("loss")
        assert r.loc["forward_kl", "weak_label_acc"] == pytest.approx(
            np.mean(soft.argmax(1) == y_w2s), abs=1e-12)
        ws = _adam_softmax_head(xs["train_w2s"], soft, _seed(seed, "student", "mine"))
        ps = _softmax(xs["test"] @ ws)
        assert r.loc["forward_kl", "student_acc"] == pytest.approx(
            np.mean(ps.argmax(1) == y_test), abs=1e-12)
        assert r.loc["forward_kl", "disagree_rate"] == pytest.approx(
            np.mean(ps.argmax(1) != p_test.argmax(1)), abs=1e-12)


def test_flipped_weak_labels_move_to_another_class(sweep):
    """At noise 0.2 the pipeline's weak labels differ from the clean ones (the numpy teacher's
    softmax) in round(0.2 n) rows; each such row is the clean row permuted cyclically, and its
    class is one of the other two; the rows' ``weak_label_acc`` is the accuracy of those labels."""
    from w2s_theory.pipelines.real import FeatureBank, RealConfig, enumerate_runs, train_teachers
    from w2s_theory.pipelines.real import weak_labels as pipeline_weak_labels

    cfg = RealConfig.from_toml(sweep["cfg"])
    bank = FeatureBank(cfg, progress=False)
    cache = sweep["tmp"] / "teachers-again"
    cache.mkdir()
    teachers, _ = train_teachers(cfg, enumerate_runs(cfg), bank, cache, progress=False)
    xw = _features(sweep, WEAK)
    y_gt, y_w2s = _labels(sweep, "train_gt"), _labels(sweep, "train_w2s")
    t = sweep["table"]
    for seed in (0, 1):
        w = _adam_softmax_head(xw["train_gt"], np.eye(3)[y_gt], _seed(seed, "weak", "mine", WEAK))
        clean = _softmax(xw["train_w2s"] @ w)
        assert pipeline_weak_labels(cfg, bank, teachers, "mine", WEAK, seed, 0.0) == \
            pytest.approx(clean, abs=1e-12)
        noisy = pipeline_weak_labels(cfg, bank, teachers, "mine", WEAK, seed, 0.2)
        moved = np.flatnonzero(np.abs(noisy - clean).max(axis=1) > 1e-9)
        assert moved.size == round(0.2 * N_SPLIT)
        for i in moved:
            shifts = [s for s in (1, 2) if np.allclose(noisy[i], np.roll(clean[i], s), atol=1e-12)]
            assert len(shifts) == 1, i
            assert noisy[i].argmax() != clean[i].argmax()
        acc = np.mean(noisy.argmax(1) == y_w2s)
        assert t[(t.seed == seed) & (t.noise == 0.2)]["weak_label_acc"].to_numpy() == \
            pytest.approx(acc, abs=1e-12)


def test_report_answers_on_the_three_class_table(sweep, capsys):
    """``w2s-theory report`` on the 3-class table prints the reverse-KL-vs-forward-KL answer; its
    effect without noise is the mean paired student-accuracy difference (numpy, in points)."""
    capsys.readouterr()
    table = sweep["tmp"] / "three.csv"
    rc = main(["report", str(table), "--out", str(sweep["tmp"] / "rep")])
    out = capsys.readouterr().out
    assert rc == 0
    lines = [ln for ln in out.splitlines() if ln.startswith("Reverse KL − forward KL: ")]
    assert lines, out
    summ = pd.read_csv(sweep["tmp"] / "rep" / "ledger_summary.csv")
    t = sweep["table"]
    effects = []
    for noise, g in t.groupby("noise"):        # settings: with and without the confidence loss
        p = g.pivot_table(index=["confidence", "seed"], columns="loss", values="student_acc")
        eff = 100 * float((p["reverse_kl"] - p["forward_kl"]).mean())
        got = summ.loc[np.isclose(summ["noise_level"], noise), "effect_pts"]
        assert len(got) == 1 and got.iloc[0] == pytest.approx(eff, abs=1e-4), (noise, eff)
        effects.append(eff)
    assert any(abs(e) > 0.1 for e in effects)    # the losses' students differ somewhere
    assert any(re.search(r"without noise", ln) for ln in lines)


def test_binary_and_three_class_data_sets_in_one_sweep(sweep):
    """A sweep over a two-class table and the 3-class table: the binary rows (logistic heads,
    n_classes 2) are cell for cell those of the binary table swept alone, the 3-class rows those
    of the 3-class sweep (heads of each shape are trained in their own batched computation)."""
    tmp = sweep["tmp"]
    d = sweep["data"]
    two = d.assign(label=(d.label > 0).astype(int))
    two.to_csv(tmp / "two_class.csv", index=False)
    src = (f'[sources.two]\nkind = "table"\ndata = "{tmp / "two_class.csv"}"\n'
           f'task = "classification"\nsplit_column = "split"\n')
    base = sweep["cfg"].read_text().replace("seeds = [0, 1]", "seeds = [0]").replace(
        "[convex]\npca_dim = 4\nseeds = [0]", "[convex]\nenabled = false")
    both = tmp / "both.toml"
    both.write_text(base.replace('datasets = ["mine"]', 'datasets = ["mine", "two"]')
                    .replace("three.csv", "both.csv").replace('name = "three"', 'name = "both"') + src)
    alone = tmp / "alone.toml"
    alone.write_text(base.replace('datasets = ["mine"]', 'datasets = ["two"]')
                     .replace("three.csv", "alone.csv").replace('name = "three"', 'name = "alone"')
                     + src)
    assert main(["real", "--config", str(both), "--quiet"]) == 0
    assert main(["real", "--config", str(alone), "--quiet"]) == 0
    mixed, single = pd.read_csv(tmp / "both.csv"), pd.read_csv(tmp / "alone.csv")
    assert sorted(mixed.groupby("dataset")["n_classes"].unique().map(list).sum()) == [2, 3]
    keep = [c for c in single.columns if not c.endswith("wall_s") and c not in
            ("sweep", "created_utc", "train_heads", "config_file")]
    a = mixed[mixed.dataset == "two"][keep].sort_values("run_key").reset_index(drop=True)
    b = single[keep].sort_values("run_key").reset_index(drop=True)
    assert len(a) == len(b) == 2 * 2 * 2                 # losses x confidence x noise
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    three = sweep["table"]                              # (its run keys hold the convex settings)
    k = ["loss", "confidence", "noise", "seed"]
    m3 = mixed[mixed.dataset == "mine"].set_index(k).sort_index()
    t3 = three[three.seed == 0].set_index(k).sort_index()
    assert len(m3) == 8 and list(m3.index) == list(t3.index)
    for c in ("weak_acc", "ceiling_acc", "student_acc", "student_auroc", "l1_gap",
              "t2test_truth_slack"):
        assert np.array_equal(m3[c].to_numpy(), t3[c].to_numpy()), c


def test_partial_corruption_of_kclass_labels_is_a_config_error(sweep, capsys):
    """``noise_a`` other than -1 (erase, shrink) is defined for two classes only: one line, exit 2."""
    cfg = sweep["tmp"] / "erase.toml"
    cfg.write_text(sweep["cfg"].read_text().replace('name = "three"', 'name = "erase"\nnoise_a = 0.0')
                   .replace("three.csv", "erase.csv"))
    capsys.readouterr()
    assert main(["real", "--config", str(cfg), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "noise_a: mine has 3 classes" in err and "Traceback" not in err
    assert not (sweep["tmp"] / "erase.csv").exists()


# ----------------------------------------------------------------------------- k-class pieces
def test_kclass_heads_batched_equal_one_by_one_and_numpy():
    """k-class heads trained together equal the reference loop (confidence loss included), and
    the plain forward-KL head equals the numpy Adam recomputation."""
    from w2s_theory.training import HeadSpec, TrainConfig, train_head, train_head_sets, train_heads

    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 5))
    y = _softmax(x @ rng.normal(size=(5, 3)))
    specs = [HeadSpec(loss, confidence=c, seed=s) for loss in ("forward_kl", "reverse_kl",
                                                                "forward_ce", "reverse_ce")
             for c in (False, True) for s in (0, 3)]
    tc = TrainConfig(dtype="float64", lr=0.05, epochs=2)
    res = train_heads(x, np.tile(y, (len(specs), 1, 1)), specs, tc, device="cpu")
    for spec, w in zip(specs, res.weights):
        assert w.shape == (5, 3)
        assert np.abs(w - train_head(x, y, spec, tc)).max() < 1e-12, spec
    one = _adam_softmax_head(x, y, 0, lr=0.05, epochs=1)
    assert np.abs(train_head(x, y, HeadSpec("forward_kl"), TrainConfig(dtype="float64", lr=0.05))
                  - one).max() < 1e-12
    conf = [w for s, w in zip(specs, res.weights) if s.confidence]
    plain = [w for s, w in zip(specs, res.weights) if not s.confidence]
    assert all(np.abs(a - b).max() > 1e-6 for a, b in zip(conf, plain))   # the term acts
    # mixed binary and k-class heads: one computation per shape, same weights
    mixed = train_head_sets(x, [y[:, 1], y], [HeadSpec("forward_kl"), HeadSpec("forward_kl")], tc)
    assert mixed.weights[0].shape == (5,) and mixed.weights[1].shape == (5, 3)
    assert np.abs(mixed.weights[1] - train_head(x, y, HeadSpec("forward_kl"), tc)).max() < 1e-12
    assert np.abs(mixed.weights[0] - train_head(x, y[:, 1], HeadSpec("forward_kl"), tc)).max() < 1e-12


def test_kclass_targets_checked():
    from w2s_theory.training import HeadSpec, train_heads

    x = np.ones((4, 2))
    with pytest.raises(ValueError, match=r"^targets: k-class rows must sum to 1"):
        train_heads(x, np.full((1, 4, 3), 0.5), [HeadSpec("forward_kl")])
    with pytest.raises(ValueError, match=r"^targets: k-class targets need k >= 2"):
        train_heads(x, np.ones((1, 4, 1)), [HeadSpec("forward_kl")])


def test_corrupt_labels_flips_kclass_rows_and_refuses_partial_corruption():
    from w2s_theory.noise import corrupt_binary, corrupt_labels

    y = _softmax(np.random.default_rng(2).normal(size=(50, 4)))
    out = corrupt_labels(y, 0.4, rng=7)
    moved = np.flatnonzero((out != y).any(axis=1))
    assert moved.size == 20
    assert all(out[i].argmax() != y[i].argmax() and sorted(out[i]) == sorted(y[i]) for i in moved)
    b = np.linspace(0.05, 0.95, 10)
    assert np.array_equal(corrupt_labels(b, 0.5, a=0.0, rng=1), corrupt_binary(b, 0.5, a=0.0, rng=1))
    with pytest.raises(ValueError, match=r"^a: k-class labels"):
        corrupt_labels(y, 0.4, a=0.0)


def test_truth_and_macro_auroc():
    from w2s_theory.kclass import auroc_any, count_classes, truth

    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 200)
    p = _softmax(rng.normal(size=(200, 4)) + 2 * np.eye(4)[y])
    assert auroc_any(y, p) == pytest.approx(_macro_auroc(y, p), abs=1e-12)
    assert np.isnan(auroc_any(np.zeros(200, dtype=int) + (y > 0), p))   # classes 2, 3 absent
    yb = (y > 1).astype(int)
    assert auroc_any(yb, p[:, 2] + p[:, 3]) == pytest.approx(
        mannwhitneyu((p[:, 2] + p[:, 3])[yb == 1], (p[:, 2] + p[:, 3])[yb == 0]).statistic
        / (yb.sum() * (yb == 0).sum()), abs=1e-12)
    assert np.array_equal(truth(y, 4).argmax(1), y) and truth(y, 4).sum() == 200
    assert truth(yb, 2).dtype == np.float64 and np.array_equal(truth(yb, 2), yb)
    assert count_classes(y[:10], y) == 4
    with pytest.raises(ValueError, match=r"^labels: class indices must lie in \[0, 2\]"):
        truth(y, 3)


def test_into_box_kclass():
    from w2s_theory.pipelines.real import into_box

    rng = np.random.default_rng(4)
    p = _softmax(3 * rng.normal(size=(30, 3)))
    g = 0.02
    q, v = into_box(p, g)
    m = p.min()
    assert v == pytest.approx(g - m) and q.min() == pytest.approx(g, abs=1e-15)
    assert np.allclose(q.sum(axis=1), 1.0, atol=1e-15)
    lam = (q[0, 0] - p[0, 0]) / (1 / 3 - p[0, 0])        # one mixing weight for every cell
    assert np.allclose(q, (1 - lam) * p + lam / 3, atol=1e-15)
    same, v0 = into_box(np.full((2, 3), 1 / 3), g)
    assert v0 == 0.0 and np.array_equal(same, np.full((2, 3), 1 / 3))


# ----------------------------------------------------------------------------- binary unchanged
def test_binary_rerun_reproduces_a_committed_main_row(tmp_path):
    """One run of the committed main table (harmless, wordllama -> MiniLM, forward KL, seed 0)
    recomputed from its config: the same run key, every result equal (accuracies, AUROC, ECE
    exactly; sums of logs to 1e-12 relative, as another CPU's BLAS allows), ``n_classes`` 2."""
    from w2s_theory.pipelines.real import PROVENANCE_COLUMNS, ConvexConfig, RealConfig, run_sweep
    from w2s_theory.training import TrainConfig

    cfg = RealConfig(name="main", datasets=("harmless",), pairs=(("wordllama", "all-MiniLM-L6-v2"),),
                     losses=("forward_kl",), seeds=(0,), gamma=1e-3,
                     train=TrainConfig(lr=1e-3, dtype="float64"),
                     convex=ConvexConfig(pca_dim=32, seeds=()), cache=str(tmp_path / "cache"))
    got = run_sweep(cfg, out=tmp_path / "row.csv", progress=False)
    want = pd.read_csv(ROOT / "experiments/results/real/main.csv")
    assert len(got) == 1
    row = got.iloc[0]
    w = want[want.run_key == row.run_key]
    assert len(w) == 1
    w = w.iloc[0]
    assert row["n_classes"] == 2
    compared = 0
    for c in want.columns:
        if c in PROVENANCE_COLUMNS or c.startswith("cvx_") or c in ("train_heads", "strong_note"):
            continue                                # heads per batch, a description: not results
        a, b = row[c], w[c]
        if isinstance(b, (float, np.floating)) and np.isnan(b):
            assert np.isnan(a), c                   # e.g. pgr without a ceiling-weak gap
        elif c.endswith(("_acc", "_auroc", "_ece", "_rate")) or c == "pgr":
            assert a == b, c
        elif isinstance(b, (float, np.floating)) and not isinstance(b, (bool, np.bool_)):
            assert a == pytest.approx(b, rel=1e-12, abs=1e-15), c
        else:
            assert str(a) == str(b), c
        compared += 1
    assert compared > 40
