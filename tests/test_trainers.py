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


# ----------------------------------------------------------------------------- input validation
def test_weak_probs_as_lists_arrays_and_pandas():
    """Was ``AttributeError: 'list' object has no attribute 'to'``."""
    import pandas as pd

    z = torch.tensor([0.3, -1.0, 2.0])
    want = W2SLoss()(z, torch.tensor([0.5, 0.9, 0.1]))
    for y in ([0.5, 0.9, 0.1], (0.5, 0.9, 0.1), np.array([0.5, 0.9, 0.1]),
              pd.Series([0.5, 0.9, 0.1], index=[7, 8, 9]), np.array([0.5, 0.9, 0.1], np.float32)):
        got = W2SLoss()(z, y)
        assert torch.allclose(got, want, rtol=1e-6), type(y)
    fn = soft_label_loss("forward_kl")
    yk = pd.DataFrame({"a": [0.2, 0.5], "b": [0.8, 0.5]})
    zk = torch.zeros(2, 2)
    assert torch.allclose(fn({"logits": zk}, yk), fn({"logits": zk}, torch.tensor(yk.to_numpy())))
    assert torch.allclose(fn(zk, yk.to_numpy()), fn({"logits": zk}, yk))     # a bare tensor too


@pytest.mark.parametrize("bad", [-3, 0, 2.5, True, "4", object(), torch.tensor(-3),
                                 torch.tensor(0), torch.tensor([4, 4]), torch.tensor(2.5),
                                 torch.tensor(True), np.int64(-1)])
def test_num_items_in_batch_must_be_a_positive_integer(bad):
    """Was a negative loss (gradient ascent) for ``num_items_in_batch=-3``."""
    fn = soft_label_loss("forward_ce")
    out = SimpleNamespace(logits=torch.zeros(3, 1))
    with pytest.raises((TypeError, ValueError), match=r"^num_items_in_batch: "):
        fn(out, torch.tensor([1.0, 0.0, 0.5]), num_items_in_batch=bad)


def test_num_items_in_batch_good_values():
    fn = soft_label_loss("forward_ce")
    out = SimpleNamespace(logits=torch.zeros(3, 1))
    y = torch.tensor([1.0, 0.0, 0.5])
    want = 3 * math.log(2) / 6
    for n in (6, np.int64(6), torch.tensor(6), torch.tensor(6.0)):
        assert float(fn(out, y, num_items_in_batch=n)) == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("alpha", [float("nan"), -0.1, 1.5, float("inf"), "0.5", None,
                                   torch.tensor([0.5, 0.5])])
def test_confidence_alpha_is_checked_on_every_call(alpha):
    """Was accepted while the buffer held fewer than ``min_count`` predictions."""
    m = ConfidenceW2SLoss("forward_ce")
    with pytest.raises((TypeError, ValueError), match=r"^alpha: "):
        m(torch.zeros(3), torch.tensor([0.5, 0.9, 0.1]), alpha)
    assert len(m.buffer) == 0                     # nothing was buffered by the refused call


def test_bad_inputs_are_refused_naming_the_argument():
    z, y = torch.zeros(3), torch.tensor([0.5, 0.9, 0.1])
    cases = [
        (lambda: W2SLoss()([0.0, 1.0, 2.0], y), r"^logits: expected the model's logits"),
        (lambda: W2SLoss()(z.to_sparse(), y), r"^logits: .*to_dense"),
        (lambda: W2SLoss()(z, y.to_sparse()), r"^weak_probs: .*to_dense"),
        (lambda: W2SLoss()(z, ["0.5", "0.9", "0.1"]), r"^weak_probs: expected numbers"),
        (lambda: W2SLoss()(z, np.array([0.5, None, 0.1], dtype=object)), r"^weak_probs: "),
        (lambda: W2SLoss()(z, torch.tensor([0.5, 1.5, 0.1])), r"^weak_probs: entries must lie"),
        (lambda: W2SLoss()(torch.tensor([0.0, float("nan"), 1.0]), y), r"^logits: contains NaN"),
        (lambda: W2SLoss()(torch.zeros(3, dtype=torch.int64), y), r"^logits: expected a floating"),
        (lambda: W2SLoss()(z, torch.zeros(4)), r"^weak_probs: shape"),
        (lambda: W2SLoss(eps=float("nan")), r"^eps: must be finite"),
        (lambda: W2SLoss(eps=0.7), r"^eps: must lie in"),
        (lambda: W2SLoss(check="no"), r"^check: must be True or False"),
        (lambda: W2SLoss(reduction=None), r"^reduction: "),
        (lambda: ConfidenceW2SLoss(buffer_size=0), r"^buffer_size: "),
        (lambda: ConfidenceW2SLoss(buffer_size=4, min_count=8), r"^min_count: "),
        (lambda: ConfidenceW2SLoss(base=3), r"^base: a loss name"),
        (lambda: ConfidenceW2SLoss()(torch.zeros(3, 3), torch.full((3,), 0.5), 0.5),
         r"^weak_probs: shape \(3,\) \(binary\) for logits of shape \(3, 3\)"),
        (lambda: soft_label_loss("forward_ce")(SimpleNamespace(), y), r"^outputs: "),
        (lambda: soft_label_loss("forward_ce")({"loss": 1}, y), r"^outputs: "),
        (lambda: soft_label_loss("forward_ce")({"logits": z}, [0.5, 2.0, 0.1]),
         r"^labels: entries must lie"),
        (lambda: soft_label_loss("forward_ce")({"logits": [0.0, 1.0]}, y), r"^outputs.logits: "),
        (lambda: soft_label_loss(5), r"^loss: a loss name"),
    ]
    for f, pattern in cases:
        with pytest.raises((TypeError, ValueError), match=pattern):
            f()


def test_grad_and_low_precision_inputs_are_handled():
    # weak labels that carry a gradient: the loss differentiates through them
    z = torch.tensor([0.3, -1.0, 2.0], requires_grad=True)
    y = torch.tensor([0.5, 0.9, 0.1], requires_grad=True)
    W2SLoss("forward_kl")(z, y).backward()
    assert torch.isfinite(z.grad).all() and torch.isfinite(y.grad).all()
    # bfloat16 logits and bfloat16 labels: float32 loss, bfloat16 gradient, nothing infinite
    zb = torch.tensor([3.0, -2.0], dtype=torch.bfloat16, requires_grad=True)
    out = W2SLoss("reverse_kl")(zb, torch.tensor([0.999, 1.0], dtype=torch.bfloat16))
    out.backward()
    assert out.dtype == torch.float32 and zb.grad.dtype == torch.bfloat16
    assert torch.isfinite(out) and torch.isfinite(zb.grad).all()
    # integer labels (0/1) are soft labels too
    assert torch.allclose(W2SLoss("forward_ce")(z.detach(), torch.tensor([1, 0, 1])),
                          W2SLoss("forward_ce")(z.detach(), torch.tensor([1.0, 0.0, 1.0])))


def test_collator_and_trainer_arguments_are_checked():
    from w2s_theory.trainers import SoftLabelTrainer, WeakRewardTrainer, weak_preference_collator

    for bad, pattern in ((-1, r"^pad_token_id: "), ("0", r"^pad_token_id: "),
                         (None, r"^pad_token_id: ")):
        with pytest.raises((TypeError, ValueError), match=pattern):
            weak_preference_collator(bad)
    col = weak_preference_collator(0)
    ex = {"chosen_ids": [1, 2], "rejected_ids": [3]}
    for bad in ("0.5", None, 1.5, float("nan"), True):
        with pytest.raises((TypeError, ValueError), match=r"^weak_label: example 1: "):
            col([{**ex, "weak_label": 0.5}, {**ex, "weak_label": bad}])
    assert col([{**ex, "weak_label": 0.25}])["weak_label"].tolist() == [0.25]
    with pytest.raises((TypeError, ValueError), match=r"^w2s_loss: "):
        SoftLabelTrainer(model=_tiny_classifier(1), w2s_loss="nope")
    with pytest.raises((TypeError, ValueError), match=r"^w2s_eps: "):
        SoftLabelTrainer(model=_tiny_classifier(1), w2s_eps=-1.0)
    with pytest.raises((TypeError, ValueError), match=r"^w2s_loss: "):
        WeakRewardTrainer(model=_tiny_classifier(1), w2s_loss=["reverse_kl"])


def test_trl_reward_trainer_with_a_tokenizer_without_eos(tmp_path):
    """BERT's tokenizer has no EOS token: TRL failed with ``TypeError: endswith first arg must be
    str`` on text data; the texts are now tokenized with the tokenizer's own special tokens."""
    import datasets
    from transformers import AutoTokenizer
    from trl import RewardConfig

    from w2s_theory.models import model_dir
    from w2s_theory.trainers import WeakRewardTrainer

    tok = AutoTokenizer.from_pretrained(str(model_dir("all-MiniLM-L6-v2")), local_files_only=True)
    assert tok.eos_token is None
    words = ["good", "bad", "fine", "the", "answer", "is", "wrong", "right"]
    g = np.random.default_rng(0)
    rows = {"chosen": [" ".join(g.choice(words, 4)) for _ in range(8)],
            "rejected": [" ".join(g.choice(words, 3)) for _ in range(8)],
            "weak_label": g.uniform(size=8).tolist()}
    ds = datasets.Dataset.from_dict(rows)
    model = _tiny_classifier(1, seed=3)
    model.resize_token_embeddings(len(tok))
    model.config.pad_token_id = tok.pad_token_id
    args = RewardConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=1,
                        learning_rate=1e-2, report_to=[], use_cpu=True, save_strategy="no",
                        logging_strategy="no", max_length=None, seed=0)
    tr = WeakRewardTrainer(model=model, args=args, train_dataset=ds, processing_class=tok,
                           w2s_loss="reverse_ce")
    # the ids are the tokenizer's own encoding ([CLS] ... [SEP]), no text EOS appended
    assert tr.train_dataset[0]["chosen_ids"] == tok(rows["chosen"][0])["input_ids"]
    assert tr.train_dataset[0]["rejected_ids"] == tok(rows["rejected"][0])["input_ids"]
    before = [p.detach().clone() for p in model.parameters()]
    tr.train()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    bad = datasets.Dataset.from_dict({"chosen": ["a", "b"], "rejected": [1, 2],
                                      "weak_label": [0.5, 0.5]})
    with pytest.raises(TypeError, match=r"^train_dataset: column 'rejected', row 0"):
        WeakRewardTrainer(model=model, args=args, train_dataset=bad, processing_class=tok)
