"""One objective for every trainer: the two config stacks map their fields onto the same
:class:`w2s_theory.objective.Objective`, and the trainers evaluate it."""

import pytest
import torch

from w2s_theory.finetune import FinetuneConfig, loss_fn
from w2s_theory.losses import confidence_loss, get_loss
from w2s_theory.objective import Objective
from w2s_theory.training import HeadSpec, TrainConfig


def test_both_config_stacks_give_the_same_objective():
    tc = TrainConfig(alpha_max=0.3, warmup_frac=0.2, buffer_size=64, min_count=8, eps=1e-5)
    fc = FinetuneConfig(loss="js", confidence=True, alpha_max=0.3, confidence_warmup_frac=0.2,
                        threshold_buffer=64, threshold_min_count=8, eps=1e-5, warmup_frac=0.5)
    assert tc.objective(HeadSpec("js", confidence=True)) == fc.objective
    # FinetuneConfig.warmup_frac is the lr warm-up: not part of the objective
    assert fc.objective.confidence_warmup_frac == 0.2
    assert FinetuneConfig(warmup_frac=0.5).objective == FinetuneConfig().objective


def test_objective_is_the_plain_loss_until_the_buffer_fills_then_the_confidence_loss():
    obj = Objective("reverse_kl", confidence=True, alpha_max=0.5, confidence_warmup_frac=0.0,
                    threshold_buffer=8, threshold_min_count=8)
    buf = obj.new_buffer()
    g = torch.Generator().manual_seed(0)
    z, y = torch.randn(4, generator=g), torch.rand(4, generator=g)
    assert obj(z, y, step=0, total_steps=4, buffer=buf) == get_loss("reverse_kl")(z, y)
    z2, y2 = torch.randn(4, generator=g), torch.rand(4, generator=g)
    got = obj(z2, y2, step=1, total_steps=4, buffer=buf)
    want = confidence_loss(z2, y2, alpha=0.5, threshold=buf.threshold, base="reverse_kl")
    assert torch.equal(got, want) and not torch.equal(got, get_loss("reverse_kl")(z2, y2))
    # the fine-tuning trainer's loss is this objective (float32)
    fc = FinetuneConfig(loss="reverse_kl", confidence=True, confidence_warmup_frac=0.0,
                        threshold_buffer=8, threshold_min_count=8)
    b2 = fc.objective.new_buffer()
    loss_fn(z, y, fc, step=0, total_steps=4, buffer=b2)
    assert torch.equal(loss_fn(z2, y2, fc, step=1, total_steps=4, buffer=b2), want)


def test_objective_validates_by_name():
    with pytest.raises(ValueError, match="loss"):
        Objective("kl")
    with pytest.raises(ValueError, match="confidence_warmup_frac"):
        Objective(confidence_warmup_frac=2.0)
    with pytest.raises(ValueError, match="buffer"):
        Objective(confidence=True)(torch.zeros(2), torch.zeros(2), step=0, total_steps=1)


def test_objective_fields_go_through_the_validation_core():
    """``alpha_max=True`` and ``confidence="yes"`` were accepted; numpy numbers were refused."""
    import numpy as np

    for kw, name in ((dict(alpha_max=True), "alpha_max"), (dict(confidence="yes"), "confidence"),
                     (dict(alpha_max=float("nan")), "alpha_max"), (dict(eps="1e-6"), "eps"),
                     (dict(threshold_buffer=8.0), "threshold_buffer"),
                     (dict(threshold_min_count=0), "threshold_min_count"),
                     (dict(eps=0.5), "eps")):
        with pytest.raises((TypeError, ValueError), match=f"^{name}: "):
            Objective(**kw)
    o = Objective(alpha_max=np.float32(0.25), threshold_buffer=np.int64(8), eps=np.float64(1e-6))
    assert o.alpha(5, 10) == 0.25
    with pytest.raises(ValueError, match="^buffer: "):
        Objective(confidence=True)(torch.zeros(2), torch.zeros(2), step=0, total_steps=1,
                                   buffer=[])
