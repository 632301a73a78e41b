"""Partial fine-tuning (top k blocks on cached states) against the full model it stands for."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from w2s_theory.finetune import (
    FinetuneConfig,
    RewardModel,
    TextTask,
    TokenizedTexts,
    make_targets,
    predict,
    train,
)
from w2s_theory.partial import CachedStates, TopModel, cache_states, predict_top, train_top
from w2s_theory.pipelines.partial import PartialConfig


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_backbone(seed=0, vocab=50, layers=3):
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=layers,
                     num_attention_heads=4, intermediate_size=64, max_position_embeddings=64,
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return BertModel(cfg, add_pooling_layer=False)


def random_texts(rng, n, vocab=50, max_len=20):
    lens = rng.integers(1, max_len, n)
    ids = rng.integers(3, vocab, int(lens.sum()))
    return TokenizedTexts(ids.astype(np.uint16), np.concatenate([[0], np.cumsum(lens)]), (1,), (2,), 0)


@pytest.fixture(scope="module")
def pairs():
    rng = np.random.default_rng(1)
    n = 40
    task = TextTask((random_texts(rng, n), random_texts(rng, n)), rng.integers(0, 2, n).astype(np.int8))
    return task, rng.uniform(0.05, 0.95, n)


def cfg(**kw):
    d = dict(lr=2e-3, max_length=16, precision="fp32", batch_size=8)
    d.update(kw)
    return FinetuneConfig(**d)


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_top_blocks_on_cached_states_equal_the_full_model(pairs, k):
    task, _ = pairs
    bb = tiny_backbone()
    c = cfg()
    full = RewardModel(bb, seed=5).eval()
    p_full = predict(full, task, c)
    cached = [cache_states(bb, t, [k], max_length=c.max_length)[k] for t in task.inputs]
    top = TopModel(bb, k, seed=5)
    p_top = predict_top(top, cached, task)
    np.testing.assert_allclose(p_top, p_full, rtol=0, atol=2e-6)
    assert sum(p.numel() for p in top.parameters()) == 33 + k * sum(
        p.numel() for p in bb.encoder.layer[0].parameters())


@pytest.mark.parametrize("k,loss", [(1, "reverse_kl"), (2, "forward_kl"), (0, "reverse_ce")])
def test_training_top_k_equals_finetuning_with_frozen_lower_blocks(pairs, k, loss):
    """The cached trainer is the full trainer with requires_grad off below block L - k."""
    task, weak = pairs
    c = cfg(loss=loss, seed=3, noise=0.25, group_by_length=2)
    y = make_targets(weak, c)
    bb = tiny_backbone()
    ref = RewardModel(tiny_backbone(), seed=c.seed)
    n_layers = len(ref.backbone.encoder.layer)
    ref.backbone.embeddings.requires_grad_(False)
    for layer in ref.backbone.encoder.layer[:n_layers - k]:
        layer.requires_grad_(False)
    train(ref, task, y, c, progress=False)
    p_ref = predict(ref.eval(), task, c)
    cached = [cache_states(bb, t, [k], max_length=c.max_length)[k] for t in task.inputs]
    top = TopModel(bb, k, seed=c.seed)
    st = train_top(top, cached, task, y, c)
    assert st["steps"] == len(task) // c.batch_size
    np.testing.assert_allclose(predict_top(top, cached, task), p_ref, rtol=0, atol=5e-5)
    # the frozen backbone itself is untouched
    for a, b in zip(bb.parameters(), tiny_backbone().parameters()):
        assert torch.equal(a, b)
    # and training moved the predictions (the test could fail)
    p0 = predict_top(TopModel(bb, k, seed=c.seed), cached, task)
    assert np.abs(p0 - p_ref).max() > 1e-3


def test_cached_states_batch_and_bad_input(pairs):
    task, _ = pairs
    bb = tiny_backbone()
    c = cache_states(bb, task.inputs[0], [0, 3], max_length=16)
    assert set(c) == {0, 3} and all(isinstance(v, CachedStates) for v in c.values())
    assert len(c[0]) == len(task) and np.array_equal(np.diff(c[0].offsets),
                                                      task.inputs[0].lengths(16))
    h, m = c[0].batch([0, 1], pad_to=30)
    assert h.shape[:2] == (2, 30) and m.sum(1).tolist() == np.diff(c[0].offsets)[:2].tolist()
    with pytest.raises(ValueError, match="k: an integer in \\[0, 3\\]"):
        TopModel(bb, 4)
    with pytest.raises(ValueError, match="k: an integer"):
        cache_states(bb, task.inputs[0], [True], max_length=16)
    with pytest.raises(ValueError, match="cached: states for k"):
        predict_top(TopModel(bb, 1), [c[0], c[0]], task)

    class NotBert(torch.nn.Module):
        config = type("C", (), {"model_type": "gpt2"})()
    with pytest.raises(ValueError, match="supports \\('bert',\\)"):
        TopModel(NotBert(), 0)


def test_partial_config_rejects_bad_sections(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('name = "x"\n[partial]\nblocks = [0, 1]\nout = "o.csv"\n')
    pc = PartialConfig.from_toml(p)
    assert pc.blocks == (0, 1) and pc.out == "o.csv"
    p.write_text('name = "x"\n[partial]\nblock = [0]\nout = "o.csv"\n')
    with pytest.raises(ValueError, match="unknown key 'block' \\(did you mean 'blocks'\\?\\)"):
        PartialConfig.from_toml(p)
    p.write_text('name = "x"\n[partial]\nblocks = [-1]\nout = "o.csv"\n')
    with pytest.raises(ValueError, match="blocks"):
        PartialConfig.from_toml(p)
    p.write_text('name = "x"\n[partial]\nblocks = [0]\n')
    with pytest.raises(ValueError, match="out"):
        PartialConfig.from_toml(p)
    p.write_text('name = "x"\n[partial]\nblocks = [0]\nout = "o"\nlast_layer = 1\n')
    with pytest.raises(ValueError, match="last_layer"):
        PartialConfig.from_toml(p)
    p.write_text('name = "x"\n[partial]\nblocks = [0]\nout = "o"\nhead_lr_grid = [0.0]\n')
    with pytest.raises(ValueError, match="head_lr_grid"):
        PartialConfig.from_toml(p)


def test_last_layer_features_against_a_loop():
    from w2s_theory.partial import last_layer_features

    rng = np.random.default_rng(0)
    gt = (rng.normal(size=(20, 3)), rng.normal(size=(20, 3)))
    te = (rng.normal(size=(5, 3)), rng.normal(size=(5, 3)))
    out = last_layer_features({"train_gt": gt, "test": te})
    for j in range(3):
        col = np.concatenate([gt[0][:, j], gt[1][:, j]])
        sd = np.sqrt(np.mean((col - col.mean()) ** 2))
        np.testing.assert_allclose(out["test"][:, j], (te[0][:, j] - te[1][:, j]) / sd, rtol=1e-12)


def test_partial_sweep_end_to_end_resumes(tmp_path, capsys):
    from transformers import AutoTokenizer

    from w2s_theory.cli import main as cli_main
    from w2s_theory.models import model_dir

    def main(argv):
        return cli_main(["partial", *argv])
    from w2s_theory.sweep import ResultTable

    tok = AutoTokenizer.from_pretrained(str(model_dir("all-MiniLM-L6-v2")), local_files_only=True)
    mdir = tmp_path / "tiny"
    tiny_backbone(vocab=len(tok), layers=2).save_pretrained(str(mdir))
    tok.save_pretrained(str(mdir))
    out = tmp_path / "p.csv"
    cf = tmp_path / "c.toml"
    cf.write_text(f"""
name = "tinyp"
strong = "{mdir}"
[data]
n_train = 32
n_test = 24
ceiling_split = "train_gt"
[weak]
l2_grid = [0.1]
[lr_select]
grid = [1e-4, 3e-3]
holdout = 16
[train]
max_length = 24
precision = "fp32"
batch_size = 8
[sweep]
losses = ["forward_kl", "reverse_kl"]
noise = [0.0, 0.4]
seeds = [0]
[partial]
blocks = [0, 1]
out = "{out}"
last_layer = true
head_lr_grid = [1e-3, 1e-2]
""")
    assert main(["--config", str(cf), "--quiet"]) == 0
    df = ResultTable(out).frame()
    assert len(df) == 3 * (1 + 4)
    assert set(df["regime"]) == {"top0", "top1", "lastlayer"}
    assert df.loc[df.role == "ceiling", "train_split"].eq("train_gt").all()
    assert df["l1_holds"].all() and df["ceiling_acc"].notna().all()
    for k in (0, 1):   # one lr per k, from the train_gt holdout
        assert df.loc[df.regime == f"top{k}", "lr"].nunique() == 1
    assert main(["--config", str(cf)]) == 0
    assert "0 runs trained" in capsys.readouterr().out
    assert len(ResultTable(out).frame()) == len(df)
    assert main(["--config", str(tmp_path / "missing.toml")]) == 2
