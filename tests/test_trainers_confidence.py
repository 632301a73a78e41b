"""The confidence loss through SoftLabelTrainer: the registry's loss on a fixed batch, and it trains."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from w2s_theory.losses import get_loss
from w2s_theory.trainers import ConfidenceW2SLoss, confidence_loss_func


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    yield
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


def _tiny(num_labels=1, seed=0):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=32, hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0, classifier_dropout=0.0, num_labels=num_labels)
    return BertForSequenceClassification(cfg)


def _rows(n, num_labels, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 40, (n, 6), generator=g)
    y = (torch.rand(n, generator=g) if num_labels == 1
         else torch.softmax(torch.randn(n, num_labels, generator=g), 1))
    return [{"input_ids": ids[i], "attention_mask": torch.ones(6, dtype=torch.long),
             "labels": y[i]} for i in range(n)], ids, y


def _trainer(tmp_path, model, rows, **kw):
    from transformers import TrainingArguments, default_data_collator

    from w2s_theory.trainers import SoftLabelTrainer

    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=8, max_steps=4,
                             learning_rate=0.05, optim="sgd", report_to=[], use_cpu=True,
                             save_strategy="no", logging_strategy="no", seed=0)
    return SoftLabelTrainer(model=model, args=args, train_dataset=rows,
                            data_collator=default_data_collator, w2s_loss="confidence", **kw)


def ref_confidence_ce(z, y, alpha):
    """Burns et al.'s confidence loss with forward CE, written out in float64 (binary):
    threshold t = quantile of p at 1 - mean(y), target (1 - alpha) y + alpha 1[p > t]."""
    z, y = np.asarray(z, np.float64), np.asarray(y, np.float64)
    p = 1 / (1 + np.exp(-z))
    t = np.quantile(p, 1 - y.mean())            # linear interpolation, as torch.quantile
    target = (1 - alpha) * y + alpha * (p > t)
    return float(np.mean(-(target * np.log(p) + (1 - target) * np.log1p(-p))))


def test_fixed_batch_equals_the_registry_confidence_loss(tmp_path):
    rows, ids, y = _rows(8, 1)
    model = _tiny()
    tr = _trainer(tmp_path, model, rows, w2s_confidence={"min_count": 8, "buffer_size": 8,
                                                          "alpha_max": 0.6, "warmup_frac": 0.5})
    tr.state.global_step, tr.state.max_steps = 1, 4       # alpha = 0.6 * 1 / (0.5 * 4) = 0.3
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": y.clone()}
    loss = tr.compute_loss(model, dict(batch)).detach()     # compute_loss pops the labels
    with torch.no_grad():
        z = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[:, 0]
    # the buffer holds exactly this batch: its threshold is the in-batch one
    want = get_loss("confidence")(z.double(), y.double(), alpha=0.3, threshold=None,
                                  base="forward_ce", min_batch=8)
    assert float(loss) == pytest.approx(float(want), rel=1e-5)
    assert float(loss) == pytest.approx(ref_confidence_ce(z, y, 0.3), rel=1e-5)
    # and it is not the plain forward CE (the hardening moved the target)
    assert abs(float(loss) - float(get_loss("forward_ce")(z, y))) > 1e-4
    # below min_count buffered, the base loss (a fresh trainer, a batch of 4)
    tr2 = _trainer(tmp_path, model, rows, w2s_confidence={"min_count": 8, "buffer_size": 8})
    half = {k: v[:4] for k, v in batch.items()}
    assert float(tr2.compute_loss(model, half).detach()) == pytest.approx(
        float(get_loss("forward_ce")(z[:4], y[:4])), rel=1e-5)


def test_it_trains_binary_and_kclass(tmp_path):
    for k in (1, 3):
        rows, _, _ = _rows(32, k, seed=k)
        model = _tiny(k, seed=k)
        tr = _trainer(tmp_path, model, rows, w2s_confidence={"min_count": 8, "buffer_size": 64,
                                                              "warmup_frac": 0.0})
        before = [p.detach().clone() for p in model.parameters()]
        out = tr.train()
        assert math.isfinite(out.training_loss)
        assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
        if k == 1:
            assert len(tr.compute_loss_func.module.buffer) == 32    # 4 steps of 8 buffered


def test_kclass_and_two_logit_heads_and_accumulation():
    torch.manual_seed(0)
    m = ConfidenceW2SLoss("reverse_kl", buffer_size=8, min_count=2)
    z, y = torch.randn(5, 3), torch.softmax(torch.randn(5, 3), 1)
    # k classes: argmax hardening, target (1 - a) y + a onehot(argmax z)
    hard = torch.nn.functional.one_hot(z.argmax(1), 3).to(y.dtype)
    assert torch.allclose(m(z, y, 0.4), get_loss("reverse_kl")(z, 0.6 * y + 0.4 * hard))
    # a 2-logit head with binary labels = the binary loss of the logit difference
    z2, yb = torch.randn(6, 2), torch.rand(6)
    a, b = ConfidenceW2SLoss(min_count=2), ConfidenceW2SLoss(min_count=2)
    assert torch.allclose(a(z2, yb, 0.5), b(z2[:, 1] - z2[:, 0], yb, 0.5))
    # gradient accumulation: micro-batch mean * n / examples in the step
    fn = confidence_loss_func(lambda: 0.0, min_count=2)
    zz, yy = torch.randn(4), torch.rand(4)
    assert torch.allclose(fn(zz[:, None], yy, num_items_in_batch=8),
                          get_loss("forward_ce")(zz, yy) * 4 / 8)


def test_options_are_checked(tmp_path):
    rows, _, _ = _rows(8, 1)
    with pytest.raises(ValueError, match=r"^w2s_confidence: unknown key 'alpha'"):
        _trainer(tmp_path, _tiny(), rows, w2s_confidence={"alpha": 0.5})
    with pytest.raises(ValueError, match=r"^alpha_max: "):
        _trainer(tmp_path, _tiny(), rows, w2s_confidence={"alpha_max": 2.0})
    with pytest.raises(ValueError, match=r"^base: "):
        _trainer(tmp_path, _tiny(), rows, w2s_confidence={"base": "nope"})
    from w2s_theory.trainers import SoftLabelTrainer

    with pytest.raises(ValueError, match=r"^w2s_confidence: only for"):
        SoftLabelTrainer(model=_tiny(), w2s_loss="reverse_kl", w2s_confidence={})
    with pytest.raises(TypeError, match=r"^alpha: "):
        confidence_loss_func(0.5)
