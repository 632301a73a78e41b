"""Weak soft labels over a datasets.Dataset in one call; data sets by id or folder, columns mapped."""

from __future__ import annotations

import json
import math

import datasets
import numpy as np
import pytest
import torch

from w2s_theory.hf_data import load_hub_dataset, rename_columns, weak_soft_labels

WORDS = ["good", "bad", "fine", "the", "answer", "is", "wrong", "right", "maybe", "never"]


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    from w2s_theory.models import model_dir

    return AutoTokenizer.from_pretrained(str(model_dir("all-MiniLM-L6-v2")), local_files_only=True)


def _model(tok, num_labels, seed=0):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1,
                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=64,
                     num_labels=num_labels, pad_token_id=tok.pad_token_id)
    return BertForSequenceClassification(cfg).eval()


def _texts(n, seed):
    g = np.random.default_rng(seed)
    return [" ".join(g.choice(WORDS, int(g.integers(1, 12)))) for _ in range(n)]


def _one(model, tok, text):
    """One text alone, no padding: the reference for the batched, padded run."""
    with torch.no_grad():
        return model(**tok(text, return_tensors="pt")).logits[0].double().numpy()


@pytest.mark.parametrize("k", [1, 2, 3])
def test_classifier_soft_labels_equal_one_text_at_a_time(tok, k):
    texts = _texts(11, k)
    ds = datasets.Dataset.from_dict({"text": texts, "id": list(range(11))})
    model = _model(tok, k, seed=k)
    out = weak_soft_labels(model, ds, tokenizer=tok, batch_size=4)
    assert out.column_names == ["text", "id", "labels"] and out["id"] == list(range(11))
    for t, got in zip(texts, out["labels"]):
        z = _one(model, tok, t)
        if k == 1:
            want = 1 / (1 + math.exp(-z[0]))
        elif k == 2:
            want = math.exp(z[1]) / (math.exp(z[0]) + math.exp(z[1]))
        else:
            want = np.exp(z) / np.exp(z).sum()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_preference_pairs_give_the_bradley_terry_probability(tok, tmp_path):
    chosen, rejected = _texts(9, 10), _texts(9, 11)
    ds = datasets.Dataset.from_dict({"chosen": chosen, "rejected": rejected})
    rm = _model(tok, 1, seed=5)
    out = weak_soft_labels(rm, ds, tokenizer=tok, pair_columns=("chosen", "rejected"),
                           batch_size=2)
    want = [1 / (1 + math.exp(-(_one(rm, tok, c)[0] - _one(rm, tok, r)[0])))
            for c, r in zip(chosen, rejected)]
    np.testing.assert_allclose(out["weak_label"], want, rtol=1e-5, atol=1e-6)
    # a model folder (spec) gives the same labels as the model object
    rm.save_pretrained(tmp_path / "rm")
    tok.save_pretrained(tmp_path / "rm")
    again = weak_soft_labels(str(tmp_path / "rm"), ds, pair_columns=("chosen", "rejected"))
    np.testing.assert_allclose(again["weak_label"], out["weak_label"], rtol=1e-5, atol=1e-7)
    assert rm.training is False


def test_weak_soft_labels_refuses_naming_the_argument(tok):
    ds = datasets.Dataset.from_dict({"prompt": ["a", "b"], "labels": [0, 1]})
    m = _model(tok, 1)
    with pytest.raises(ValueError, match=r"^text_column: no column 'text'; .*\['prompt', 'labels'\]"):
        weak_soft_labels(m, ds, tokenizer=tok)
    with pytest.raises(ValueError, match=r"^label_column: 'labels' is already a column"):
        weak_soft_labels(m, ds, tokenizer=tok, text_column="prompt")
    with pytest.raises(ValueError, match=r"^tokenizer: needed"):
        weak_soft_labels(m, ds, text_column="prompt", label_column="w")
    with pytest.raises(ValueError, match=r"^model: a reward model with one output"):
        weak_soft_labels(_model(tok, 2), datasets.Dataset.from_dict({"c": ["a"], "r": ["b"]}),
                         tokenizer=tok, pair_columns=("c", "r"))
    with pytest.raises(TypeError, match=r"^text_column: column 'prompt', row 1: expected a text"):
        weak_soft_labels(m, datasets.Dataset.from_dict({"prompt": ["a", None]}), tokenizer=tok,
                         text_column="prompt")
    with pytest.raises(ValueError, match=r"^pair_columns: no column 'rej'"):
        weak_soft_labels(m, ds, tokenizer=tok, pair_columns=("prompt", "rej"))
    with pytest.raises(TypeError, match=r"^model: "):
        weak_soft_labels(3, ds, tokenizer=tok, text_column="prompt", label_column="w")


def test_local_folders_and_column_mapping(tmp_path):
    rows = [{"pos": f"good {i}", "neg": f"bad {i}", "src": i} for i in range(5)]
    folder = tmp_path / "pairs"
    folder.mkdir()
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ds = load_hub_dataset(folder, split="train", columns={"chosen": "pos", "rejected": "neg"})
    assert ds.column_names == ["chosen", "rejected", "src"]
    assert ds["chosen"] == [r["pos"] for r in rows] and ds["src"] == list(range(5))
    assert load_hub_dataset(str(folder), split="train[:2]")["pos"] == ["good 0", "good 1"]
    with pytest.raises(ValueError, match=r"^columns: 'rejected' maps to column 'bad', which "
                                         r"data set .* lacks; its columns are \['pos', 'neg', 'src'\]"):
        load_hub_dataset(folder, columns={"chosen": "pos", "rejected": "bad"})
    # a save_to_disk folder (a DatasetDict): the split is picked, columns mapped
    saved = tmp_path / "saved"
    datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)}).save_to_disk(str(saved))
    t = load_hub_dataset(saved, split="test", columns={"text": "pos"})
    assert t["text"] == [r["pos"] for r in rows]
    with pytest.raises(ValueError, match=r"^split: .* has splits \['test'\]"):
        load_hub_dataset(saved, split="train")
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "one"))      # a single Dataset
    assert load_hub_dataset(tmp_path / "one", columns={"c": "neg"})["c"] == [r["neg"] for r in rows]


def test_rename_columns_clash_and_noop():
    ds = datasets.Dataset.from_dict({"chosen": ["x"], "a": ["y"]})
    assert rename_columns(ds, None) is ds
    with pytest.raises(ValueError, match=r"^columns: 'chosen' is already a column"):
        rename_columns(ds, {"chosen": "a"})
    assert rename_columns(ds, {"chosen": "a", "old": "chosen"}).column_names == ["old", "chosen"]
