"""compute_metrics for a user's own Trainer, against sklearn.metrics and plain numpy formulas."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from w2s_theory.hf_metrics import compute_metrics, logits_to_probs


def ece_ref(y, p, n_bins=10):
    """Top-label ECE written out: bins (b/B, (b+1)/B], confidences of the hard label."""
    if p.ndim == 1:
        pred = (p > 0.5).astype(int)
        conf = np.where(pred == 1, p, 1 - p)
    else:
        pred, conf = p.argmax(1), p.max(1)
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        m = (conf > lo) & (conf <= hi)
        if m.any():
            total += m.sum() * abs((pred[m] == y[m]).mean() - conf[m].mean())
    return total / len(y)


def ev(pred, labels):
    return SimpleNamespace(predictions=pred, label_ids=labels)


@pytest.mark.parametrize("shape", ["n", "n1", "n2"])
def test_binary_against_sklearn(shape):
    rng = np.random.default_rng(0)
    n = 300
    y = rng.integers(0, 2, n)
    z = rng.normal(size=n) + 1.2 * (2 * y - 1)
    p1 = 1 / (1 + np.exp(-z))
    pred = {"n": z, "n1": z[:, None], "n2": np.stack([np.zeros(n) - 0.3, z - 0.3], 1)}[shape]
    out = compute_metrics(weak_acc=0.6, ceiling_acc=0.9, n_bins=15)(ev(pred, y))
    assert set(out) == {"student_acc", "student_auroc", "student_ece", "pgr"}
    acc = accuracy_score(y, (p1 > 0.5).astype(int))
    assert out["student_acc"] == pytest.approx(acc, abs=1e-12)
    assert out["student_auroc"] == pytest.approx(roc_auc_score(y, p1), abs=1e-12)
    assert out["student_ece"] == pytest.approx(ece_ref(y, p1, 15), abs=1e-10)
    assert out["pgr"] == pytest.approx((acc - 0.6) / (0.9 - 0.6), abs=1e-12)
    assert all(isinstance(v, float) for v in out.values())


def test_kclass_against_sklearn_macro_ovr():
    rng = np.random.default_rng(1)
    n, k = 400, 3
    y = rng.integers(0, k, n)
    z = rng.normal(size=(n, k))
    z[np.arange(n), y] += 1.0
    e = np.exp(z)
    p = e / e.sum(1, keepdims=True)
    out = compute_metrics()(ev(z.astype(np.float32), y))
    assert "pgr" not in out
    assert out["student_acc"] == pytest.approx(accuracy_score(y, p.argmax(1)), abs=1e-12)
    assert out["student_auroc"] == pytest.approx(
        roc_auc_score(y, p, multi_class="ovr", average="macro"), abs=1e-6)
    assert out["student_ece"] == pytest.approx(ece_ref(y, p), abs=1e-6)
    # gold given separately (SoftLabelTrainer: label_ids are the weak soft labels)
    soft = rng.dirichlet(np.ones(k), n)
    out2 = compute_metrics(gold=y)(ev((z.astype(np.float32), z[:, :1]), soft))  # a tuple
    assert out2 == pytest.approx(out, abs=1e-12)


def test_logits_to_probs_plain_formulas():
    z = np.array([[-800.0, 0.0, 3.0], [1.0, 2.0, 3.0]])
    want = np.array([[0.0, 1 / (1 + math.exp(3)), 1 / (1 + math.exp(-3))],
                     [math.exp(-2) / (math.exp(-2) + math.exp(-1) + 1),
                      math.exp(-1) / (math.exp(-2) + math.exp(-1) + 1),
                      1 / (math.exp(-2) + math.exp(-1) + 1)]])
    np.testing.assert_allclose(logits_to_probs(z), want, rtol=1e-12, atol=1e-300)
    v = np.array([-40.0, -1.0, 0.0, 2.5, 40.0])
    sig = np.array([1 / (1 + math.exp(-a)) for a in v])
    np.testing.assert_allclose(logits_to_probs(v), sig, rtol=1e-12)
    np.testing.assert_allclose(logits_to_probs(np.stack([v * 0, v], 1)), sig, rtol=1e-12)


def test_pgr_undefined_and_missing_class():
    y = np.array([1, 1, 1, 1])
    out = compute_metrics(weak_acc=0.8, ceiling_acc=0.7)(ev(np.array([1.0, 2, -1, 3]), y))
    assert math.isnan(out["pgr"]) and math.isnan(out["student_auroc"])
    assert out["student_acc"] == 0.75


def test_bad_inputs_are_named():
    fn = compute_metrics()
    with pytest.raises(ValueError, match=r"^label_ids: .*pass gold="):
        fn(ev(np.zeros(3), np.array([0.2, 0.9, 0.5])))          # weak soft labels, not gold
    with pytest.raises(ValueError, match=r"^gold: "):
        compute_metrics(gold=[0, 1])(ev(np.zeros(3), None))
    with pytest.raises(ValueError, match=r"^ceiling_acc: "):
        compute_metrics(weak_acc=0.5)
    with pytest.raises(ValueError, match=r"^weak_acc: "):
        compute_metrics(weak_acc=1.5, ceiling_acc=0.9)
    with pytest.raises(TypeError, match=r"^eval_prediction: "):
        fn([1, 2])
    with pytest.raises(ValueError, match=r"^logits: contains NaN"):
        fn(ev(np.array([0.0, np.nan]), np.array([0, 1])))


def test_inside_a_real_trainer_evaluate(tmp_path):
    import torch
    from accelerate.state import AcceleratorState
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        Trainer,
        TrainingArguments,
        default_data_collator,
    )

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=32, num_labels=1)
    model = BertForSequenceClassification(cfg).eval()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 40, (24, 5), generator=g)
    y = torch.randint(0, 2, (24,), generator=g)
    rows = [{"input_ids": ids[i], "attention_mask": torch.ones(5, dtype=torch.long),
             "labels": y[i].float()} for i in range(24)]
    args = TrainingArguments(output_dir=str(tmp_path), per_device_eval_batch_size=7,
                             report_to=[], use_cpu=True)
    try:
        tr = Trainer(model=model, args=args, eval_dataset=rows, data_collator=default_data_collator,
                     compute_metrics=compute_metrics(weak_acc=0.4, ceiling_acc=0.8))
        got = tr.evaluate()
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
    with torch.no_grad():
        p = torch.sigmoid(model(input_ids=ids).logits[:, 0]).double().numpy()
    yn = y.numpy()
    assert got["eval_student_acc"] == pytest.approx(accuracy_score(yn, p > 0.5), abs=1e-12)
    assert got["eval_student_auroc"] == pytest.approx(roc_auc_score(yn, p), abs=1e-6)
    assert got["eval_student_ece"] == pytest.approx(ece_ref(yn, p), abs=1e-5)
    assert got["eval_pgr"] == pytest.approx((got["eval_student_acc"] - 0.4) / 0.4, abs=1e-12)
