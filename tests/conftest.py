"""Shared fixtures: tiny randomly initialised GPT-2 / Llama / Qwen2 models in a local Hugging
Face hub cache (loaded by hub id with ``HF_HUB_OFFLINE=1``: the hub-id code path runs for real)."""

from __future__ import annotations

import os

import pytest
import torch

# `precision = "auto"` is measured per machine (w2s_theory.precision); the suite trains the same
# way on every CPU (bf16 is 1.3x faster on a Zen 4 and slower elsewhere), so it pins "auto" to
# fp32 here, and in the CLI subprocesses that inherit the environment. test_precision unpins it.
os.environ.setdefault("W2S_AUTO_PRECISION", "fp32")

COMMIT = "0123456789abcdef0123456789abcdef01234567"
VOCAB = 300


def _tokenizer():
    """A tiny byte-level BPE tokenizer (the family of GPT-2's, Llama-3's and Qwen2's)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    corpus = ["Human: w1 w2 w3 Assistant: yes no", "Human: w4 w5 w6 Assistant: no yes"] * 20
    tk.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=VOCAB, special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<|endoftext|>")


def _tiny(kind: str):
    import transformers as tf

    common = dict(vocab_size=VOCAB, hidden_size=16, num_attention_heads=2)
    if kind == "gpt2":
        cfg = tf.GPT2Config(n_embd=16, n_layer=2, n_head=2, n_positions=64, vocab_size=VOCAB)
        return tf.GPT2LMHeadModel(cfg)
    if kind == "llama":
        cfg = tf.LlamaConfig(**common, num_hidden_layers=2, intermediate_size=32,
                             num_key_value_heads=1, max_position_embeddings=64)
        return tf.LlamaForCausalLM(cfg)
    cfg = tf.Qwen2Config(**common, num_hidden_layers=2, intermediate_size=32, num_key_value_heads=1,
                         max_position_embeddings=64)
    return tf.Qwen2ForCausalLM(cfg)


def save_tiny_bert(path, *, hidden: int = 32, layers: int = 2):
    """A randomly initialised (seed 0) BERT with MiniLM's tokenizer, saved to ``path``
    (a local model folder the fine-tuning pipeline loads as ``strong = "<path>"``)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from w2s_theory.models import model_dir

    tok = AutoTokenizer.from_pretrained(str(model_dir("all-MiniLM-L6-v2")), local_files_only=True)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=layers,
                         num_attention_heads=hidden // 8, intermediate_size=2 * hidden,
                         max_position_embeddings=2 * hidden, hidden_dropout_prob=0.0,
                         attention_probs_dropout_prob=0.0),
              add_pooling_layer=False).save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """`save_tiny_bert` (hidden 32, 2 layers), once per session."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny_bert") / "m")


@pytest.fixture(scope="session")
def hub_cache(tmp_path_factory):
    """Tiny GPT-2, Llama and Qwen2 models in a local Hugging Face hub cache (and as folders)."""
    root = tmp_path_factory.mktemp("hub")
    torch.manual_seed(0)
    for kind in ("gpt2", "llama", "qwen2"):
        snap = root / f"models--tiny-org--tiny-{kind}" / "snapshots" / COMMIT
        snap.mkdir(parents=True)
        _tiny(kind).save_pretrained(str(snap))
        _tokenizer().save_pretrained(str(snap))
        (root / f"models--tiny-org--tiny-{kind}" / "refs").mkdir()
        (root / f"models--tiny-org--tiny-{kind}" / "refs" / "main").write_text(COMMIT)
    return root


@pytest.fixture()
def offline(monkeypatch):
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")



@pytest.fixture()
def hub_env(hub_cache, offline, monkeypatch):
    """The local hub cache as *the* hub cache (no ``cache_dir`` argument needed), offline."""
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_cache))
    return hub_cache


def write_tiny_real_config(tmp_path, *, cache=None):
    """A one-run ``real`` sweep config on a 16-row two-class CSV table (4/4/4 split) with the
    tiny hub models of `hub_cache` (``tiny-org/tiny-gpt2`` -> ``tiny-org/tiny-llama``), no convex
    fits; ``cache`` sets the config's cache folder. Returns the TOML's path."""
    import pandas as pd

    csv = tmp_path / "t.csv"
    pd.DataFrame({"text": [f"t{i}" for i in range(16)], "label": [0, 1] * 8}).to_csv(csv, index=False)
    p = tmp_path / "r.toml"
    p.write_text('name = "t"\ndatasets = ["mine"]\npairs = [["tiny-org/tiny-gpt2", '
                 '"tiny-org/tiny-llama"]]\nlosses = ["forward_kl"]\nseeds = [0]\n'
                 + (f'cache = "{cache}"\n' if cache is not None else "")
                 + f'[convex]\nenabled = false\n[sources.mine]\nkind = "table"\ndata = "{csv}"\n'
                 f'task = "classification"\nsizes = [4, 4, 4]\n')
    return p
