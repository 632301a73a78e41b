"""The losses as drop-ins: nn.Module, transformers.Trainer(compute_loss_func), TRL RewardTrainer."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from w2s_theory.losses import get_loss
from w2s_theory.trainers import ConfidenceW2SLoss, W2SLoss, align, soft_label_loss

NAMES = ("forward_kl", "reverse_kl", "forward_ce", "reverse_ce")
EPS = 1e-6


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    """Trainer and RewardTrainer set accelerate's process-wide state; reset it afterwards so
    later tests may build an Accelerator with another mixed precision."""
    yield
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


def ref_binary(name, z, y):
    """Independent float64 closed forms, per example (binary)."""
    p = 1 / (1 + math.exp(-z))
    yc = min(max(y, EPS), 1 - EPS)
    xlx = lambda a: 0.0 if a == 0 else a * math.log(a)  # noqa: E731
    lp, lq = -math.log1p(math.exp(-z)), -math.log1p(math.exp(z))
    return {"forward_ce": -(y * lp + (1 - y) * lq),
            "forward_kl": xlx(y) + xlx(1 - y) - (y * lp + (1 - y) * lq),
            "reverse_ce": -(p * math.log(yc) + (1 - p) * math.log(1 - yc)),
            "reverse_kl": p * (lp - math.log(yc)) + (1 - p) * (lq - math.log(1 - yc))}[name]


@settings(max_examples=300, deadline=None)
@given(z=st.lists(st.floats(-20, 20), min_size=1, max_size=6),
       y=st.lists(st.one_of(st.floats(0, 1), st.sampled_from([0.0, 1.0])), min_size=6, max_size=6),
       name=st.sampled_from(NAMES), check=st.booleans())
def test_module_equals_the_closed_forms(z, y, name, check):
    y = y[:len(z)]
    zt = torch.tensor(z, dtype=torch.float64)
    yt = torch.tensor(y, dtype=torch.float64)
    m = W2SLoss(name, reduction="none", check=check)
    m(zt, yt)                       # the first call is always checked
    got = m(zt, yt).numpy()
    want = np.array([ref_binary(name, a, b) for a, b in zip(z, y)])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_shapes_kclass_and_two_logit_heads(name):
    rng = np.random.default_rng(0)
    z = torch.tensor(rng.normal(size=(5, 3)))
    y = torch.tensor(rng.dirichlet(np.ones(3), 5))
    for check in (True, False):
        m = W2SLoss(name, check=check)
        m(z, y)
        assert torch.allclose(m(z, y), get_loss(name)(z, y), rtol=1e-12, atol=1e-14)
    # a 2-logit head with binary labels is the binary loss of the logit difference
    z2 = torch.tensor(rng.normal(size=(5, 2)))
    yb = torch.tensor(rng.uniform(size=5))
    assert torch.allclose(W2SLoss(name)(z2, yb), get_loss(name)(z2[:, 1] - z2[:, 0], yb),
                          rtol=1e-10, atol=1e-12)
    assert align(torch.zeros(4, 1), torch.zeros(4))[0].shape == (4,)
    with pytest.raises(ValueError, match="labels"):
        W2SLoss(name)(torch.zeros(4, 3), torch.zeros(4))


def test_bad_names_and_first_call_is_checked():
    with pytest.raises(ValueError, match="loss: a loss name"):
        W2SLoss([])
    with pytest.raises(ValueError, match="unknown loss"):
        W2SLoss("reverse_kll")
    with pytest.raises(ValueError, match="ConfidenceW2SLoss"):
        W2SLoss("confidence")
    with pytest.raises(ValueError, match="reduction"):
        W2SLoss("forward_kl", reduction="avg")
    m = W2SLoss("forward_kl", check=False)
    with pytest.raises(ValueError, match="weak_probs"):
        m(torch.zeros(2), torch.tensor([0.5, 1.5]))


def test_confidence_module_keeps_its_buffer():
    from w2s_theory.losses import confidence_loss

    torch.manual_seed(0)
    m = ConfidenceW2SLoss("forward_ce", buffer_size=16, min_count=8)
    z, y = torch.randn(4), torch.rand(4)
    assert torch.allclose(m(z, y, 0.5), get_loss("forward_ce")(z, y))   # < min_count buffered
    z2, y2 = torch.randn(6), torch.rand(6)
    got = m(z2, y2, 0.5)
    assert len(m.buffer) == 10
    assert torch.allclose(got, confidence_loss(z2, y2, alpha=0.5, threshold=m.buffer.threshold,
                                               base="forward_ce"))


# ----------------------------------------------------------------------------- transformers.Trainer
def _tiny_classifier(num_labels=1, seed=0):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=32, hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0, classifier_dropout=0.0, num_labels=num_labels)
    return BertForSequenceClassification(cfg)


class _Rows(torch.utils.data.Dataset):
    def __init__(self, ids, labels):
        self.ids, self.labels = ids, labels

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "attention_mask": torch.ones_like(self.ids[i]),
                "labels": self.labels[i]}


@pytest.mark.parametrize("name,num_labels", [("reverse_kl", 1), ("forward_kl", 3)])
def test_trainer_step_equals_the_full_batch_gradient(tmp_path, name, num_labels):
    """One SGD step with 2 accumulated micro-batches = one step on the full-batch mean loss."""
    from transformers import TrainingArguments, default_data_collator

    from w2s_theory.trainers import SoftLabelTrainer

    g = torch.Generator().manual_seed(0)
    n = 8
    ids = torch.randint(3, 40, (n, 6), generator=g)
    if num_labels == 1:
        labels = torch.rand(n, generator=g)
    else:
        labels = torch.softmax(torch.randn(n, num_labels, generator=g), 1)
    model = _tiny_classifier(num_labels)
    ref = _tiny_classifier(num_labels)
    lr = 0.5
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4,
                             gradient_accumulation_steps=2, max_steps=1, learning_rate=lr,
                             optim="sgd", lr_scheduler_type="constant", warmup_steps=0,
                             weight_decay=0.0, max_grad_norm=0.0, report_to=[], use_cpu=True,
                             save_strategy="no", logging_strategy="no", seed=0)
    tr = SoftLabelTrainer(model=model, args=args, train_dataset=_Rows(ids, labels),
                          data_collator=default_data_collator, w2s_loss=name)
    tr.train()
    # reference: the registry's mean loss over all 8 examples, one plain gradient step
    ref.train()
    out = ref(input_ids=ids, attention_mask=torch.ones_like(ids))
    loss = get_loss(name)(out.logits[:, 0] if num_labels == 1 else out.logits, labels)
    loss.backward()
    with torch.no_grad():
        moved = 0.0
        for (k, p), (_, q) in zip(model.named_parameters(), ref.named_parameters()):
            want = q - lr * q.grad if q.grad is not None else q
            assert torch.allclose(p, want, rtol=1e-4, atol=1e-6), k
            moved = max(moved, float((p - q).abs().max()))
    assert moved > 1e-4          # the step did move the weights
    with pytest.raises(ValueError, match="compute_loss_func"):
        SoftLabelTrainer(model=model, args=args, compute_loss_func=lambda *a, **k: 0)


def test_compute_loss_func_scaling_by_num_items():
    fn = soft_label_loss("forward_ce")
    z = torch.tensor([[0.0], [1.0], [-1.0], [2.0]])
    y = torch.tensor([1.0, 0.0, 0.5, 0.9])
    per = get_loss("forward_ce")(z[:, 0], y, reduction="none")
    out = SimpleNamespace(logits=z)
    assert torch.allclose(fn(out, y), per.mean())
    assert torch.allclose(fn(out, y, num_items_in_batch=8), per.sum() / 8)
    yk = torch.softmax(torch.randn(4, 3), 1)
    zk = torch.randn(4, 3)
    perk = get_loss("forward_ce")(zk, yk, reduction="none")
    assert torch.allclose(fn({"logits": zk}, yk, num_items_in_batch=torch.tensor(24)), perk.sum() / 8)


# ----------------------------------------------------------------------------- TRL RewardTrainer
def test_trl_reward_trainer_on_weak_soft_labels(tmp_path):
    import datasets  # the [hf] extra, part of the test extras
    from transformers import AutoTokenizer
    from trl import RewardConfig

    from w2s_theory.models import model_dir
    from w2s_theory.trainers import WeakRewardTrainer, weak_preference_collator

    tok = AutoTokenizer.from_pretrained(str(model_dir("all-MiniLM-L6-v2")), local_files_only=True)
    g = torch.Generator().manual_seed(1)
    n = 8
    rows = {"chosen_ids": [torch.randint(3, 40, (int(torch.randint(3, 9, (1,), generator=g)),),
                                         generator=g).tolist() for _ in range(n)],
            "rejected_ids": [torch.randint(3, 40, (int(torch.randint(3, 9, (1,), generator=g)),),
                                           generator=g).tolist() for _ in range(n)],
            "weak_label": torch.rand(n, generator=g).tolist()}
    ds = datasets.Dataset.from_dict(rows)
    model = _tiny_classifier(1, seed=2)
    model.config.pad_token_id = tok.pad_token_id
    args = RewardConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=2,
                        learning_rate=1e-2, report_to=[], use_cpu=True, save_strategy="no",
                        logging_strategy="no", max_length=None, seed=0)
    tr = WeakRewardTrainer(model=model, args=args, train_dataset=ds, processing_class=tok,
                           w2s_loss="reverse_kl")
    # the batch loss is the registry's loss of the BT logit against the weak label
    batch = weak_preference_collator(tok.pad_token_id)([ds[i] for i in range(4)])
    y = batch["weak_label"].clone()
    loss = tr.compute_loss(model, dict(batch))
    with torch.no_grad():
        r = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, 0]
    z = (r[:4] - r[4:]).double()
    want = np.mean([ref_binary("reverse_kl", float(a), float(b)) for a, b in zip(z, y)])
    assert float(loss.detach()) == pytest.approx(want, rel=1e-5)
    before = [p.detach().clone() for p in model.parameters()]
    tr.train()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    with pytest.raises(ValueError, match="weak_label"):
        weak_preference_collator(0)([{"chosen_ids": [1], "rejected_ids": [2]}])
