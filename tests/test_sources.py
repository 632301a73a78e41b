"""Data sources: split files (4K layout, CAI naming), the hh-rlhf hub form, any table."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from w2s_theory.data import hh_rlhf_root, load_hh_rlhf
from w2s_theory.sources import (
    from_hh_rlhf_hub,
    from_split_files,
    from_table,
    is_single_turn,
    split_indices,
)

SPLITS = ("train_gt", "train_w2s", "test")


def test_split_rule_is_disjoint_seeded_and_checks_sizes():
    s = split_indices(50, None, (10, 15, 20), seed=3)
    allidx = np.concatenate([s[k] for k in SPLITS])
    assert [len(s[k]) for k in SPLITS] == [10, 15, 20] and len(set(allidx.tolist())) == 45
    assert all(np.array_equal(s[k], split_indices(50, None, (10, 15, 20), 3)[k]) for k in SPLITS)
    assert not np.array_equal(s["test"], split_indices(50, None, (10, 15, 20), 4)["test"])
    t = split_indices(30, 12, (10, 20, 12), seed=0)
    assert not set(t["train_gt"].tolist()) & set(t["train_w2s"].tolist())
    assert sorted(t["test"].tolist()) == list(range(12))
    with pytest.raises(ValueError, match="need 45 rows, the data have 44"):
        split_indices(44, None, (10, 15, 20), 0)
    with pytest.raises(ValueError, match="test = 13 rows, the test pool has 12"):
        split_indices(30, 12, (10, 20, 13), 0)
    with pytest.raises(ValueError, match="sizes"):
        split_indices(30, None, (10, 0, 5), 0)


def test_split_files_read_the_shared_layout_with_digests():
    s = from_split_files(hh_rlhf_root(), "helpful")
    ref = load_hh_rlhf("helpful", "test")
    assert s["test"].chosen == ref.chosen and s["test"].rejected == ref.rejected
    assert s["test"].sha256 == ref.sha256 and s["test"].identical == ref.identical


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_cai_prefix_naming_columns_and_digest_errors(tmp_path):
    rows = [{"prompt": f"Q{i}", "pos": f" good{i}", "neg": f" bad{i}"} for i in range(5)]
    for sp in SPLITS:
        _write_jsonl(tmp_path / f"cai_harmless_{sp}.jsonl", rows)
    cols = {"prompt": "prompt", "chosen": "pos", "rejected": "neg"}
    s = from_split_files(tmp_path, "cai_harmless", naming="prefix", columns=cols)
    assert s["train_w2s"].chosen[2] == "Q2 good2" and len(s["test"]) == 5
    with pytest.raises(ValueError, match="'chosen' maps to column 'chosen', which .* does not have"):
        from_split_files(tmp_path, "cai_harmless", naming="prefix")
    with pytest.raises(FileNotFoundError, match="cai_other_train_gt.jsonl"):
        from_split_files(tmp_path, "cai_other", naming="prefix", columns=cols)
    (tmp_path / "SHA256SUMS").write_text("0" * 64 + "  cai_harmless_test.jsonl\n")
    with pytest.raises(ValueError, match="does not match"):
        from_split_files(tmp_path, "cai_harmless", naming="prefix", columns=cols)
    assert len(from_split_files(tmp_path, "cai_harmless", naming="prefix", columns=cols,
                                verify="none")["test"]) == 5
    with pytest.raises(ValueError, match="naming"):
        from_split_files(tmp_path, "x", naming="flat")


def _dialogue(i, turns):
    text = ""
    for t in range(turns):
        text += f"\n\nHuman: question {i}.{t}\n\nAssistant: answer {i}.{t}"
    return text


@pytest.fixture()
def hub_folder(tmp_path):
    """A local folder in the hub's layout of Anthropic/hh-rlhf (gzipped JSONL per split)."""
    root = tmp_path / "hh-rlhf"
    (root / "harmless-base").mkdir(parents=True)
    for split, n in (("train", 40), ("test", 20)):
        with gzip.open(root / "harmless-base" / f"{split}.jsonl.gz", "wt") as fh:
            for i in range(n):
                turns = 1 if i % 2 == 0 else 2
                fh.write(json.dumps({"chosen": _dialogue(i, turns) + " yes",
                                     "rejected": _dialogue(i, turns) + " no"}) + "\n")
    return root


def test_hub_form_split_and_single_turn(hub_folder, tmp_path):
    s = from_hh_rlhf_hub("harmless-base", path=str(hub_folder), sizes=(10, 10, 8), seed=1,
                         cache_dir=str(tmp_path / "cache"))
    assert [len(s[k]) for k in SPLITS] == [10, 10, 8]
    assert not set(s["train_gt"].chosen) & set(s["train_w2s"].chosen)
    assert any(not is_single_turn(c) for c in s["train_gt"].chosen)   # multi-turn kept
    one = from_hh_rlhf_hub("harmless-base", path=str(hub_folder), sizes=(10, 10, 8), seed=1,
                           single_turn=True, cache_dir=str(tmp_path / "cache"))
    assert all(is_single_turn(c) for sp in SPLITS for c in one[sp].chosen)
    again = from_hh_rlhf_hub("harmless-base", path=str(hub_folder), sizes=(10, 10, 8), seed=1,
                             single_turn=True, cache_dir=str(tmp_path / "cache"))
    assert again["test"].chosen == one["test"].chosen               # seeded
    with pytest.raises(ValueError, match="train pool has 20"):     # 20 single-turn train pairs
        from_hh_rlhf_hub("harmless-base", path=str(hub_folder), sizes=(15, 10, 8),
                         single_turn=True, cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ValueError, match="path: cannot load"):
        from_hh_rlhf_hub("harmless-base", path=str(tmp_path / "nowhere"),
                         cache_dir=str(tmp_path / "cache"))


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl", "frame", "dataset"])
def test_any_table_with_a_column_mapping(tmp_path, fmt):
    import datasets

    df = pd.DataFrame({"sentence": [f"text {i}" for i in range(30)],
                       "y": [i % 3 for i in range(30)]})
    data = {"frame": df, "dataset": datasets.Dataset.from_pandas(df)}.get(fmt)
    if data is None:
        data = tmp_path / f"t.{fmt}"
        {"csv": lambda p: df.to_csv(p, index=False), "parquet": lambda p: df.to_parquet(p),
         "jsonl": lambda p: df.to_json(p, orient="records", lines=True)}[fmt](data)
    s = from_table(data, task="classification", columns={"text": "sentence", "label": "y"},
                   sizes=(10, 10, 10), seed=0)
    got = sorted((t, int(y)) for sp in SPLITS for t, y in zip(s[sp].texts, s[sp].labels))
    assert got == sorted((f"text {i}", i % 3) for i in range(30))
    with pytest.raises(ValueError, match="'label' maps to column 'label'"):
        from_table(data, task="classification", columns={"text": "sentence"}, sizes=(10, 10, 10))
    with pytest.raises(ValueError, match="need 31 rows, the data have 30"):
        from_table(data, task="classification", columns={"text": "sentence", "label": "y"},
                   sizes=(10, 10, 11))


def test_table_preference_split_column_and_bad_input(tmp_path):
    df = pd.DataFrame({"prompt": ["p"] * 6, "chosen": list("abcdef"), "rejected": list("uvwxyz"),
                       "part": ["train_gt", "train_gt", "train_w2s", "train_w2s", "test", "test"]})
    s = from_table(df, split_column="part")
    assert s["test"].chosen == ["pe", "pf"] and s["train_gt"].rejected == ["pu", "pv"]
    with pytest.raises(ValueError, match="sizes: give the three split sizes"):
        from_table(df)
    with pytest.raises(ValueError, match="unknown role"):
        from_table(df, columns={"answer": "chosen"}, sizes=(2, 2, 2))
    with pytest.raises(ValueError, match="must hold integers"):
        from_table(pd.DataFrame({"text": list("abc"), "label": ["pos", "neg", "pos"]}),
                   task="classification", sizes=(1, 1, 1))
    with pytest.raises(FileNotFoundError, match="file not found"):
        from_table(tmp_path / "missing.csv", sizes=(1, 1, 1))
    (tmp_path / "x.txt").write_text("a")
    with pytest.raises(ValueError, match="use a .jsonl, .json, .csv or .parquet file"):
        from_table(tmp_path / "x.txt", sizes=(1, 1, 1))
    bad = df.assign(part=["train_gt", "dev", "train_w2s", "train_w2s", "test", "test"])
    with pytest.raises(ValueError, match="values \\['dev'\\]"):
        from_table(bad, split_column="part")
